"""Tests of the fault harness' nemeses (tools/jepsen/nemesis.py) on real kvd and etcd.

Each nemesis is started and stopped on a three-member cluster; the test checks the fault
really happened (process gone or stopped, packets dropped, clock faked, member removed,
follower caught up by snapshot) and that after stop() every member runs and serves
linearizable reads of a fresh write. Clusters are shared per (server, network mode)
within this module, and healed and checked between tests. Ids end in [kvd] / [etcd].
"""

import os
import random
import sys
import time
import types
from pathlib import Path

import pytest
from etcd3 import etcdrpc

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tools.jepsen import nemesis as nem  # noqa: E402
from tools.jepsen.cluster import Cluster  # noqa: E402

KINDS = ["kvd", "etcd"]
SNAPSHOT_FLAGS = list(nem.SnapshotCatchup.cluster_flags)
J1_NAMES = {
    "kill", "kill-leader", "kill-all", "pause", "pause-leader", "partition-half",
    "partition-leader", "partition-bridge", "partition-flap", "clock-skew",
    "snapshot-catchup", "member-change"
}


@pytest.fixture(scope="module")
def clusters():
    made = {}

    def get(kind, netns):
        c = made.get((kind, netns))
        if c is None or c.closed:
            path = Cluster.default_binary(kind)
            if not os.access(path, os.X_OK):
                pytest.fail(f"{kind} binary not found: {path} (set KVD_BIN)", pytrace=False)
            c = Cluster(kind, 3, netns=netns, binary=path, extra_flags=SNAPSHOT_FLAGS,
                        log=lambda msg: None)
            made[(kind, netns)] = c
            c.start()
        return c

    yield get
    for c in made.values():
        c.close()


@pytest.fixture
def run_nemesis(clusters):
    """run_nemesis(name, kind, netns) -> (cluster, nemesis); heals and checks at the end
    (a cluster that does not recover is closed so the next test gets a fresh one)."""
    used = []

    def make(name, kind, netns=False, seed=1):
        c = clusters(kind, netns)
        n = nem.registry()[name](c, random.Random(seed))
        used.append(n)
        return c, n

    yield make
    for n in used:
        try:
            n.heal_all()
            n.cluster.wait_healthy(20)
        except Exception:
            n.cluster.close()
            raise


def put(member, key, value):
    with member.channel() as ch:
        etcdrpc.KVStub(ch).Put(etcdrpc.PutRequest(key=key, value=value), timeout=5)


def get(member, key, timeout=5):
    with member.channel() as ch:
        r = etcdrpc.KVStub(ch).Range(etcdrpc.RangeRequest(key=key), timeout=timeout)
    return r.kvs[0].value if r.kvs else None


def assert_serving(c):
    """Every member runs, no cut, and a fresh write is read linearizably on each."""
    assert c.blocked() == {} if c.netns else True
    for m in c.members:
        assert m.alive() and not m.paused and not m.removed, m
    value = f"v{time.monotonic_ns()}".encode()
    put(c.wait_leader(10), b"check", value)
    for m in c.members:
        assert get(m, b"check") == value, m


def log_since(member, offset):
    with open(member.log_path, "rb") as f:
        f.seek(offset)
        return f.read().decode(errors="replace")


def environ(member):
    return Path(f"/proc/{member.proc.pid}/environ").read_bytes().split(b"\0")


# --- registry and determinism --------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)  # (the ids give ctest's -k kvd / -k etcd a side)
def test_registry_names_and_applicability(monkeypatch, kind):
    reg = nem.registry()
    assert J1_NAMES <= set(reg)
    for name, cls in reg.items():
        assert cls.name == name
    fake = lambda kind, netns: types.SimpleNamespace(kind=kind, netns=netns)
    loop_etcd = set(nem.applicable(fake("etcd", False)))
    assert "kill" in loop_etcd and "member-change" in loop_etcd
    assert "clock-skew" not in loop_etcd and "partition-half" not in loop_etcd
    assert {"clock-skew", "partition-half"} <= set(nem.applicable(fake("kvd", True)))
    with pytest.raises(ValueError):
        nem.ClockSkew(types.SimpleNamespace(kind="etcd", netns=True), random.Random(1))
    with pytest.raises(ValueError):
        nem.PartitionHalf(types.SimpleNamespace(kind="kvd", netns=False), random.Random(1))

    # The disk nemeses are merged in when their module exists (list or dict).
    class Disk(nem.Nemesis):
        name = "disk-fake"

    module = types.ModuleType("tools.jepsen.disk_nemesis")
    module.NEMESES = [Disk]
    monkeypatch.setitem(sys.modules, "tools.jepsen.disk_nemesis", module)
    assert nem.registry()["disk-fake"] is Disk and J1_NAMES <= set(nem.registry())


@pytest.mark.parametrize("kind", KINDS)
def test_same_seed_same_faults(kind):
    members = [types.SimpleNamespace(name=f"n{i}", ip=f"10.0.0.{i}") for i in range(1, 6)]
    fake = types.SimpleNamespace(kind=kind, netns=True, members=members)

    def groups(seed):
        n = nem.PartitionHalf(fake, random.Random(seed))
        return [[[m.name for m in g] for g in n.groups()] for _ in range(5)]

    assert groups(7) == groups(7)
    assert len({str(groups(s)) for s in range(10)}) > 1
    assert all(len(g[0]) == 3 and len(g[1]) == 2 for g in groups(3))


@pytest.mark.parametrize("kind", KINDS)
def test_snapshot_count_flag(kind):
    assert nem.snapshot_count(["--snapshot-count", "200"]) == 200
    assert nem.snapshot_count(["--x", "--snapshot-count=50"]) == 50
    assert nem.snapshot_count([]) == 100000


# --- process faults ------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_kill_and_kill_leader(run_nemesis, kind):
    c, n = run_nemesis("kill", kind)
    d = n.start()
    (target,) = [c.member(t) for t in d["targets"]]
    assert not target.alive()
    c.wait_leader(10)  # two of three still elect
    assert n.stop()["ready"]
    assert_serving(c)

    c, n = run_nemesis("kill-leader", kind)
    lead = c.wait_leader()
    d = n.start()
    assert d["targets"] == [lead.name] and not lead.alive()
    assert c.wait_leader(10) is not lead
    assert n.stop()["ready"]
    assert_serving(c)


@pytest.mark.parametrize("kind", KINDS)
def test_kill_all_keeps_acknowledged_writes(run_nemesis, kind):
    c, n = run_nemesis("kill-all", kind)
    put(c.wait_leader(), b"durable", b"yes")
    d = n.start()
    assert sorted(d["targets"]) == ["n1", "n2", "n3"]
    assert not any(m.alive() for m in c.members)
    assert n.stop()["ready"]
    assert get(c.members[0], b"durable") == b"yes"
    assert_serving(c)


@pytest.mark.parametrize("kind", KINDS)
def test_pause_and_pause_leader(run_nemesis, kind):
    for name in ("pause", "pause-leader"):
        c, n = run_nemesis(name, kind)
        lead = c.wait_leader()
        d = n.start()
        (target,) = [c.member(t) for t in d["targets"]]
        assert target.proc_state() == "T"
        if name == "pause-leader":
            assert target is lead
            assert c.wait_leader(10) is not lead
        assert n.stop()["ready"]
        assert target.proc_state() != "T"
        assert_serving(c)


# --- partitions ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_partition_half_and_leader(run_nemesis, kind):
    c, n = run_nemesis("partition-half", kind, netns=True)
    d = n.start()
    minority = [c.member(x) for x in d["targets"]]
    majority = [m for m in c.members if m not in minority]
    assert len(minority) == 1 and len(majority) == 2
    assert not minority[0].serves(timeout=2)
    assert c.wait_leader(10) in majority and majority[0].serves(timeout=5)
    assert n.stop()["ready"]
    assert_serving(c)

    c, n = run_nemesis("partition-leader", kind, netns=True, seed=2)
    lead = c.wait_leader()
    d = n.start()
    assert d["targets"] == [lead.name]
    assert not lead.serves(timeout=2)
    assert c.wait_leader(10) is not lead
    assert n.stop()["ready"]
    assert_serving(c)


@pytest.mark.parametrize("kind", KINDS)
def test_partition_bridge(run_nemesis, kind):
    c, n = run_nemesis("partition-bridge", kind, netns=True)
    d = n.start()
    bridge = c.member(d["bridge"])
    (left,), (right,) = [[c.member(x) for x in g] for g in d["groups"]]
    cuts = c.blocked()
    assert cuts[left.name] == [right.ip] and cuts[right.name] == [left.ip]
    assert bridge.name not in cuts
    c.wait_leader(10)
    assert bridge.serves(timeout=5)  # linked to both sides: it has a majority
    assert n.stop()["ready"]
    assert_serving(c)


@pytest.mark.parametrize("kind", KINDS)
def test_partition_flap(run_nemesis, kind):
    c, n = run_nemesis("partition-flap", kind, netns=True)
    n.start()
    deadline = time.monotonic() + 10
    seen_cut = False
    while time.monotonic() < deadline and not (seen_cut and len(n.flaps) >= 2):
        seen_cut = seen_cut or bool(c.blocked())
        time.sleep(0.05)
    assert seen_cut and len(n.flaps) >= 2
    d = n.stop()
    assert d["ready"] and d["flaps"] and c.blocked() == {}
    assert_serving(c)


# --- clock, snapshots, membership ----------------------------------------------------


def test_clock_skew_kvd(run_nemesis):
    c, n = run_nemesis("clock-skew", "kvd")
    other = "/usr/lib/x86_64-linux-gnu/libc_malloc_debug.so.0"  # a harmless preload
    for m in c.members:
        m.extra_env["LD_PRELOAD"] = other  # as the faultfs shim of the disk nemeses
    d = n.start()
    target = c.member(d["targets"][0])
    assert d["ready"]
    env = environ(target)
    assert f"FAKETIME={d['faketime']}".encode() in env
    assert f"LD_PRELOAD={nem.LIBFAKETIME}:{other}".encode() in env
    assert "libfaketime" in Path(f"/proc/{target.proc.pid}/maps").read_text()  # loaded
    assert_serving(c)  # a member on a skewed clock still serves
    assert n.stop()["ready"]
    env = environ(target)
    assert not any(e.startswith(b"FAKETIME=") for e in env)
    assert f"LD_PRELOAD={other}".encode() in env
    assert "libfaketime" not in Path(f"/proc/{target.proc.pid}/maps").read_text()
    for m in c.members:
        m.extra_env.pop("LD_PRELOAD")
    assert_serving(c)


def catch_up_by_snapshot(c, seed):
    """One snapshot-catchup round; asserts the target installed a snapshot."""
    n = nem.SnapshotCatchup(c, random.Random(seed))
    lead = c.wait_leader()
    offsets = {m.name: os.path.getsize(m.log_path) for m in c.members}
    d = n.start()
    target = c.member(d["targets"][0])
    assert target is not lead and d["how"] == ("partition" if c.netns else "kill")
    assert d["filler_written"] == d["filler_writes"] == n.filler_writes(), d
    try:
        d = n.stop()
    finally:
        n.heal_all()
    assert d["ready"] and d["filler_written"] >= n.filler_writes(), d
    text = log_since(target, offsets[target.name])
    # kvd: "installed snapshot at index"; etcd 3.4: "received and saved database snapshot".
    assert "installed snapshot" in text or "saved database snapshot" in text, (
        f"round {seed}: {target.name} caught up without a snapshot\n{c.log_tails(5)}")
    assert_serving(c)


@pytest.mark.parametrize("netns", [False, True], ids=["loopback", "netns"])
@pytest.mark.parametrize("kind", KINDS)
def test_snapshot_catchup(kind, netns):
    """On a fresh cluster (etcd's leader does not compact for 30 s after sending a
    snapshot, so rounds on a shared cluster would not all need one)."""
    with Cluster(kind, 3, netns=netns, binary=Cluster.default_binary(kind),
                 extra_flags=SNAPSHOT_FLAGS, log=lambda msg: None) as c:
        c.start()
        catch_up_by_snapshot(c, 1)


def test_snapshot_catchup_twice_kvd():
    with Cluster("kvd", 3, netns=True, binary=Cluster.default_binary("kvd"),
                 extra_flags=SNAPSHOT_FLAGS, log=lambda msg: None) as c:
        c.start()
        catch_up_by_snapshot(c, 1)
        catch_up_by_snapshot(c, 2)


@pytest.mark.parametrize("kind", KINDS)
def test_member_change(run_nemesis, kind):
    c, n = run_nemesis("member-change", kind)
    old_ids = {m.name: m.id for m in c.members}
    d = n.start()
    target = c.member(d["targets"][0])
    old_id = old_ids[target.name]
    listed = c.member_list()
    assert len(listed) == 2 and target.name not in [m.name for m in listed]
    assert not target.alive() and target.removed
    put(c.wait_leader(10), b"during", b"2-members")
    d = n.stop()
    assert d["ready"]
    assert {m.ID for m in c.member_list()} == {m.id for m in c.members}
    assert int(d["id"], 16) == target.id != old_id
    assert get(target, b"during") == b"2-members"
    assert_serving(c)
