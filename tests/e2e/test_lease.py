"""Leases: grant (incl. etcd's minimum TTL), attach, TimeToLive, Leases, KeepAlive,
revoke, expiry, and survival across a restart.

Golden transcript plus explicit checks. Remaining TTLs count down in real time, so the
golden keeps only what does not depend on the clock (granted TTLs, keys, IDs); remaining
TTLs are checked against bounds. Key lists of TimeToLive and the Leases list are sorted:
etcd returns them in map order, which varies from run to run.

Timing bounds are generous (liveness, not speed): expiry of a 2 s lease within
EXPIRY_WAIT_S; keep-alives every KEEPALIVE_EVERY_S hold a LEASE_TTL_S lease.
"""

import time

import grpc
import pytest
from etcd3 import etcdrpc

from transcript import check_golden

EXPIRY_WAIT_S = 15.0
KEEPALIVE_EVERY_S = 0.4
LEASE_TTL_S = 4
KEEPALIVE_FOR_S = 6.0
G = etcdrpc.LeaseGrantRequest
TTL = etcdrpc.LeaseTimeToLiveRequest
P, R = etcdrpc.PutRequest, etcdrpc.RangeRequest


def keepalive_once(leases, lease_id):
    def one():
        yield etcdrpc.LeaseKeepAliveRequest(ID=lease_id)
    for answer in leases.LeaseKeepAlive(one(), timeout=5):
        return answer
    raise AssertionError("no keep-alive answer")


def lease_scenario(t):
    c = t.cluster.client()
    leases, kv = c.leasestub, c.kvstub
    long = t.rpc("grant TTL 600", lambda: leases.LeaseGrant(G(TTL=600)))
    t.rpc("grant TTL 1 (below the minimum)", lambda: leases.LeaseGrant(G(TTL=1)))
    t.rpc("grant TTL 0", lambda: leases.LeaseGrant(G(TTL=0)))
    t.rpc("grant ID 7 TTL 600", lambda: leases.LeaseGrant(G(TTL=600, ID=7)))
    t.rpc("put a with lease 7", lambda: kv.Put(P(key=b"a", value=b"1", lease=7)))
    t.rpc("put b with lease 7", lambda: kv.Put(P(key=b"b", value=b"2", lease=7)))
    t.rpc("put c with the TTL-600 lease", lambda: kv.Put(P(key=b"c", value=b"3",
                                                           lease=long.ID)))
    ttl = leases.LeaseTimeToLive(TTL(ID=7, keys=True))
    assert 600 - 60 < ttl.TTL <= 600, ttl
    t.note("TimeToLive 7 with keys", {"ID": ttl.ID, "grantedTTL": ttl.grantedTTL,
                                      "keys": sorted(k.decode() for k in ttl.keys)})
    ttl = leases.LeaseTimeToLive(TTL(ID=7))
    t.note("TimeToLive 7 without keys", {"ID": ttl.ID, "grantedTTL": ttl.grantedTTL,
                                         "keys": list(ttl.keys)})
    # Only the long leases: the 2 s ones may have expired by now on a loaded machine.
    listed = leases.LeaseLeases(etcdrpc.LeaseLeasesRequest())
    t.note("Leases (the TTL-600 ones)", sorted(t.lease_name(x.ID) for x in listed.leases
                                               if x.ID in (long.ID, 7)))
    t.rpc("keep-alive 7", lambda: keepalive_once(leases, 7))
    t.rpc("keep-alive of an unknown lease", lambda: keepalive_once(leases, 12345))
    t.rpc("revoke 7 (deletes a and b in one revision)",
          lambda: leases.LeaseRevoke(etcdrpc.LeaseRevokeRequest(ID=7)))
    t.rpc("what is left", lambda: kv.Range(R(key=b"\0", range_end=b"\0")))
    t.rpc("TimeToLive 7 after revoke", lambda: leases.LeaseTimeToLive(TTL(ID=7)))
    t.rpc("revoke 7 again", lambda: leases.LeaseRevoke(etcdrpc.LeaseRevokeRequest(ID=7)))
    t.rpc("put with revoked lease 7", lambda: kv.Put(P(key=b"d", value=b"4", lease=7)))


LEASE_SCENARIOS = {"lease": ([], lease_scenario)}


def test_golden_lease(server_kind, cluster_factory):
    check_golden(LEASE_SCENARIOS, "lease", server_kind, cluster_factory)


def test_expiry_deletes_attached_keys_in_one_revision(server):
    c = server.client()
    leases, kv = c.leasestub, c.kvstub
    lease = leases.LeaseGrant(G(TTL=2))
    kv.Put(P(key=b"e1", value=b"1", lease=lease.ID))
    before = kv.Put(P(key=b"e2", value=b"2", lease=lease.ID)).header.revision
    deadline = time.monotonic() + EXPIRY_WAIT_S
    while kv.Range(R(key=b"e", range_end=b"f", count_only=True)).count:
        assert time.monotonic() < deadline, f"lease not expired after {EXPIRY_WAIT_S}s"
        time.sleep(0.1)
    assert kv.Range(R(key=b"x")).header.revision == before + 1
    assert leases.LeaseTimeToLive(TTL(ID=lease.ID)).TTL == -1
    with pytest.raises(grpc.RpcError) as err:
        kv.Put(P(key=b"e3", value=b"3", lease=lease.ID))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_keepalive_holds_a_lease_past_its_ttl(server):
    c = server.client()
    leases, kv = c.leasestub, c.kvstub
    lease = leases.LeaseGrant(G(TTL=LEASE_TTL_S))
    kv.Put(P(key=b"held", value=b"1", lease=lease.ID))
    started = time.monotonic()
    while time.monotonic() - started < KEEPALIVE_FOR_S:
        answer = keepalive_once(leases, lease.ID)
        assert (answer.ID, answer.TTL) == (lease.ID, LEASE_TTL_S)
        time.sleep(KEEPALIVE_EVERY_S)
    assert kv.Range(R(key=b"held")).count == 1
    leases.LeaseRevoke(etcdrpc.LeaseRevokeRequest(ID=lease.ID))
    assert kv.Range(R(key=b"held")).count == 0


@pytest.mark.parametrize("how", ["sigterm", "kill9"])
def test_lease_survives_restart(server, how):
    c = server.client()
    leases, kv = c.leasestub, c.kvstub
    lease = leases.LeaseGrant(G(TTL=600))
    kv.Put(P(key=b"k", value=b"v", lease=lease.ID))
    member = server.members[0]
    if how == "sigterm":
        member.stop()
    else:
        member.kill9()
    server.restart_member(member)
    c = server.client()
    ttl = c.leasestub.LeaseTimeToLive(TTL(ID=lease.ID, keys=True))
    assert (ttl.grantedTTL, list(ttl.keys)) == (600, [b"k"])
    assert 0 < ttl.TTL <= 600
    assert c.kvstub.Range(R(key=b"k")).kvs[0].lease == lease.ID
    c.leasestub.LeaseRevoke(etcdrpc.LeaseRevokeRequest(ID=lease.ID))
    assert c.kvstub.Range(R(key=b"k")).count == 0
