"""Tests of the checkers that compare a history with the store's final state or look at
single properties: lease, lock, durable, revision-monotonic, hashkv, availability,
convergence (tools/jepsen/check/). No server needed."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent / "histories"))
import hist  # noqa: E402

K = "jepsen/l/1"
L1, L2 = 101, 202


def run(b, tmp_path, check, final=None):
    r = hist.check(b, tmp_path, final=final, only=[check])
    return r.checks[check], r.anomaly_types(check)


# --- lease ------------------------------------------------------------------------------

def lease_history(read_after_revoke=None):
    b = hist.Builder()
    b.op(0, 5, 0, "lease", "grant", None, 5, done={"value": L1, "revision": 1})
    b.op(10, 15, 0, "lease", "put", K, 7, lease=L1, done={"revision": 2})
    b.op(20, 25, 1, "lease", "read", K, None,
         done={"value": 7, "lease": L1, "mod_revision": 2, "revision": 2})
    b.op(30, 35, 0, "lease", "keepalive", None, None, lease=L1, done={"value": 5, "revision": 2})
    b.op(40, 45, 0, "lease", "revoke", None, None, lease=L1, done={"revision": 3})
    b.op(50, 55, 1, "lease", "read", K, None,
         done=read_after_revoke or {"value": None, "lease": 0, "mod_revision": 0,
                                    "revision": 3})
    return b


LEASE_FINAL = {"events": hist.events_of([(2, "PUT", K, 7, L1), (3, "DELETE", K, None, 0)]),
               "kv": [], "leases": {str(L1): {"ttl": -1}}}


def test_lease_valid(tmp_path):
    c, types = run(lease_history(), tmp_path, "lease", LEASE_FINAL)
    assert c["valid"], c


def test_lease_key_read_after_revoke_stale(tmp_path):
    # Served from a stale state (revision 2) after the revoke was acknowledged.
    b = lease_history({"value": 7, "lease": L1, "mod_revision": 2, "revision": 2})
    c, types = run(b, tmp_path, "lease", LEASE_FINAL)
    assert types == ["read-after-revoke"], c


def test_lease_key_read_under_dead_lease(tmp_path):
    b = lease_history({"value": 7, "lease": L1, "mod_revision": 2, "revision": 3})
    c, types = run(b, tmp_path, "lease", LEASE_FINAL)
    assert "read-under-dead-lease" in types, c


def test_lease_dead_keys_remain(tmp_path):
    b = lease_history()
    b.op(60, 65, 2, "lease", "grant", None, 2, done={"value": L2, "revision": 3})
    b.op(70, 75, 2, "lease", "put", "jepsen/l/2", 8, lease=L2, done={"revision": 4})
    final = {"events": LEASE_FINAL["events"] + hist.events_of([(4, "PUT", "jepsen/l/2", 8, L2)]),
             "kv": [{"key": K, "value": "7", "lease": L1, "mod_revision": 2},
                    {"key": "jepsen/l/2", "value": "8", "lease": L2, "mod_revision": 4}],
             "leases": {str(L1): {"ttl": -1}, str(L2): {"ttl": -1}}}   # L2 expired
    c, types = run(b, tmp_path, "lease", final)
    assert c["details"]["anomaly_counts"]["dead-lease-key-remains"] == 2, c


def test_lease_keepalive_and_put_after_revoke(tmp_path):
    b = lease_history()
    b.op(60, 65, 0, "lease", "keepalive", None, None, lease=L1, done={"value": 4, "revision": 3})
    b.op(70, 75, 0, "lease", "put", K, 9, lease=L1, done={"revision": 4})
    final = dict(LEASE_FINAL, events=LEASE_FINAL["events"] + hist.events_of(
        [(4, "PUT", K, 9, L1)]))
    c, types = run(b, tmp_path, "lease", final)
    assert types == ["keepalive-after-revoke", "put-under-dead-lease"], c


# --- lock -------------------------------------------------------------------------------

RES = "jepsen/lock/resource"


def lock_history(order):
    """Two holders (tokens 10 and 20) make fenced writes; `order` gives the store's commit
    order of their values."""
    b = hist.Builder()
    b.op(0, 5, 0, "lock", "acquire", None, "jepsen/lock/l",
         done={"value": {"key": "jepsen/lock/l/a", "revision": 10}})
    b.op(6, 9, 0, "lock", "fenced-write", RES, {"token": 10, "value": 1}, done={"revision": 11})
    b.op(10, 14, 0, "lock", "fenced-write", RES, {"token": 10, "value": 2}, done={"revision": 12})
    b.op(20, 25, 1, "lock", "acquire", None, "jepsen/lock/l",
         done={"value": {"key": "jepsen/lock/l/b", "revision": 20}})
    b.op(26, 29, 1, "lock", "fenced-write", RES, {"token": 20, "value": 3}, done={"revision": 21})
    events = hist.events_of([(11 + i, "PUT", RES, v, 0) for i, v in enumerate(order)])
    return b, {"events": events}


def test_lock_valid(tmp_path):
    b, final = lock_history([1, 2, 3])
    c, types = run(b, tmp_path, "lock", final)
    assert c["valid"], c


def test_lock_overlapping_fenced_writes(tmp_path):
    b, final = lock_history([1, 3, 2])      # token 10's write committed after token 20's
    c, types = run(b, tmp_path, "lock", final)
    assert types == ["overlapping-fenced-writes"], c


def test_lock_without_final_uses_header_revisions(tmp_path):
    b, _ = lock_history([1, 2, 3])
    b.op(30, 35, 0, "lock", "fenced-write", RES, {"token": 10, "value": 4}, done={"revision": 22})
    c, types = run(b, tmp_path, "lock", None)
    assert types == ["overlapping-fenced-writes"], c


# --- durable ----------------------------------------------------------------------------

def durable_history():
    b = hist.Builder()
    b.write(0, 5, 0, "jepsen/r/1", 1)
    b.cas(10, 15, 0, "jepsen/r/1", 1, 2)
    b.write(20, 25, 0, "jepsen/r/1", 3, type_="info")        # not acknowledged
    b.txn(30, 35, 1, [["append", "jepsen/a/1", 5]])
    b.op(40, 45, 2, "lease", "put", K, 7, lease=L1, done={"revision": 4})
    return b


DURABLE_EVENTS = hist.events_of([(2, "PUT", "jepsen/r/1", 1, 0), (3, "PUT", "jepsen/r/1", 2, 0),
                                 (4, "PUT", K, 7, L1), (5, "PUT", "jepsen/a/1", 5, 0),
                                 (6, "DELETE", K, None, 0)])
DURABLE_KV = [{"key": "jepsen/r/1", "value": "2"}, {"key": "jepsen/a/1", "value": "5"}]


def test_durable_valid_with_after_kill_all(tmp_path):
    final = {"events": DURABLE_EVENTS, "kv": DURABLE_KV,
             "after_kill_all": {"events": DURABLE_EVENTS, "kv": DURABLE_KV}}
    c, types = run(durable_history(), tmp_path, "durable", final)
    assert c["valid"], c
    assert "after killing every member" in c["details"]["summary"]


def test_durable_lost_write_and_append(tmp_path):
    events = [e for e in DURABLE_EVENTS if e["revision"] != 3]
    final = {"events": events, "kv": [{"key": "jepsen/a/1", "value": ""}]}
    c, types = run(durable_history(), tmp_path, "durable", final)
    assert types == ["lost-append", "lost-write"], c


def test_durable_lost_after_kill_all(tmp_path):
    lost = [e for e in DURABLE_EVENTS if e["revision"] < 5]
    final = {"events": DURABLE_EVENTS, "kv": DURABLE_KV,
             "after_kill_all": {"events": lost, "kv": [DURABLE_KV[0]]}}
    c, types = run(durable_history(), tmp_path, "durable", final)
    assert types == ["lost-after-kill-all", "lost-append"], c
    assert all(a["explanation"].startswith(("after kill-all", "event"))
               for a in c["details"]["anomalies"])


def test_durable_without_final_is_invalid(tmp_path):
    c, types = run(durable_history(), tmp_path, "durable", None)
    assert not c["valid"]


# --- revision-monotonic -----------------------------------------------------------------

def test_revision_monotonic(tmp_path):
    b = hist.Builder()
    b.read(0, 5, 0, "jepsen/r/1", None, revision=5)
    b.read(10, 15, 0, "jepsen/r/1", None, revision=7)
    b.read(20, 25, 1, "jepsen/r/1", None, revision=6)    # another process: fine
    b.op(30, 35, 0, "lease", "keepalive", None, None, lease=L1,
         done={"value": 3, "revision": 4})               # left out (local header)
    c, types = run(b, tmp_path, "revision-monotonic")
    assert c["valid"], c
    b.read(40, 45, 0, "jepsen/r/1", None, revision=6)    # process 0 goes back
    c, types = run(b, tmp_path, "revision-monotonic")
    assert types == ["revision-decreased"], c


# --- hashkv -----------------------------------------------------------------------------

def members(*hashes, revs=None):
    revs = revs or [9] * len(hashes)
    return {"members": {f"n{i + 1}": {"hashkv": {"hash": h, "revision": r,
                                                 "compact_revision": 0}, "revision": r}
                        for i, (h, r) in enumerate(zip(hashes, revs))}}


def test_hashkv(tmp_path):
    b = hist.Builder()
    c, _ = run(b, tmp_path, "hashkv", members(11, 11, 11))
    assert c["valid"], c
    c, types = run(b, tmp_path, "hashkv", members(11, 12, 11))
    assert types == ["hashkv-mismatch"], c
    c, types = run(b, tmp_path, "hashkv", members(11, 11, 11, revs=[9, 9, 8]))
    assert types == ["revision-mismatch"], c
    final = members(11, 11)
    final["members"]["n3"] = {"error": "unreachable"}
    c, types = run(b, tmp_path, "hashkv", final)
    assert types == ["hashkv-missing"], c


# --- availability and convergence -------------------------------------------------------

def faulty(first_write_after_kill_ms, converged=(0.5, 0.7)):
    b = hist.Builder()
    for i in range(10):
        b.write(i * 100, i * 100 + 5, 0, "jepsen/r/1", i + 1)
    b.nemesis(1000, "start", {"nemesis": "kill-leader", "targets": ["n1"]})
    t = 1000 + first_write_after_kill_ms
    b.write(1001, t, 1, "jepsen/r/1", 100)
    b.write(t + 10, t + 20, 1, "jepsen/r/1", 101)
    b.nemesis(t + 100, "stop", {"nemesis": "kill-leader"})
    b.nemesis(t + 200, "converged", {"seconds": converged[0], "revision": 20})
    b.nemesis(t + 300, "start", {"nemesis": "partition-half", "targets": ["n2"]})
    b.write(t + 400, t + 410, 1, "jepsen/r/1", 102)
    b.nemesis(t + 500, "stop", {"nemesis": "partition-half"})
    if converged[1] is not False:
        b.nemesis(t + 600, "converged", {"seconds": converged[1], "revision": 21})
    b.write(t + 4000, t + 4010, 1, "jepsen/r/1", 103)
    return b


def test_availability_after_leader_kill(tmp_path):
    c, types = run(faulty(1500), tmp_path, "availability")
    assert c["valid"], c
    w = c["details"]["windows"]
    assert w[0]["nemesis"] == "kill-leader" and w[0]["first_write_after_s"] == 1.5
    assert w[0]["longest_without_write_s"] == 1.5
    c, types = run(faulty(3500), tmp_path, "availability")
    assert types == ["no-write-after-leader-kill"], c


def test_convergence(tmp_path):
    c, types = run(faulty(100), tmp_path, "convergence")
    assert c["valid"], c
    c, types = run(faulty(100, converged=(0.5, 12.0)), tmp_path, "convergence")
    assert types == ["not-converged"], c
    c, types = run(faulty(100, converged=(None, 1.0)), tmp_path, "convergence")
    assert types == ["not-converged"], c
    c, types = run(faulty(100, converged=(0.5, False)), tmp_path, "convergence")
    assert types == ["convergence-missing"], c


def test_time_limits_are_reported_not_enforced_on_etcd(tmp_path):
    """etcd is the reference: its slow elections (no pre-vote in 3.4) and snapshot
    rejoins are reported, not failed; a member that never converges still fails."""
    etcd = {"kind": "etcd"}
    c, types = run(faulty(3500), tmp_path, "availability", etcd)
    assert c["valid"] and len(c["details"]["over_limit"]) == 1, c
    assert "over the limit" in c["details"]["summary"]
    c, types = run(faulty(100, converged=(0.5, 12.0)), tmp_path, "convergence", etcd)
    assert c["valid"] and len(c["details"]["over_limit"]) == 1, c
    c, types = run(faulty(100, converged=(None, 1.0)), tmp_path, "convergence", etcd)
    assert types == ["not-converged"], c
    c, types = run(faulty(3500), tmp_path, "availability", {"kind": "kvd"})
    assert types == ["no-write-after-leader-kill"], c


def test_lease_reads_past_incomplete_store_events_are_not_judged(tmp_path):
    b = lease_history({"value": 7, "lease": L1, "mod_revision": 2, "revision": 9})
    final = dict(LEASE_FINAL, events=LEASE_FINAL["events"][:1], events_complete=False)
    c, types = run(b, tmp_path, "lease", final)
    assert "read-under-dead-lease" not in types and "read-mismatch" not in types, c
    assert "incomplete" in c["details"]["summary"]


def test_member_not_recovered_after_heal(tmp_path):
    b = faulty(100)
    b.nemesis(9000, "start", {"nemesis": "kill", "targets": ["n3"]})
    b.nemesis(9500, "stop", {"nemesis": "kill", "targets": ["n3"], "ready": False,
                             "errors": {"n3": "exited with code -6"}})
    c, types = run(b, tmp_path, "availability")
    assert types == ["member-not-recovered"], c


def test_durable_lost_delete(tmp_path):
    b = hist.Builder()
    b.op(0, 5, 0, "watch", "write", "jepsen/w/1", 4, done={"revision": 2})
    b.op(10, 15, 0, "watch", "delete", "jepsen/w/1", None, done={"revision": 3, "deleted": 1})
    b.op(20, 25, 0, "watch", "delete", "jepsen/w/1", None, done={"revision": 3, "deleted": 0})
    events = hist.events_of([(2, "PUT", "jepsen/w/1", 4, 0), (3, "DELETE", "jepsen/w/1", None, 0)])
    c, types = run(b, tmp_path, "durable", {"events": events})
    assert c["valid"], c
    c, types = run(b, tmp_path, "durable", {"events": events[:1], "events_complete": False})
    assert types == ["lost-delete"], c
    assert "incomplete" in c["details"]["anomalies"][0]["explanation"]


# --- reads-at-revision ------------------------------------------------------------------

def test_reads_at_their_header_revision(tmp_path):
    R, A = "jepsen/r/1", "jepsen/a/1"
    events = hist.events_of([(2, "PUT", R, 1, 0), (3, "PUT", A, "5", 0), (4, "PUT", R, 2, 0),
                             (5, "PUT", A, "5,6", 0)])
    b = hist.Builder()
    b.read(0, 5, 0, R, 1, revision=3)
    b.read(0, 5, 1, R, None, revision=1)
    b.txn(10, 15, 2, [["r", A, None]], [["r", A, [5]]])
    b.events[-1]["revision"] = 4                      # read-only: at its header revision
    b.txn(20, 25, 2, [["r", A, None], ["append", A, 6]], [["r", A, [5]], ["append", A, 6]])
    b.events[-1]["revision"] = 5                      # wrote at 5: read the state at 4
    c, types = run(b, tmp_path, "reads-at-revision", {"events": events})
    assert c["valid"], c
    b.read(30, 35, 3, R, 1, revision=4)               # 2 was there at revision 4
    c, types = run(b, tmp_path, "reads-at-revision", {"events": events})
    assert types == ["read-not-at-revision"], c
