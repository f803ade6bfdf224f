"""Leases on three-member clusters: the same cases against etcd and kvd.

- Leases granted and kept alive through a follower (keep-alives and TimeToLive are
  answered by the leader: forwarded).
- The leader killed: the lease survives on the new leader, its TTL not shortened below
  what the old leader would have given it, its keys still attached; unrenewed, it still
  expires and its keys vanish.

Every wait is bounded; assertions on TTLs use bounds, never exact timings.
"""

import threading
import time

import grpc
from etcd3 import etcdrpc

import harness
from harness import leader_of, rpc, until_ok

RPC_TIMEOUT_S = 3.0
EXPIRY_WAIT_S = 30.0

Grant = etcdrpc.LeaseGrantRequest
TimeToLive = etcdrpc.LeaseTimeToLiveRequest
KeepAlive = etcdrpc.LeaseKeepAliveRequest


def keep_alive(member, lease_id):
    with grpc.insecure_channel(member.endpoint) as channel:
        answers = list(etcdrpc.LeaseStub(channel).LeaseKeepAlive(
            iter([KeepAlive(ID=lease_id)]), timeout=RPC_TIMEOUT_S))
    assert len(answers) == 1
    return answers[0].ID, answers[0].TTL


def get(member, key):
    resp = rpc(member, etcdrpc.KVStub, "Range", etcdrpc.RangeRequest(key=key))
    return resp.kvs[0] if resp.kvs else None


def test_leases_through_a_follower(server_kind, cluster_factory):
    cluster = cluster_factory(server_kind, size=3)
    leader = leader_of(cluster)
    follower = next(m for m in cluster.members if m is not leader)
    granted = until_ok(lambda: rpc(follower, etcdrpc.LeaseStub, "LeaseGrant", Grant(TTL=60)))
    assert granted.TTL == 60
    rpc(follower, etcdrpc.KVStub, "Put",
         etcdrpc.PutRequest(key=b"fk", value=b"v", lease=granted.ID))
    # Keep-alive and TimeToLive through the follower are answered as on the leader.
    assert until_ok(lambda: keep_alive(follower, granted.ID)) == (granted.ID, 60)
    assert until_ok(lambda: keep_alive(follower, 4242)) == (4242, 0)
    ttl = until_ok(lambda: rpc(follower, etcdrpc.LeaseStub, "LeaseTimeToLive",
                                TimeToLive(ID=granted.ID, keys=True)))
    assert ttl.grantedTTL == 60 and 50 <= ttl.TTL <= 60 and list(ttl.keys) == [b"fk"]
    assert rpc(follower, etcdrpc.LeaseStub, "LeaseTimeToLive", TimeToLive(ID=4242)).TTL == -1
    for m in cluster.members:
        listed = until_ok(lambda: rpc(m, etcdrpc.LeaseStub, "LeaseLeases",
                                       etcdrpc.LeaseLeasesRequest()))
        assert granted.ID in [l.ID for l in listed.leases]
    rpc(follower, etcdrpc.LeaseStub, "LeaseRevoke", etcdrpc.LeaseRevokeRequest(ID=granted.ID))
    for m in cluster.members:
        assert until_ok(lambda: get(m, b"fk")) is None


def test_keep_alive_right_after_a_grant_through_a_follower(server_kind, cluster_factory):
    """A follower answers a grant once it has applied it; a keep-alive sent at once (to
    any member: followers forward it) must find the lease on the leader even when the
    leader has not applied the grant yet. Several clients at once, so the leader is busy."""
    cluster = cluster_factory(server_kind, size=3)
    leader = leader_of(cluster)
    followers = [m for m in cluster.members if m is not leader]
    until_ok(lambda: rpc(followers[0], etcdrpc.KVStub, "Range", etcdrpc.RangeRequest(key=b"k")))
    wrong = []

    def client(grant_on, renew_on):
        with grpc.insecure_channel(grant_on.endpoint) as g, \
                grpc.insecure_channel(renew_on.endpoint) as r:
            for _ in range(40):
                granted = etcdrpc.LeaseStub(g).LeaseGrant(Grant(TTL=30), timeout=RPC_TIMEOUT_S)
                answers = list(etcdrpc.LeaseStub(r).LeaseKeepAlive(
                    iter([KeepAlive(ID=granted.ID)]), timeout=RPC_TIMEOUT_S))
                if [(a.ID, a.TTL) for a in answers] != [(granted.ID, 30)]:
                    wrong.append((granted.ID, [(a.ID, a.TTL) for a in answers]))

    pairs = [(f, t) for f in followers for t in cluster.members] * 2
    threads = [threading.Thread(target=client, args=pair) for pair in pairs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert wrong == []


def test_lease_survives_leader_loss_and_still_expires(server_kind, cluster_factory):
    cluster = cluster_factory(server_kind, size=3)
    leader = leader_of(cluster)
    long = until_ok(lambda: rpc(leader, etcdrpc.LeaseStub, "LeaseGrant", Grant(TTL=600)))
    short = rpc(leader, etcdrpc.LeaseStub, "LeaseGrant", Grant(TTL=4))
    rpc(leader, etcdrpc.KVStub, "Put", etcdrpc.PutRequest(key=b"long", value=b"v",
                                                           lease=long.ID))
    rpc(leader, etcdrpc.KVStub, "Put", etcdrpc.PutRequest(key=b"short", value=b"v",
                                                           lease=short.ID))
    granted_at = time.monotonic()
    leader.kill9()
    new_leader = leader_of(cluster)
    assert new_leader is not leader
    # The long lease: still there, keys attached, TTL not shortened.
    ttl = until_ok(lambda: rpc(new_leader, etcdrpc.LeaseStub, "LeaseTimeToLive",
                                TimeToLive(ID=long.ID, keys=True)))
    elapsed = time.monotonic() - granted_at
    assert ttl.grantedTTL == 600 and list(ttl.keys) == [b"long"]
    assert 600 - elapsed - 1 <= ttl.TTL <= 600 + 10, (ttl.TTL, elapsed)
    assert until_ok(lambda: keep_alive(new_leader, long.ID)) == (long.ID, 600)
    # The short lease, never renewed, expires under the new leader.
    survivors = [m for m in cluster.members if m.running()]
    deadline = time.monotonic() + EXPIRY_WAIT_S
    while any(until_ok(lambda: get(m, b"short")) is not None for m in survivors):
        assert time.monotonic() < deadline, "lease did not expire after the leader change"
        time.sleep(0.2)
    assert until_ok(lambda: get(new_leader, b"long")) is not None
    assert rpc(new_leader, etcdrpc.LeaseStub, "LeaseTimeToLive",
                TimeToLive(ID=short.ID)).TTL == -1


def test_leases_reach_a_member_through_a_snapshot(server_kind, cluster_factory):
    """A member that catches up by snapshot sees the leases granted and revoked while it
    was down (its lease table is rebuilt from the snapshot)."""
    cluster = cluster_factory(server_kind, size=3, extra_flags=["--snapshot-count=50"])
    leader = leader_of(cluster)
    lagging = next(m for m in cluster.members if m is not leader)
    lease = lambda ttl: until_ok(lambda: rpc(leader, etcdrpc.LeaseStub, "LeaseGrant",
                                              Grant(TTL=ttl))).ID
    gone = lease(600)
    lagging.kill9()
    kept = lease(600)
    rpc(leader, etcdrpc.LeaseStub, "LeaseRevoke", etcdrpc.LeaseRevokeRequest(ID=gone))
    rpc(leader, etcdrpc.KVStub, "Put", etcdrpc.PutRequest(key=b"kept", value=b"v", lease=kept))
    for i in range(500):
        until_ok(lambda: rpc(leader, etcdrpc.KVStub, "Put",
                              etcdrpc.PutRequest(key=b"lag/%03d" % i, value=b"v")))
    cluster.restart_member(lagging)
    deadline = time.monotonic() + harness.TAKEOVER_WAIT_S
    while True:
        try:
            resp = rpc(lagging, etcdrpc.KVStub, "Range",
                        etcdrpc.RangeRequest(key=b"lag/499", serializable=True))
            if resp.kvs:
                break
        except grpc.RpcError:
            pass
        assert time.monotonic() < deadline, "lagging member did not catch up"
        time.sleep(0.1)
    listed = until_ok(lambda: rpc(lagging, etcdrpc.LeaseStub, "LeaseLeases",
                                   etcdrpc.LeaseLeasesRequest()))
    ids = {l.ID for l in listed.leases}
    assert kept in ids and gone not in ids
    # The member applies lease checks as the others do: a put under the revoked lease
    # fails, under the kept one succeeds, through the caught-up member.
    try:
        rpc(lagging, etcdrpc.KVStub, "Put", etcdrpc.PutRequest(key=b"x", value=b"v",
                                                                lease=gone))
        raise AssertionError("put with a revoked lease succeeded")
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.NOT_FOUND
    until_ok(lambda: rpc(lagging, etcdrpc.KVStub, "Put",
                          etcdrpc.PutRequest(key=b"y", value=b"v", lease=kept)))
    if server_kind == "kvd":
        assert "installed snapshot" in lagging.log_tail()
