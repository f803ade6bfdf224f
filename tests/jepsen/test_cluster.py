"""Tests of the fault harness' cluster runner (tools/jepsen/cluster.py) on real servers.

Every test runs on kvd and on etcd (ids end in [kvd] / [etcd]: select with -k), in
loopback mode and in network-namespace mode: start three members, kill/restart and
pause/resume them, cut them apart with partitions and heal, and check that close() leaves
no process, namespace, link or nftables table behind.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from etcd3 import etcdrpc

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tools.jepsen import cluster as cluster_mod  # noqa: E402
from tools.jepsen.cluster import Cluster  # noqa: E402

KINDS = ["kvd", "etcd"]
MODES = ["loopback", "netns"]


def binary(kind):
    path = Cluster.default_binary(kind)
    if not os.access(path, os.X_OK):
        pytest.fail(f"{kind} binary not found: {path} (set KVD_BIN)", pytrace=False)
    return path


@pytest.fixture
def make_cluster():
    made = []

    def make(kind, mode="loopback", size=3, **kw):
        c = Cluster(kind, size, netns=(mode == "netns"), binary=binary(kind),
                    log=lambda msg: None, **kw)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


def put(member, key, value, timeout=5):
    with member.channel() as ch:
        return etcdrpc.KVStub(ch).Put(etcdrpc.PutRequest(key=key, value=value),
                                      timeout=timeout)


def get(member, key, serializable=False, timeout=5):
    with member.channel() as ch:
        r = etcdrpc.KVStub(ch).Range(etcdrpc.RangeRequest(key=key, serializable=serializable),
                                     timeout=timeout)
    return r.kvs[0].value if r.kvs else None


def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout}s: {what}")


def etcdctl(endpoints, *args):
    return subprocess.run(["/usr/bin/etcdctl", "--endpoints", ",".join(endpoints),
                           "--dial-timeout", "3s", "--command-timeout", "5s", *args],
                          capture_output=True, text=True, timeout=30,
                          env=dict(os.environ, ETCDCTL_API="3"))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", KINDS)
def test_start_kill_restart(make_cluster, kind, mode):
    c = make_cluster(kind, mode).start()
    ips = {m.ip for m in c.members}
    assert len(ips) == (3 if mode == "netns" else 1)
    for m in c.members:  # etcdctl reaches every member (one at a time)
        r = etcdctl([m.client_endpoint], "endpoint", "health")
        assert r.returncode == 0 and "is healthy" in r.stderr, r.stdout + r.stderr
    lead = c.wait_leader()
    assert len({m.id for m in c.members}) == 3
    assert {m.ID for m in c.member_list()} == {m.id for m in c.members}

    victim = next(m for m in c.members if m is not lead)
    victim.kill()
    assert not victim.alive() and victim.returncode() == -signal.SIGKILL
    put(lead, b"k", b"while-down")  # the majority goes on
    victim.start()
    victim.wait_ready()
    assert get(victim, b"k") == b"while-down"

    lead.kill()
    new = c.wait_leader(10)
    assert new is not lead and new.alive()
    put(new, b"k", b"new-leader")
    lead.restart()
    wait_for(lambda: get(lead, b"k", serializable=True) == b"new-leader", 10,
             "the restarted old leader catches up")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", KINDS)
def test_pause_resume(make_cluster, kind, mode):
    c = make_cluster(kind, mode).start()
    lead = c.wait_leader()
    lead.pause()
    assert lead.alive() and lead.paused and lead.proc_state() == "T"
    assert lead not in c.live_members()
    new = c.wait_leader(10)  # the others elect one of themselves
    assert new is not lead
    put(new, b"p", b"1")
    lead.resume()
    assert lead.proc_state() != "T"
    c.wait_healthy(15)
    assert get(lead, b"p") == b"1"


@pytest.mark.parametrize("kind", KINDS)
def test_partition_cuts_peers_and_heals(make_cluster, kind):
    c = make_cluster(kind, "netns").start()
    lead = c.wait_leader()
    rest = [m for m in c.members if m is not lead]
    c.partition([[lead], rest])
    assert c.blocked()[lead.name] == sorted(m.ip for m in rest)
    # Clients in the root namespace still reach every member; the isolated one cannot
    # serve a linearizable read (no quorum), the majority elects a leader and serves.
    assert lead.status().header.member_id == lead.id
    assert not lead.serves(timeout=3)
    new = c.wait_leader(10)
    assert new in rest
    put(new, b"q", b"majority")
    assert all(m.serves() for m in rest)
    wait_for(lambda: lead.status().leader != lead.id, 10,
             "the isolated old leader gives up leadership")
    assert get(lead, b"q", serializable=True) != b"majority"  # it did not get the write

    c.heal()
    assert c.blocked() == {}
    c.wait_healthy(15)
    assert get(lead, b"q") == b"majority"


@pytest.mark.parametrize("kind", KINDS)
def test_block_minority_member(make_cluster, kind):
    """block() of one pair at a time: a member cut from both others is a minority."""
    c = make_cluster(kind, "netns").start()
    lead = c.wait_leader()
    lonely = next(m for m in c.members if m is not lead)
    for other in c.members:
        if other is not lonely:
            c.block([(lonely, other)])
    assert c.blocked()[lonely.name] == sorted(m.ip for m in c.members if m is not lonely)
    assert not lonely.serves(timeout=3)
    assert lead.serves()
    c.heal()
    lonely.wait_ready(15)


@pytest.mark.parametrize("kind", KINDS)
def test_close_leaves_nothing(make_cluster, kind):
    c = make_cluster(kind, "netns").start()
    c.members[0].pause()  # a stopped process must die too
    pids = [m.proc.pid for m in c.members]
    names = list(c.namespaces)
    bridge, workdir = c.bridge, c.workdir
    assert set(names) <= set(cluster_mod.list_netns()) and bridge in cluster_mod.list_links()
    for ns in names:
        r = subprocess.run(["ip", "netns", "exec", ns, "nft", "list", "tables"],
                           capture_output=True, text=True, timeout=10)
        assert cluster_mod.NFT_TABLE in r.stdout
    c.close()
    c.close()  # twice is fine
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists(), pid
    assert not set(names) & set(cluster_mod.list_netns())
    links = cluster_mod.list_links()
    assert not [l for l in links if l.startswith(bridge)], links
    assert not Path(workdir).exists()
    r = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, timeout=10)
    assert cluster_mod.NFT_TABLE not in r.stdout  # nothing was put in the root namespace


@pytest.mark.parametrize("kind", KINDS)
def test_close_after_failed_start(make_cluster, kind, tmp_path):
    """A member that cannot start: start() raises with its log, close() cleans up."""
    c = make_cluster(kind, "netns", extra_flags=["--no-such-flag-at-all"], workdir=tmp_path)
    names = list(c.namespaces)
    with pytest.raises(RuntimeError, match="exited"):
        c.start(timeout=10)
    assert "no-such-flag" in Path(c.members[0].log_path).read_text()
    c.close()
    assert not set(names) & set(cluster_mod.list_netns())
    assert not [m for m in c.members if m.alive()]
    assert Path(c.members[0].log_path).exists()  # a given workdir keeps the logs
    assert not Path(c.members[0].data_dir).exists()


@pytest.mark.parametrize("kind", KINDS)  # (the ids give ctest's -k kvd / -k etcd a side)
def test_sweeper_deletes_leftovers_of_dead_runs(kind):
    dead = subprocess.Popen(["true"])
    dead.wait()
    ns, link = f"kvdj-{dead.pid}-1-n1", f"kj{dead.pid}-1"
    mine = f"kvdj-{os.getpid()}-999-n1"
    subprocess.run(["ip", "netns", "add", ns], check=True, timeout=10)
    subprocess.run(["ip", "netns", "add", mine], check=True, timeout=10)
    subprocess.run(["ip", "link", "add", link, "type", "bridge"], check=True, timeout=10)
    try:
        # (A run in parallel may sweep them first: what counts is that they are gone.)
        deleted = cluster_mod.sweep_leftovers()
        assert mine not in deleted
        assert ns not in cluster_mod.list_netns() and link not in cluster_mod.list_links()
        assert mine in cluster_mod.list_netns()  # a live run's namespace stays
    finally:
        for n in (ns, mine):
            subprocess.run(["ip", "netns", "del", n], capture_output=True, timeout=10)
        subprocess.run(["ip", "link", "del", link], capture_output=True, timeout=10)


@pytest.mark.parametrize("kind", KINDS)
def test_member_wipe_and_rejoin(make_cluster, kind):
    c = make_cluster(kind).start()
    lead = c.wait_leader()
    m = next(x for x in c.members if x is not lead)
    old_id = m.id
    put(lead, b"w", b"before")
    m.wipe_and_rejoin(c)
    assert m.id != old_id
    assert {x.ID for x in c.member_list()} == {x.id for x in c.members}
    assert get(m, b"w") == b"before"


@pytest.mark.parametrize("kind", KINDS)
def test_port_taken_before_start(make_cluster, kind):
    """Loopback ports are picked then released: one taken by another process before the
    first start makes the cluster start again on fresh ports."""
    c = make_cluster(kind)
    taken = c.members[1].peer_port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", taken))
        s.listen()
        c.start()
    assert taken not in [p for m in c.members for p in (m.client_port, m.peer_port)]
    assert "already in use" in Path(c.members[1].log_path).read_text().lower()


CHILD = """
import json, sys, time
sys.path.insert(0, {root!r})
from tools.jepsen.cluster import Cluster
c = Cluster({kind!r}, 3, netns=True, binary={binary!r}, log=lambda m: None).start()
print(json.dumps({{"pids": [m.proc.pid for m in c.members], "netns": c.namespaces,
                  "bridge": c.bridge, "workdir": c.workdir}}), flush=True)
time.sleep(120)
"""


@pytest.mark.parametrize("kind", KINDS)
def test_harness_killed_members_die_and_leftovers_are_swept(kind):
    """A harness SIGKILLed without close(): its members die with it (pdeathsig), and the
    next sweep deletes its namespaces and bridge."""
    code = CHILD.format(root=str(Path(__file__).resolve().parents[2]), kind=kind,
                        binary=binary(kind))
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        line = child.stdout.readline()
        assert line, "the child harness did not start its cluster"
        info = json.loads(line)
    finally:
        child.kill()
        child.wait(timeout=10)
    try:
        wait_for(lambda: not any(Path(f"/proc/{p}").exists() for p in info["pids"]), 10,
                 "members die with the harness")
    finally:
        # (A run in parallel may sweep them first: what counts is that they are gone.)
        cluster_mod.sweep_leftovers()
        subprocess.run(["rm", "-rf", info["workdir"]], timeout=30)
    assert not set(info["netns"]) & set(cluster_mod.list_netns())
    assert not [l for l in cluster_mod.list_links() if l.startswith(info["bridge"])]


@pytest.mark.parametrize("kind", ["kvd", "etcd"])
def test_concurrent_linearizable_reads_on_every_member(make_cluster, kind):
    """What `etcdctl endpoint health` over all endpoints does, and every client of a
    fault run: linearizable reads at the same moment on different members all succeed."""
    c = make_cluster(kind).start()
    for _ in range(20):
        results = {}

        def read(m):
            results[m.name] = m.serves(timeout=3)

        threads = [threading.Thread(target=read, args=(m,)) for m in c.members]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert all(results.values()), results


@pytest.mark.parametrize("kind", KINDS)
def test_rejoin_without_leave_and_leave_twice(make_cluster, kind):
    """rejoin() of a member still in the cluster removes it first (a wiped member comes
    back under a new id); leave() twice is one removal."""
    c = make_cluster(kind).start()
    m = next(x for x in c.members if x is not c.wait_leader())
    old_id = m.id
    m.rejoin(c)
    assert m.id != old_id and not m.removed
    assert {x.ID for x in c.member_list()} == {x.id for x in c.members}
    m.leave(c)
    m.leave(c)
    assert len(c.member_list()) == 2 and m.removed
    m.rejoin(c)
    c.wait_healthy(20)
    assert len(c.member_list()) == 3
