"""Lease API details beyond test_lease.py: etcd's TTL rules (minimum from the election
timeout, maximum), client-chosen and negative IDs, keep-alive streams with several and
unknown IDs, revoke revisions, many leases expiring together, and etcdctl's lease commands.

Every test runs against etcd (the reference) and kvd with the same assertions. Waits for
expiry are bounded polls.
"""

import json
import re
import time

import pytest
from etcd3 import etcdrpc

Grant = etcdrpc.LeaseGrantRequest
Revoke = etcdrpc.LeaseRevokeRequest
TimeToLive = etcdrpc.LeaseTimeToLiveRequest
KeepAlive = etcdrpc.LeaseKeepAliveRequest

EXPIRY_WAIT_S = 20  # upper bound on waiting for a 2 s lease to be revoked


def head_revision(kv):
    return kv.Range(etcdrpc.RangeRequest(key=b"\0")).header.revision


def keep_alive(leases, *ids):
    """One keep-alive stream; returns [(ID, TTL)] in request order."""
    return [(r.ID, r.TTL) for r in leases.LeaseKeepAlive(iter([KeepAlive(ID=i) for i in ids]))]


def wait_until(predicate, timeout_s):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def test_grant_applies_the_minimum_and_maximum_ttl(server):
    leases = server.client().leasestub
    # Default election timeout 1000 ms: minimum TTL ceil(1.5 s) = 2 s.
    for asked, got in [(0, 2), (1, 2), (-5, 2), (2, 2), (3, 3), (9_000_000_000, 9_000_000_000)]:
        answer = leases.LeaseGrant(Grant(TTL=asked))
        assert answer.TTL == got, asked
        assert answer.ID > 0
        assert answer.error == ""


@pytest.mark.server_flags("--election-timeout", "5000")
def test_minimum_ttl_follows_the_election_timeout(server):
    leases = server.client().leasestub
    assert leases.LeaseGrant(Grant(TTL=1)).TTL == 8  # ceil(1.5 * 5 s)


def test_client_chosen_ids_and_listing(server):
    leases = server.client().leasestub
    assert leases.LeaseGrant(Grant(TTL=60, ID=7)).ID == 7
    assert leases.LeaseGrant(Grant(TTL=60, ID=-5)).ID == -5  # negative IDs are accepted
    chosen = leases.LeaseGrant(Grant(TTL=60)).ID
    listed = sorted(l.ID for l in leases.LeaseLeases(etcdrpc.LeaseLeasesRequest()).leases)
    assert listed == sorted([7, -5, chosen])
    leases.LeaseRevoke(Revoke(ID=7))
    listed = sorted(l.ID for l in leases.LeaseLeases(etcdrpc.LeaseLeasesRequest()).leases)
    assert listed == sorted([-5, chosen])


def test_time_to_live_reports_keys_and_remaining_ttl(server):
    c = server.client()
    leases = c.leasestub
    lease_id = leases.LeaseGrant(Grant(TTL=600)).ID
    c.put("b", "1", lease=lease_id)
    c.put("a", "1", lease=lease_id)
    c.put("plain", "1")
    answer = leases.LeaseTimeToLive(TimeToLive(ID=lease_id, keys=True))
    assert answer.ID == lease_id and answer.grantedTTL == 600
    assert 590 <= answer.TTL <= 600
    assert sorted(answer.keys) == [b"a", b"b"]
    without = leases.LeaseTimeToLive(TimeToLive(ID=lease_id))
    assert list(without.keys) == []
    # Unknown lease: not an error, TTL -1 (etcd 3.4); so is ID 0.
    for unknown in (777, 0):
        answer = leases.LeaseTimeToLive(TimeToLive(ID=unknown, keys=True))
        assert (answer.ID, answer.TTL, answer.grantedTTL, list(answer.keys)) == (unknown, -1, 0, [])


def test_keep_alive_answers_in_order_and_zero_for_unknown(server):
    leases = server.client().leasestub
    a = leases.LeaseGrant(Grant(TTL=30)).ID
    b = leases.LeaseGrant(Grant(TTL=5)).ID
    assert keep_alive(leases, a, 12345, b, 0, a) == [(a, 30), (12345, 0), (b, 5), (0, 0), (a, 30)]
    answer = next(iter(leases.LeaseKeepAlive(iter([KeepAlive(ID=a)]))))
    assert answer.header.revision == head_revision(server.client().kvstub)
    leases.LeaseRevoke(Revoke(ID=a))
    assert keep_alive(leases, a) == [(a, 0)]


def test_revoke_deletes_attached_keys_in_one_revision(server):
    c = server.client()
    kv, leases = c.kvstub, c.leasestub
    lease_id = leases.LeaseGrant(Grant(TTL=600)).ID
    for k in ("x1", "x2", "x3"):
        c.put(k, "v", lease=lease_id)
    c.put("keep", "v")
    before = head_revision(kv)
    answer = leases.LeaseRevoke(Revoke(ID=lease_id))
    assert answer.header.revision == before + 1
    assert sorted(m.key for _, m in c.get_all()) == [b"keep"]
    empty = leases.LeaseGrant(Grant(TTL=600)).ID
    assert leases.LeaseRevoke(Revoke(ID=empty)).header.revision == before + 1


def test_many_leases_expire_together(server):
    c = server.client()
    leases = c.leasestub
    ids = [leases.LeaseGrant(Grant(TTL=2)).ID for _ in range(200)]
    for i, lease_id in enumerate(ids):
        c.put(f"storm/{i:03d}", "v", lease=lease_id)
    assert wait_until(lambda: len(list(c.get_prefix("storm/"))) == 0, EXPIRY_WAIT_S)
    remaining = {l.ID for l in leases.LeaseLeases(etcdrpc.LeaseLeasesRequest()).leases}
    assert remaining.isdisjoint(ids)


# --- etcdctl ------------------------------------------------------------------------------

def ctl(server, *args):
    r = server.etcdctl(*args)
    assert r.returncode == 0, f"etcdctl {args}: {r.stderr}"
    return r.stdout


def test_ctl_lease_commands(server):
    out = ctl(server, "lease", "grant", "100")
    m = re.fullmatch(r"lease ([0-9a-f]+) granted with TTL\(100s\)\n", out)
    assert m, out
    lease_hex = m.group(1)
    ctl(server, "put", "--lease", lease_hex, "ek", "v")
    out = ctl(server, "lease", "timetolive", lease_hex, "--keys")
    m = re.fullmatch(rf"lease {lease_hex} granted with TTL\(100s\), remaining\((\d+)s\), "
                     r"attached keys\(\[ek\]\)\n", out)
    assert m and 90 <= int(m.group(1)) <= 100, out
    out = ctl(server, "lease", "keep-alive", "--once", lease_hex)
    assert out == f"lease {lease_hex} keepalived with TTL(100)\n"
    out = ctl(server, "lease", "list")
    assert out == f"found 1 leases\n{lease_hex}\n"
    doc = json.loads(ctl(server, "-w", "json", "lease", "timetolive", lease_hex))
    assert doc["id"] == int(lease_hex, 16) and doc["granted-ttl"] == 100
    out = ctl(server, "lease", "revoke", lease_hex)
    assert out == f"lease {lease_hex} revoked\n"
    out = ctl(server, "lease", "timetolive", lease_hex)
    assert out == f"lease {lease_hex} already expired\n"
    assert ctl(server, "get", "ek") == ""
    r = server.etcdctl("lease", "revoke", lease_hex)
    assert r.returncode != 0
    assert "etcdserver: requested lease not found" in r.stderr
