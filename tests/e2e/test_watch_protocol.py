"""Watch stream protocol details, golden against etcd: client-chosen watch ids and their
duplicates, empty ranges, cancel of an unknown id, progress requests, and fragmented
responses (watch_id, created/canceled, cancel_reason, fragment flags, event keys).

python etcd3's protos predate watch_id, fragment and WatchProgressRequest (etcd 3.4), so
a test-local proto with etcd's field numbers is compiled with protoc at run time and the
stream is called by method path (as in test_lock_election.py).

Responses are read one at a time in the order the server answers requests on one stream,
so "no answer" is observed as "the next answer belongs to the next request". Every read is
bounded (WAIT_S).
"""

import os
import queue
import subprocess
import threading

import grpc
from etcd3 import etcdrpc

import harness
from transcript import check_golden, proto_to_dict

WAIT_S = 10.0

PROTO = """
syntax = "proto3";
package watchprototest;
message ResponseHeader { uint64 cluster_id = 1; uint64 member_id = 2; int64 revision = 3;
                         uint64 raft_term = 4; }
message KeyValue { bytes key = 1; int64 create_revision = 2; int64 mod_revision = 3;
                   int64 version = 4; bytes value = 5; int64 lease = 6; }
message Event { enum EventType { PUT = 0; DELETE = 1; } EventType type = 1; KeyValue kv = 2;
                KeyValue prev_kv = 3; }
message WatchCreateRequest { bytes key = 1; bytes range_end = 2; int64 start_revision = 3;
  bool progress_notify = 4; repeated int32 filters = 5; bool prev_kv = 6; int64 watch_id = 7;
  bool fragment = 8; }
message WatchCancelRequest { int64 watch_id = 1; }
message WatchProgressRequest {}
message WatchRequest { oneof request_union { WatchCreateRequest create_request = 1;
  WatchCancelRequest cancel_request = 2; WatchProgressRequest progress_request = 3; } }
message WatchResponse { ResponseHeader header = 1; int64 watch_id = 2; bool created = 3;
  bool canceled = 4; int64 compact_revision = 5; string cancel_reason = 6; bool fragment = 7;
  repeated Event events = 11; }
"""

def pb():
    """The test-local messages (compiled once per session)."""
    return harness.compile_proto(PROTO, "watchproto_msgs")


class Stream:
    def __init__(self, endpoint):
        P = pb()
        self._channel = grpc.insecure_channel(endpoint)
        self._requests = queue.Queue()
        self._responses = queue.Queue()
        call = self._channel.stream_stream(
            "/etcdserverpb.Watch/Watch", request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=P.WatchResponse.FromString)
        self._call = call(iter(self._requests.get, None))
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        try:
            for r in self._call:
                self._responses.put(r)
        except grpc.RpcError as e:
            self._responses.put(e)

    def create(self, **fields):
        P = pb()
        self._requests.put(P.WatchRequest(create_request=P.WatchCreateRequest(**fields)))

    def cancel(self, watch_id):
        P = pb()
        self._requests.put(P.WatchRequest(cancel_request=P.WatchCancelRequest(watch_id=watch_id)))

    def progress(self):
        P = pb()
        self._requests.put(P.WatchRequest(progress_request=P.WatchProgressRequest()))

    def next(self):
        try:
            item = self._responses.get(timeout=WAIT_S)
        except queue.Empty:
            raise AssertionError(f"no watch response within {WAIT_S}s") from None
        if isinstance(item, grpc.RpcError):
            raise AssertionError(f"watch stream failed: {item.code()} {item.details()}")
        d = proto_to_dict(item)
        for k in ("cluster_id", "member_id", "raft_term"):
            d.get("header", {}).pop(k, None)
        if "events" in d:
            d["events"] = [e["kv"]["key"] for e in d["events"]]
        return d

    def close(self):
        self._requests.put(None)
        self._call.cancel()
        self._channel.close()
        self._reader.join(timeout=WAIT_S)


def protocol_scenario(t):
    kv = t.cluster.client().kvstub
    endpoint = t.cluster.members[0].endpoint
    t.rpc("put a", lambda: kv.Put(etcdrpc.PutRequest(key=b"a", value=b"1")))
    s = Stream(endpoint)
    try:
        s.progress()
        s.create(key=b"a", watch_id=7)
        first = s.next()
        t.note("progress on an empty stream, then a create with watch_id 7", first)
        if first.get("watch_id") == -1:  # the progress notification came first
            t.note("created 7", s.next())
        s.create(key=b"a", watch_id=7)
        t.note("duplicate watch_id", s.next())
        s.create(key=b"b", range_end=b"a")
        t.note("empty range", s.next())
        s.cancel(99)
        s.create(key=b"c")
        t.note("cancel of an unknown id, then a create", s.next())
        s.progress()
        t.note("progress with synced watchers", s.next())
        kv.Put(etcdrpc.PutRequest(key=b"a", value=b"2"))
        t.note("event for watch 7", s.next())
        s.progress()
        t.note("progress after the event", s.next())
        s.cancel(7)
        t.note("cancel 7", s.next())
    finally:
        s.close()


def fragment_scenario(t):
    kv = t.cluster.client().kvstub
    endpoint = t.cluster.members[0].endpoint
    # etcd fragments responses larger than --max-request-bytes + 512 KiB (its gRPC
    # overhead allowance): six 150 kB values in one catch-up response are about 900 kB.
    big = b"x" * 150000
    start = None
    for i in range(6):
        r = t.rpc(f"put f/{i} (150 kB)",
                  lambda i=i: kv.Put(etcdrpc.PutRequest(key=b"f/%d" % i, value=big)))
        start = start or r.header.revision
    for fragment in (True, False):
        s = Stream(endpoint)
        try:
            s.create(key=b"f/", range_end=b"f0", start_revision=start, fragment=fragment)
            responses = [s.next()]
            events = 0
            while events < 6:
                r = s.next()
                events += len(r.get("events", []))
                responses.append(r)
            t.note(f"fragment={fragment}", responses)
        finally:
            s.close()


SCENARIOS = {
    "protocol": ([], protocol_scenario),
    "fragment": (["--max-request-bytes", "200000"], fragment_scenario),
}


def test_golden_protocol(server_kind, cluster_factory):
    check_golden(SCENARIOS, "protocol", server_kind, cluster_factory)


def test_golden_fragment(server_kind, cluster_factory):
    check_golden(SCENARIOS, "fragment", server_kind, cluster_factory)


def test_python_client_watch_then_cancel(server):
    """python etcd3's watch iterator sees put then delete; cancel ends the iterator."""
    import etcd3

    c = server.client()
    events, cancel = c.watch_prefix("pw/")
    c.put("pw/a", "1")
    c.delete("pw/a")
    got = queue.Queue()

    def consume():
        for e in events:
            got.put(e)
        got.put(None)  # the iterator ended

    threading.Thread(target=consume, daemon=True).start()
    put, deleted = got.get(timeout=WAIT_S), got.get(timeout=WAIT_S)
    assert isinstance(put, etcd3.events.PutEvent) and put.value == b"1"
    assert isinstance(deleted, etcd3.events.DeleteEvent) and deleted.key == b"pw/a"
    cancel()
    assert got.get(timeout=WAIT_S) is None


def test_ctl_watch_prints_events(server):
    """etcdctl watch --prefix --rev R prints history from R, then live events, as
    etcdctl does (type, key, value lines)."""
    c = server.client()
    rev = c.kvstub.Put(etcdrpc.PutRequest(key=b"cw/k", value=b"v0")).header.revision
    argv = [harness.ETCDCTL_BIN, "--endpoints", server.members[0].endpoint,
            "watch", "--prefix", "cw/", "--rev", str(rev)]
    env = dict(os.environ, ETCDCTL_API="3")
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(l.rstrip("\n")) for l in proc.stdout],
                     daemon=True).start()
    try:
        assert [lines.get(timeout=WAIT_S) for _ in range(3)] == ["PUT", "cw/k", "v0"]
        c.delete("cw/k")
        assert [lines.get(timeout=WAIT_S) for _ in range(2)] == ["DELETE", "cw/k"]
    finally:
        proc.kill()
        proc.wait(timeout=WAIT_S)
