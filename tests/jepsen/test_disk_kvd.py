"""kvd under disk faults (tools/jepsen/disk_nemesis.py, faultfs), on real kvd processes.

- fsync fails (EIO): the member stops at once (fail-stop), never acknowledging what it
  could not sync, and recovers from its log when restarted.
- full disk (ENOSPC): the member stops, saying so; cleared and restarted, it catches up.
- lost un-fsynced writes (kill -9 + a power loss) on every member at once: nothing
  acknowledged is lost; with the planted bug --kvd-plant-bug=no-fsync it is (the fault
  and the check are real).
- a torn WAL tail: recovered. A bit flipped in a WAL record: the member refuses to start,
  naming the corruption, the others serve, wipe_and_rejoin brings it back.
"""

import os
import random
import signal
import sys
import time
from pathlib import Path

import grpc
import pytest
from etcd3 import etcdrpc

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
from tools.faultfs import control  # noqa: E402
from tools.jepsen import disk_nemesis  # noqa: E402
from tools.jepsen.cluster import Cluster  # noqa: E402

RPC_TIMEOUT_S = 3.0
WAIT_S = 20.0


def kvd_binary():
    path = Cluster.default_binary("kvd")
    if not os.access(path, os.X_OK):
        pytest.fail(f"kvd binary not found: {path} (set KVD_BIN)", pytrace=False)
    return path


@pytest.fixture
def make_cluster():
    made = []

    def make(size=3, extra_flags=()):
        c = Cluster("kvd", size, binary=kvd_binary(), extra_flags=extra_flags,
                    log=lambda msg: None)
        made.append(c)
        lib = disk_nemesis.faultfs_lib(c)
        if not os.path.exists(lib):
            pytest.fail(f"faultfs shim not built: {lib}", pytrace=False)
        disk_nemesis.prepare(c)
        c.start()
        return c

    yield make
    for c in made:
        c.close()


def put(member, key, value, timeout=RPC_TIMEOUT_S):
    with member.channel() as ch:
        return etcdrpc.KVStub(ch).Put(etcdrpc.PutRequest(key=key, value=value), timeout=timeout)


def read_prefix(member, prefix, serializable=False, timeout=RPC_TIMEOUT_S):
    with member.channel() as ch:
        r = etcdrpc.KVStub(ch).Range(
            etcdrpc.RangeRequest(key=prefix, range_end=prefix[:-1] + bytes([prefix[-1] + 1]),
                                 serializable=serializable), timeout=timeout)
    return {kv.key: kv.value for kv in r.kvs}


def write_keys(members, prefix, n):
    """Puts prefix+i for i < n through the given members in turn; the acknowledged ones."""
    acked = {}
    for i in range(n):
        key, value = prefix + b"%04d" % i, b"v%d" % i
        try:
            put(members[i % len(members)], key, value)
            acked[key] = value
        except grpc.RpcError:
            pass
    return acked


def eventually(fn, what, timeout=WAIT_S):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            ok = fn()
            if ok:
                return ok
        except grpc.RpcError as e:
            last = e
        time.sleep(0.2)
    raise AssertionError(f"{what} not within {timeout}s (last error: {last})")


def hashkv(member):
    with member.channel() as ch:
        r = etcdrpc.MaintenanceStub(ch).HashKV(etcdrpc.HashKVRequest(revision=0),
                                               timeout=RPC_TIMEOUT_S)
    return r.header.revision, r.hash


def assert_converged(cluster, acked, prefix):
    """Every member holds every acknowledged key, and all have equal HashKV."""
    for m in cluster.members:
        eventually(lambda m=m: all(read_prefix(m, prefix, serializable=True).get(k) == v
                                   for k, v in acked.items()),
                   f"{m.name} holds every acknowledged key")
    eventually(lambda: len({hashkv(m) for m in cluster.members}) == 1, "equal HashKV")


def wait_exit(member, timeout=WAIT_S):
    deadline = time.monotonic() + timeout
    while member.alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    return not member.alive()


def log_text(member):
    return Path(member.log_path).read_text(errors="replace")


def test_fsync_eio_single_member_fails_stop_and_acknowledges_nothing(make_cluster):
    c = make_cluster(size=1)
    m = c.members[0]
    acked = write_keys([m], b"fs/", 5)
    assert len(acked) == 5
    control.set_faults(disk_nemesis.state_dir(m), "fsync-eio")
    with pytest.raises(grpc.RpcError):
        put(m, b"fs/unsynced", b"x")  # the only copy could not be synced: no OK
    assert wait_exit(m), "kvd went on after a failed fsync"
    assert m.returncode() != 0
    assert "storage write failed" in log_text(m) and "Input/output error" in log_text(m)
    control.set_faults(disk_nemesis.state_dir(m))
    control.drop_unsynced(m.data_dir, disk_nemesis.state_dir(m))
    m.start()
    m.wait_ready()
    got = read_prefix(m, b"fs/")
    assert all(got.get(k) == v for k, v in acked.items())


@pytest.mark.parametrize("target", ["leader", "follower"])
def test_fsync_eio_member_stops_cluster_goes_on_and_it_recovers(make_cluster, target):
    c = make_cluster()
    leader = c.wait_leader()
    victim = leader if target == "leader" else next(m for m in c.members if m is not leader)
    others = [m for m in c.members if m is not victim]
    acked = write_keys(others, b"fe/", 10)
    control.set_faults(disk_nemesis.state_dir(victim), "fsync-eio")
    acked.update(write_keys(others, b"fe/a", 20))
    assert wait_exit(victim), f"{victim.name} went on after a failed fsync"
    assert "storage write failed" in log_text(victim)
    # The other two go on serving writes.
    more = eventually(lambda: write_keys(others, b"fe/b", 5), "writes on the other members")
    acked.update(more)
    control.set_faults(disk_nemesis.state_dir(victim))
    # What a failed fsync did not write may be gone from the page cache too (fsyncgate).
    control.drop_unsynced(victim.data_dir, disk_nemesis.state_dir(victim))
    victim.start()
    victim.wait_ready()
    assert_converged(c, acked, b"fe/")


def test_disk_full_member_stops_then_catches_up(make_cluster):
    c = make_cluster()
    victim = c.followers()[0]
    others = [m for m in c.members if m is not victim]
    control.set_faults(disk_nemesis.state_dir(victim), "enospc")
    acked = write_keys(others, b"df/", 20)
    assert wait_exit(victim), "kvd went on with a full disk"
    assert victim.returncode() != 0
    assert "no space left on device" in log_text(victim)
    # Restarting while the disk is still full fails cleanly, damaging nothing.
    victim.start()
    assert wait_exit(victim)
    control.set_faults(disk_nemesis.state_dir(victim))
    victim.start()
    victim.wait_ready()
    acked.update(write_keys(others, b"df/x", 5))
    assert_converged(c, acked, b"df/")


def test_fault_nemeses_stop_the_member_and_heal(make_cluster):
    c = make_cluster()
    acked = {}
    for i, cls in enumerate([disk_nemesis.DiskFull, disk_nemesis.FsyncError]):
        n = cls(c, random.Random(i))
        desc = n.start()
        victim = c.member(desc["targets"][0])
        others = [m for m in c.members if m is not victim]
        acked.update(eventually(lambda: write_keys(others, b"fn/%d/" % i, 10), "writes"))
        assert wait_exit(victim), f"{victim.name} went on under {cls.name}"
        out = n.stop()
        assert out["stopped"] and out["exit_code"] == 1 and out["ready"], out
        assert ("no space left" if cls is disk_nemesis.DiskFull else "Input/output error") in \
            out["reason"], out
    assert_converged(c, acked, b"fn/")


@pytest.mark.parametrize("bug", [None, "no-fsync"])
def test_lost_writes_on_every_member_keep_what_was_acknowledged(make_cluster, bug):
    flags = ["--kvd-plant-bug", bug] if bug else []
    c = make_cluster(extra_flags=flags)
    acked = write_keys(c.members, b"lw/", 30)
    assert len(acked) == 30
    for m in c.members:
        m.kill(signal.SIGKILL)
    dropped = 0
    for m in c.members:
        report = control.drop_unsynced(m.data_dir, disk_nemesis.state_dir(m))
        dropped += sum(report["truncated"].values())
    assert dropped > 0, "a kill -9 right after writes leaves something un-fsynced"
    for m in c.members:
        m.start()
    c.wait_healthy()
    got = read_prefix(c.wait_leader(), b"lw/")
    lost = sorted(k for k in acked if got.get(k) != acked[k])
    if bug is None:
        assert lost == [], f"acknowledged writes lost: {lost}"
        assert_converged(c, acked, b"lw/")
    else:
        assert lost, "with --kvd-plant-bug=no-fsync a power loss must lose acknowledged writes"


def test_lost_writes_nemesis_one_or_all(make_cluster):
    c = make_cluster()
    acked = {}
    for seed in range(4):
        n = disk_nemesis.LostWrites(c, random.Random(seed))
        acked.update(write_keys(c.members, b"ln/%d/" % seed, 10))
        desc = n.start()
        assert desc["targets"]
        out = n.stop()
        assert out["ready"], out
        c.wait_healthy()
    assert_converged(c, acked, b"ln/")


@pytest.mark.parametrize("mode", ["cut", "append"])
def test_torn_tail_recovers(make_cluster, mode):
    c = make_cluster()
    acked = write_keys(c.members, b"tt/", 20)
    rng = random.Random(5)
    modes = []
    for victim in c.members:
        victim.kill(signal.SIGKILL)
        torn = disk_nemesis.tear_tail(victim, rng, mode)
        assert torn is not None
        modes.append(torn["mode"])
        if torn["mode"] == "cut":
            assert torn["synced"] < torn["at"] < torn["size_was"], torn  # only unsynced
        others = [m for m in c.members if m is not victim]
        acked.update(write_keys(others, b"tt/%s/" % victim.name.encode(), 5))
        victim.start()
        victim.wait_ready()
    # Every WAL record a member writes in normal operation is synced: the applied state
    # skips the WAL and a new commit index alone is not written (storage/engine.h,
    # storage/raft_log.h). So "cut" finds no unsynced tail and tears the record being
    # written instead; an unsynced record here would be one a power loss could take.
    assert mode != "cut" or set(modes) == {"append-partial"}, modes
    assert_converged(c, acked, b"tt/")


def test_torn_tail_nemesis(make_cluster):
    c = make_cluster()
    acked = write_keys(c.members, b"tn/", 20)
    n = disk_nemesis.TornTail(c, random.Random(1))
    desc = n.start()
    assert desc["torn"] is not None, desc
    others = [m for m in c.members if m.name not in desc["targets"]]
    acked.update(write_keys(others, b"tn/x", 5))
    out = n.stop()
    assert out["ready"], (desc, out, c.log_tails())
    assert_converged(c, acked, b"tn/")


def test_bitflip_refuses_to_start_and_wipe_and_rejoin_repairs(make_cluster):
    c = make_cluster()
    acked = write_keys(c.members, b"bf/", 20)
    n = disk_nemesis.BitflipTail(c, random.Random(7))
    desc = n.start()
    assert desc["flip"] is not None, desc
    victim = c.member(desc["targets"][0])
    assert desc["refused"], f"kvd started on a corrupt WAL: {desc}\n{victim.log_tail()}"
    assert victim.returncode() != 0
    assert "Corruption" in desc["reason"] and "checksum mismatch" in desc["reason"], desc
    # The other two serve meanwhile.
    others = [m for m in c.members if m is not victim]
    acked.update(eventually(lambda: write_keys(others, b"bf/x", 5), "writes on the others"))
    out = n.stop()
    assert out["ready"] and out["wiped_and_rejoined"], out
    assert_converged(c, acked, b"bf/")


def test_plant_bug_flag_is_checked_and_loud(tmp_path):
    import subprocess
    r = subprocess.run([kvd_binary(), "--kvd-plant-bug=bogus", "--data-dir", str(tmp_path)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    assert "--kvd-plant-bug: unknown bug 'bogus'" in r.stderr
    with Cluster("kvd", 1, binary=kvd_binary(), extra_flags=["--kvd-plant-bug=local-reads"],
                 log=lambda msg: None) as c:
        c.start()
        text = log_text(c.members[0])
        assert "WARNING: --kvd-plant-bug is set" in text and "local-reads" in text


def test_heal_all_repairs_a_refusing_member(make_cluster):
    c = make_cluster()
    acked = write_keys(c.members, b"ha/", 10)
    n = disk_nemesis.BitflipTail(c, random.Random(3))
    desc = n.start()
    assert desc["refused"], desc
    control.set_faults(disk_nemesis.state_dir(c.members[0]), "enospc")  # heal_all clears it
    out = n.heal_all()
    assert out["ready"], out
    assert control.faults(disk_nemesis.state_dir(c.members[0])) == []
    assert_converged(c, acked, b"ha/")
