"""Watch - history replay, filters, prev_kv, compacted and future start revisions, cancel.

Golden style like test_compat.py, over raw Watch streams. How events are split into
responses is the server's business (clients do not see it), so event responses are
flattened into one event list per watch; created/canceled responses are kept whole.

A watch is read until a known "sentinel" event arrives: events come in revision order,
so everything before it has arrived too. No quiet-period timing. Bounded by
WATCH_WAIT_S per watch.
"""

import os
import queue
import subprocess
import threading
import time

import pytest
from etcd3 import etcdrpc

import harness
from transcript import check_golden, proto_to_dict

WATCH_WAIT_S = 5.0
Create = etcdrpc.WatchCreateRequest


def strip_header(resp):
    d = proto_to_dict(resp)
    d.get("header", {}).pop("cluster_id", None)
    d.get("header", {}).pop("member_id", None)
    d.get("header", {}).pop("raft_term", None)
    return d


def collect(stream, until_rev, responses_max=100):
    """Flattened events up to and including the first with mod_revision >= until_rev.
    Non-event responses (created, canceled, ...) are returned in `others`."""
    events, others = [], []
    for _ in range(responses_max):
        resp = stream.next()
        if not resp.events:
            others.append(strip_header(resp))
            if resp.canceled:
                return events, others
            continue
        for ev in resp.events:
            events.append(proto_to_dict(ev))
        if resp.events[-1].kv.mod_revision >= until_rev:
            return events, others
    raise AssertionError(f"no event at revision {until_rev} in {responses_max} responses")


def watch_scenario(t):
    c = t.cluster.client()
    kv = c.kvstub
    endpoint = t.cluster.members[0].endpoint
    P, T, Op = etcdrpc.PutRequest, etcdrpc.TxnRequest, etcdrpc.RequestOp

    for i in range(5):
        t.rpc(f"put w/a={i}", lambda i=i: kv.Put(P(key=b"w/a", value=b"%d" % i)))
    t.rpc("put w/b", lambda: kv.Put(P(key=b"w/b", value=b"b")))
    t.rpc("delete w/a", lambda: kv.DeleteRange(etcdrpc.DeleteRangeRequest(key=b"w/a")))
    t.rpc("put other (outside the range)", lambda: kv.Put(P(key=b"other", value=b"1")))
    t.rpc("txn: two puts, one revision", lambda: kv.Txn(T(success=[
        Op(request_put=P(key=b"w/c", value=b"c")), Op(request_put=P(key=b"w/d", value=b"d"))])))
    head = kv.Range(etcdrpc.RangeRequest(key=b"w/")).header.revision
    compact_rev = 4
    t.rpc("compact 4", lambda: kv.Compact(etcdrpc.CompactionRequest(revision=compact_rev)))

    def sentinel():
        """put w/s then delete it; returns (put revision, delete revision)."""
        put = kv.Put(P(key=b"w/s", value=b"s")).header.revision
        deleted = kv.DeleteRange(etcdrpc.DeleteRangeRequest(key=b"w/s")).header.revision
        return put, deleted

    def watch(label, until, **create):
        stream = harness.WatchStream(endpoint)
        try:
            stream.create(**create)
            created = strip_header(stream.next())
            put_rev, del_rev = sentinel()
            stop = {"put": put_rev, "delete": del_rev}[until]
            events, others = collect(stream, stop)
            t.note(label, {"created": created, "events": events, "others": others})
        finally:
            stream.close()

    watch("prefix from the compaction point, prev_kv", "delete",
          key=b"w/", range_end=b"w0", start_revision=compact_rev, prev_kv=True)
    watch("one key from head-3", "delete", key=b"w/s", start_revision=head - 3)
    watch("from-key (range_end \\0) from head-1", "delete", key=b"w/c", range_end=b"\0",
          start_revision=head - 1)
    watch("NOPUT filter", "delete", key=b"w/", range_end=b"w0", start_revision=compact_rev,
          filters=[Create.NOPUT])
    watch("NODELETE filter", "put", key=b"w/", range_end=b"w0", start_revision=compact_rev,
          filters=[Create.NODELETE])
    watch("no start revision: live events only", "delete", key=b"w/", range_end=b"w0")

    # Start revision below the compaction point: created, then canceled with the
    # compact revision.
    stream = harness.WatchStream(endpoint)
    try:
        stream.create(key=b"w/", range_end=b"w0", start_revision=compact_rev - 2)
        t.note("compacted start revision", [strip_header(stream.next()),
                                            strip_header(stream.next())])
    finally:
        stream.close()

    # Start revision in the future: the first event delivered is at that revision.
    stream = harness.WatchStream(endpoint)
    try:
        now = kv.Range(etcdrpc.RangeRequest(key=b"w/")).header.revision
        stream.create(key=b"f", start_revision=now + 2)
        created = strip_header(stream.next())
        for i in range(3):
            kv.Put(P(key=b"f", value=b"%d" % i))
        events, others = collect(stream, now + 2)
        t.note("future start revision", {"created": created, "events": events,
                                         "others": others})
    finally:
        stream.close()

    # Two watches on one stream get distinct ids; cancel answers canceled=true.
    stream = harness.WatchStream(endpoint)
    try:
        stream.create(key=b"x1")
        stream.create(key=b"x2")
        first, second = strip_header(stream.next()), strip_header(stream.next())
        stream.send(etcdrpc.WatchRequest(cancel_request=etcdrpc.WatchCancelRequest(
            watch_id=second.get("watch_id", 0))))
        t.note("two watches, cancel the second", [first, second, strip_header(stream.next())])
    finally:
        stream.close()


def ctl_watch_lines(cluster, args, trigger, until_line):
    """Run `etcdctl watch ARGS` (simple output, as scripts read it), call trigger() once
    it runs, and return its stdout lines up to and including `until_line`. Bounded by
    WATCH_WAIT_S; the process is always killed."""
    env = dict(os.environ, ETCDCTL_API="3")
    proc = subprocess.Popen([harness.ETCDCTL_BIN, "--endpoints", cluster.endpoints[0],
                             "watch", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    lines = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(l.rstrip("\n"))
                                              for l in proc.stdout], daemon=True)
    reader.start()
    try:
        trigger()
        out = []
        deadline = time.monotonic() + WATCH_WAIT_S
        while not out or out[-1] != until_line:
            left = deadline - time.monotonic()
            assert left > 0, f"etcdctl watch printed {out}, never {until_line!r}"
            try:
                out.append(lines.get(timeout=left))
            except queue.Empty:
                pass
        return out
    finally:
        proc.kill()
        proc.wait(timeout=WATCH_WAIT_S)


def ctl_watch_scenario(t):
    for i in range(3):
        t.ctl(f"put k{i}", "put", f"k{i}", f"v{i}")
    t.ctl("del k1", "del", "k1")
    t.ctl("put other", "put", "other", "x")
    sentinel = lambda: t.cluster.etcdctl("put", "k-sentinel", "last")
    t.note("etcdctl watch --rev 2 --prefix k --prev-kv",
           ctl_watch_lines(t.cluster, ["--rev", "2", "--prefix", "k", "--prev-kv"],
                           sentinel, "last"))
    # From the next revision: without --rev, the put could race the watch's creation
    # (etcdctl prints nothing when the watch is created).
    head = t.ctl("get k0", "get", "k0")["header"]["revision"]
    t.note("etcdctl watch k0 --rev <head+1>",
           ctl_watch_lines(t.cluster, ["k0", "--rev", str(head + 1)],
                           lambda: t.cluster.etcdctl("put", "k0", "live"), "live"))


WATCH_SCENARIOS = {"watch": ([], watch_scenario), "ctl_watch": ([], ctl_watch_scenario)}


@pytest.mark.parametrize("scenario", sorted(WATCH_SCENARIOS))
def test_golden_watch(scenario, server_kind, cluster_factory):
    check_golden(WATCH_SCENARIOS, scenario, server_kind, cluster_factory)


def test_watch_replays_history_then_live(server):
    kv = server.client().kvstub
    revs = [kv.Put(etcdrpc.PutRequest(key=b"k", value=b"%d" % i)).header.revision
            for i in range(3)]
    stream = harness.WatchStream(server.members[0].endpoint)
    try:
        stream.create(key=b"k", start_revision=revs[1], prev_kv=True)
        created = stream.next()
        assert created.created and not created.events
        live = kv.Put(etcdrpc.PutRequest(key=b"k", value=b"live")).header.revision
        events, _ = collect(stream, live)
        assert [e["kv"]["mod_revision"] for e in events] == [revs[1], revs[2], live]
        assert [e["kv"]["value"] for e in events] == ["1", "2", "live"]
        assert events[0]["prev_kv"]["value"] == "0"
        assert all(e.get("type", "PUT") == "PUT" for e in events)
    finally:
        stream.close()


def test_watch_on_compacted_revision_is_canceled(server):
    kv = server.client().kvstub
    for i in range(4):
        kv.Put(etcdrpc.PutRequest(key=b"k", value=b"%d" % i))
    head = kv.Range(etcdrpc.RangeRequest(key=b"k")).header.revision
    kv.Compact(etcdrpc.CompactionRequest(revision=head))
    stream = harness.WatchStream(server.members[0].endpoint)
    try:
        stream.create(key=b"k", start_revision=head - 1)
        assert stream.next().created
        canceled = stream.next()
        assert canceled.canceled and canceled.compact_revision == head
    finally:
        stream.close()


def test_watch_sees_every_concurrent_write_once_in_order(server):
    """4 writers put concurrently; one prefix watch must deliver exactly the acknowledged
    revisions, each once, in increasing order, with the acknowledged values."""
    writers, puts_each = 4, 150
    kv = server.client().kvstub
    start = kv.Range(etcdrpc.RangeRequest(key=b"x")).header.revision
    stream = harness.WatchStream(server.members[0].endpoint)
    acked = {}
    try:
        stream.create(key=b"c/", range_end=b"c0", start_revision=start + 1)
        assert stream.next().created
        errors = []

        def writer(w):
            client = server.client()
            try:
                for i in range(puts_each):
                    key, value = b"c/%d/%03d" % (w, i), b"%d-%d" % (w, i)
                    rev = client.kvstub.Put(etcdrpc.PutRequest(key=key, value=value)) \
                        .header.revision
                    acked[rev] = (key, value)
            except Exception as e:  # reported below
                errors.append(repr(e))

        threads = [threading.Thread(target=writer, args=(w,), daemon=True)
                   for w in range(writers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert not errors, errors
        assert len(acked) == writers * puts_each
        events, _ = collect(stream, max(acked), responses_max=writers * puts_each + 10)
    finally:
        stream.close()
    revs = [e["kv"]["mod_revision"] for e in events]
    assert revs == sorted(acked), "events missing, repeated or out of order"
    for e in events:
        key, value = acked[e["kv"]["mod_revision"]]
        assert (e["kv"]["key"].encode(), e["kv"]["value"].encode()) == (key, value)


def test_many_watches_on_one_stream(server):
    count = 100
    stream = harness.WatchStream(server.members[0].endpoint)
    try:
        for i in range(count):
            stream.create(key=b"w%03d" % i)
        created = [stream.next() for _ in range(count)]
        assert all(r.created for r in created)
        ids = [r.watch_id for r in created]
        assert len(set(ids)) == count, "watch ids are not distinct"
        kv = server.client().kvstub
        rev = kv.Put(etcdrpc.PutRequest(key=b"w042", value=b"x")).header.revision
        resp = stream.next()
        assert resp.watch_id == ids[42]
        assert [(e.kv.key, e.kv.mod_revision) for e in resp.events] == [(b"w042", rev)]
    finally:
        stream.close()
