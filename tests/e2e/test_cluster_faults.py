"""Three-member clusters under kill -9: the same cases against etcd and kvd.

- A follower killed: writes go on; restarted, it catches up.
- The leader killed: another member takes over and writes go on (bounded wait); the old
  leader restarted catches up.
- Every member killed at once while writers run: after a restart, every acknowledged write
  is there with its value.
- A member down while the others write enough to compact their logs past it: restarted,
  it catches up (kvd: by snapshot, which its log reports).

Every wait is bounded; writers are bounded in count and time.
"""

import threading
import time

import grpc
from etcd3 import etcdrpc

from harness import leader_of, status

RPC_TIMEOUT_S = 3.0
TAKEOVER_WAIT_S = 15.0
CATCH_UP_WAIT_S = 20.0


def put_until_ok(member, key, value, wait_s=TAKEOVER_WAIT_S):
    """Retries a put through member until it is acknowledged; returns its revision."""
    deadline = time.monotonic() + wait_s
    last = None
    while time.monotonic() < deadline:
        with grpc.insecure_channel(member.endpoint) as channel:
            try:
                resp = etcdrpc.KVStub(channel).Put(etcdrpc.PutRequest(key=key, value=value),
                                                   timeout=RPC_TIMEOUT_S)
                return resp.header.revision
            except grpc.RpcError as e:
                last = f"{e.code()}: {e.details()}"
        time.sleep(0.05)
    raise AssertionError(f"put through {member.name} not acknowledged in {wait_s}s: {last}")


def serializable_get(member, key):
    with grpc.insecure_channel(member.endpoint) as channel:
        resp = etcdrpc.KVStub(channel).Range(etcdrpc.RangeRequest(key=key, serializable=True),
                                             timeout=RPC_TIMEOUT_S)
        return resp.kvs[0].value if resp.kvs else None


def wait_caught_up(member, key, value):
    deadline = time.monotonic() + CATCH_UP_WAIT_S
    while time.monotonic() < deadline:
        try:
            if serializable_get(member, key) == value:
                return
        except grpc.RpcError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{member.name} did not catch up to {key!r} in {CATCH_UP_WAIT_S}s\n"
                         f"{member.log_tail()}")


def test_follower_killed_writes_go_on(server_kind, cluster_factory):
    cluster = cluster_factory(server_kind, size=3)
    leader = leader_of(cluster)
    follower = next(m for m in cluster.members if m is not leader)
    follower.kill9()
    for i in range(20):
        put_until_ok(leader, b"f/%d" % i, b"v%d" % i)
    cluster.restart_member(follower)
    wait_caught_up(follower, b"f/19", b"v19")


def test_leader_killed_another_takes_over(server_kind, cluster_factory):
    cluster = cluster_factory(server_kind, size=3)
    put_until_ok(cluster.members[0], b"before", b"1")
    old = leader_of(cluster)
    old.kill9()
    survivors = [m for m in cluster.members if m is not old]
    put_until_ok(survivors[0], b"after", b"2")
    new = leader_of(cluster, survivors)
    assert new is not old
    cluster.restart_member(old)
    wait_caught_up(old, b"after", b"2")
    assert serializable_get(old, b"before") == b"1"


class Writer:
    """Puts distinct keys through every member in turn; records what was acknowledged."""

    def __init__(self, cluster, writer_id, seconds):
        self.cluster = cluster
        self.writer_id = writer_id
        self.deadline = time.monotonic() + seconds
        self.acked = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        i = 0
        while not self.stop.is_set() and time.monotonic() < self.deadline and i < 20000:
            member = self.cluster.members[i % len(self.cluster.members)]
            key = b"w%d/%06d" % (self.writer_id, i)
            value = b"value-%d" % i
            try:
                with grpc.insecure_channel(member.endpoint) as channel:
                    etcdrpc.KVStub(channel).Put(etcdrpc.PutRequest(key=key, value=value),
                                                timeout=RPC_TIMEOUT_S)
                self.acked[key] = value
            except grpc.RpcError:
                pass  # unknown outcome: neither required nor forbidden afterwards
            i += 1


def test_whole_cluster_killed_loses_no_acknowledged_write(server_kind, cluster_factory):
    cluster = cluster_factory(server_kind, size=3)
    leader_of(cluster)
    writers = [Writer(cluster, w, seconds=8.0) for w in range(3)]
    for w in writers:
        w.thread.start()
    deadline = time.monotonic() + 8.0
    while sum(len(w.acked) for w in writers) < 300 and time.monotonic() < deadline:
        time.sleep(0.05)
    cluster.kill_all()  # SIGKILL every member while the writers run
    for w in writers:
        w.stop.set()
        w.thread.join(timeout=10)
    acked = {k: v for w in writers for k, v in w.acked.items()}
    assert len(acked) >= 50, "too few acknowledged writes to prove anything"
    for m in cluster.members:
        cluster.start_member(m, wait=False)
    for m in cluster.members:
        m.wait_ready()
    with grpc.insecure_channel(cluster.members[0].endpoint) as channel:
        resp = etcdrpc.KVStub(channel).Range(
            etcdrpc.RangeRequest(key=b"w", range_end=b"x"), timeout=RPC_TIMEOUT_S * 3)
    stored = {kv.key: kv.value for kv in resp.kvs}
    missing = [k for k in acked if stored.get(k) != acked[k]]
    assert not missing, f"{len(missing)} acknowledged writes lost, e.g. {missing[:5]}"


def test_member_far_behind_catches_up(server_kind, cluster_factory):
    cluster = cluster_factory(server_kind, size=3, extra_flags=["--snapshot-count=50"])
    leader = leader_of(cluster)
    lagging = next(m for m in cluster.members if m is not leader)
    lagging.kill9()
    for i in range(400):
        put_until_ok(leader, b"lag/%03d" % i, b"v%d" % i)
    cluster.restart_member(lagging)
    wait_caught_up(lagging, b"lag/399", b"v399")
    if server_kind == "kvd":
        # The leader's log was compacted past the lagging member: it needed the state.
        assert "installed snapshot" in lagging.log_tail()


def membership_ctl(cluster, *args):
    """etcdctl member ...; etcd refuses changes as "unhealthy cluster" for a few seconds
    after its members start (until it has heard from every peer): retried, bounded."""
    deadline = time.monotonic() + TAKEOVER_WAIT_S
    while True:
        r = cluster.etcdctl("member", *args)
        if r.returncode == 0 or "unhealthy cluster" not in r.stderr or \
                time.monotonic() > deadline:
            return r
        time.sleep(0.5)


def test_membership_changes_under_load_lose_nothing(server_kind, cluster_factory):
    """A fourth member joins as a learner, catches up, is promoted, and an old member is
    removed, while a writer keeps writing: every acknowledged write is on every member."""
    import harness

    cluster = cluster_factory(server_kind, size=3)
    leader_of(cluster)
    put_until_ok(cluster.members[0], b"before-join", b"1")
    writer = Writer(cluster, 9, seconds=30.0)
    writer.thread.start()
    try:
        client_port, peer_port = harness.free_ports(2)
        new = harness.Member(server_kind, "m3", cluster.workdir, client_port, peer_port)
        # etcdctl: python etcd3's protos predate learners.
        r = membership_ctl(cluster, "add", "m3", "--learner", f"--peer-urls={new.peer_url}")
        assert r.returncode == 0, r.stderr
        new_id = r.stdout.split()[1]  # "Member <hex id> added to cluster <hex id>"
        initial = cluster.initial_cluster + f",m3={new.peer_url}"
        new.start(initial, ["--initial-cluster-state", "existing"])
        cluster.members.append(new)
        # A learner answers only serializable reads (as etcd's): wait for one to succeed.
        wait_caught_up(new, b"before-join", b"1")

        # Promote once the learner has caught up (the leader refuses until then).
        deadline = time.monotonic() + CATCH_UP_WAIT_S
        while True:
            r = cluster.etcdctl("member", "promote", new_id, member=leader_of(cluster))
            if r.returncode == 0:
                break
            assert time.monotonic() < deadline, f"promote never accepted: {r.stderr}"
            time.sleep(0.2)

        old = cluster.members[1]
        r = membership_ctl(cluster, "remove", "%x" % status(old).header.member_id)
        assert r.returncode == 0, r.stderr
        cluster.members.remove(old)
        old.kill9()
        time.sleep(1.0)  # the writer goes on against the new membership
    finally:
        writer.stop.set()
        writer.thread.join(timeout=10)

    assert len(writer.acked) >= 50, "too few acknowledged writes to prove anything"
    last = max(writer.acked)
    put_until_ok(cluster.members[0], b"fence", b"1")  # everything before is committed
    for m in cluster.members:
        wait_caught_up(m, b"fence", b"1")
        with grpc.insecure_channel(m.endpoint) as channel:
            resp = etcdrpc.KVStub(channel).Range(
                etcdrpc.RangeRequest(key=b"w9/", range_end=b"w90", serializable=True),
                timeout=RPC_TIMEOUT_S * 3)
        stored = {kv.key: kv.value for kv in resp.kvs}
        missing = [k for k, v in writer.acked.items() if stored.get(k) != v]
        assert not missing, f"{m.name}: {len(missing)} acknowledged writes missing " \
                            f"(e.g. {missing[:3]}; last acked {last!r})"
    r = cluster.etcdctl("member", "list")  # id, status, name, peer, client, is-learner
    assert r.returncode == 0, r.stderr
    listed = [line.split(", ") for line in r.stdout.strip().splitlines()]
    assert sorted(f[2] for f in listed) == sorted(m.name for m in cluster.members)
    assert all(f[5] == "false" for f in listed), r.stdout
