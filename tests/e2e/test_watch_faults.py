"""Watch consistency under leader kills: the same case against etcd and kvd.

Three members. Two watchers per member follow the prefix wf/ on raw Watch streams; a
writer puts two keys per txn (two events in one revision) and now and then deletes one,
failing over between members. The leader is killed (kill -9) and restarted, twice. A
watcher whose stream breaks (its member died, or the server ended the stream) watches
again from its last revision + 1, on the next member that answers.

At the end a sentinel key is written; every watcher reads until it sees it. Then:
- every response's events are in revision order and a revision never continues in the
  next response (the events of one revision arrive together), across reconnects too;
- each watcher's events are exactly the history of the prefix (a watch from revision 1,
  read on one member at the end) from the revision it started at: gap-free,
  duplicate-free, in order, same keys, types and values.

Bounded: the faults take about 20 s, every read and every wait has a deadline, the writer
stops with the faults.
"""

import threading
import time

import grpc
from etcd3 import etcdrpc

import harness

PREFIX, PREFIX_END = b"wf/", b"wf0"
SENTINEL = b"wf/~end"
WATCHERS_PER_MEMBER = 2
KILL_ROUNDS = 2
DOWN_S = 2.0  # how long the killed leader stays down (writes go on meanwhile)
SETTLE_S = 2.0  # after a restart, before the next kill
POLL_S = 0.5
FINISH_WAIT_S = 30.0
RPC_TIMEOUT_S = 3.0

Op = etcdrpc.RequestOp


def event_tuple(ev):
    return (ev.kv.mod_revision, ev.type, ev.kv.key, ev.kv.value)


class Watcher:
    """Follows the prefix from start_rev; reconnects from its last revision + 1."""

    def __init__(self, cluster, home, start_rev, deadline):
        self.cluster = cluster
        self.home = home  # index of the member it starts on
        self.next_rev = start_rev
        self.start_rev = start_rev
        self.deadline = deadline
        self.events = []
        self.problems = []  # ordering violations seen in responses
        self.reconnects = 0
        self.saw_sentinel = False
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        members = self.cluster.members
        attempt = 0
        while not self.saw_sentinel and not self.stop.is_set() \
                and time.monotonic() < self.deadline:
            member = members[(self.home + attempt) % len(members)]
            attempt += 1
            if not member.running():
                continue
            stream = harness.WatchStream(member.endpoint)
            try:
                stream.create(key=PREFIX, range_end=PREFIX_END, start_revision=self.next_rev)
                self.follow(stream)
            finally:
                stream.close()
            self.reconnects += 1
            time.sleep(0.05)
        if not self.saw_sentinel:
            self.problems.append("never saw the sentinel")

    def follow(self, stream):
        """Reads until the stream breaks or the sentinel arrives."""
        while not self.stop.is_set() and time.monotonic() < self.deadline:
            resp = stream.poll(POLL_S)
            if resp is None:
                continue
            if isinstance(resp, grpc.RpcError) or resp.canceled:
                return
            if not resp.events:
                continue
            revs = [ev.kv.mod_revision for ev in resp.events]
            if revs != sorted(revs):
                self.problems.append(f"revisions out of order in one response: {revs}")
            if revs[0] < self.next_rev:
                self.problems.append(f"revision {revs[0]} again (expected >= {self.next_rev})")
            self.events += [event_tuple(ev) for ev in resp.events]
            self.next_rev = revs[-1] + 1
            if any(ev.kv.key == SENTINEL for ev in resp.events):
                self.saw_sentinel = True
                return


class Writer:
    """Txns of two puts (one revision, two events), a delete every fifth; fails over."""

    def __init__(self, cluster):
        self.cluster = cluster
        self.stop = threading.Event()
        self.acked = 0
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        i, member = 0, 0
        while not self.stop.is_set() and i < 20000:
            m = self.cluster.members[member % len(self.cluster.members)]
            ops = [Op(request_put=etcdrpc.PutRequest(key=b"wf/a%d" % i, value=b"%d" % i)),
                   Op(request_put=etcdrpc.PutRequest(key=b"wf/b%d" % (i % 7), value=b"%d" % i))]
            if i % 5 == 4:
                ops.append(Op(request_delete_range=etcdrpc.DeleteRangeRequest(
                    key=b"wf/a%d" % (i - 3))))
            try:
                harness.rpc(m, etcdrpc.KVStub, "Txn", etcdrpc.TxnRequest(success=ops),
                            timeout=RPC_TIMEOUT_S)
                self.acked += 1
            except grpc.RpcError:
                member += 1  # unknown outcome; the final history decides
                time.sleep(0.02)
            i += 1
            time.sleep(0.005)


def history(member, until_rev):
    """Every event under the prefix from revision 1 up to until_rev, from one member."""
    stream = harness.WatchStream(member.endpoint)
    events = []
    try:
        stream.create(key=PREFIX, range_end=PREFIX_END, start_revision=1)
        deadline = time.monotonic() + FINISH_WAIT_S
        while not events or events[-1][0] < until_rev:
            assert time.monotonic() < deadline, "history read did not reach the sentinel"
            resp = stream.next(timeout=FINISH_WAIT_S)
            events += [event_tuple(ev) for ev in resp.events]
    finally:
        stream.close()
    return events


def test_watchers_see_the_history_across_leader_kills(server_kind, cluster_factory):
    cluster = cluster_factory(server_kind, size=3)
    harness.leader_of(cluster)
    start = harness.until_ok(lambda: harness.rpc(
        cluster.members[0], etcdrpc.KVStub, "Put", etcdrpc.PutRequest(key=b"wf/start")))
    deadline = time.monotonic() + 60.0
    watchers = [Watcher(cluster, i % 3, start.header.revision + 1 + i, deadline)
                for i in range(WATCHERS_PER_MEMBER * len(cluster.members))]
    writer = Writer(cluster)
    try:
        for w in watchers:
            w.thread.start()
        writer.thread.start()
        for _ in range(KILL_ROUNDS):
            time.sleep(SETTLE_S)
            leader = harness.leader_of(cluster)
            leader.kill9()
            time.sleep(DOWN_S)
            cluster.start_member(leader)
        time.sleep(SETTLE_S)
    finally:
        writer.stop.set()
        writer.thread.join(timeout=FINISH_WAIT_S)
    assert writer.acked > 0
    end = harness.until_ok(lambda: harness.rpc(
        cluster.members[0], etcdrpc.KVStub, "Put", etcdrpc.PutRequest(key=SENTINEL)))
    for w in watchers:
        w.thread.join(timeout=FINISH_WAIT_S)
    for w in watchers:
        w.stop.set()
    expected_all = history(cluster.members[0], end.header.revision)
    assert expected_all[-1][2] == SENTINEL
    for n, w in enumerate(watchers):
        assert not w.thread.is_alive(), f"watcher {n} still running"
        assert not w.problems, f"watcher {n}: {w.problems}"
        expected = [e for e in expected_all if e[0] >= w.start_rev]
        got = w.events
        if got != expected:
            first = next((i for i, (a, b) in enumerate(zip(got, expected)) if a != b),
                         min(len(got), len(expected)))
            raise AssertionError(
                f"watcher {n} (from rev {w.start_rev}, {w.reconnects} reconnects): "
                f"{len(got)} events, history has {len(expected)}; first difference at "
                f"#{first}: got {got[first:first + 3]} expected {expected[first:first + 3]}")
    print(f"{writer.acked} txns acknowledged, history {len(expected_all)} events, "
          f"reconnects {[w.reconnects for w in watchers]}")
