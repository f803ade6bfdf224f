"""etcd's "require leader" metadata (hasleader=true, clientv3.WithRequireLeader, used by
Kubernetes' watches) on a member that loses its leader: the same case against etcd and kvd.

Three members; two are killed, so the third has no leader. Then:
- unary calls that carry the metadata fail with UNAVAILABLE "etcdserver: no leader", while
  a serializable read without it is still served;
- a watch stream opened with the metadata before the loss is cancelled with that error
  (etcd: after about three election timeouts without a leader); one without it stays;
- a new watch stream with the metadata is refused at once;
- once the killed members are back, the same calls succeed, and the watch that stayed
  sees the next put.

Every wait is bounded.
"""

import time

import grpc
import pytest
from etcd3 import etcdrpc

from harness import WatchStream, leader_of, status, until_ok

RPC_TIMEOUT_S = 3.0
NO_LEADER_WAIT_S = 15.0
REQUIRE_LEADER = (("hasleader", "true"),)


def call(member, stub, method, request, metadata=None):
    with grpc.insecure_channel(member.endpoint) as channel:
        return getattr(stub(channel), method)(request, timeout=RPC_TIMEOUT_S, metadata=metadata)


def no_leader_error(fn):
    with pytest.raises(grpc.RpcError) as e:
        fn()
    return e.value.code(), e.value.details()


def wait_no_leader(member):
    deadline = time.monotonic() + NO_LEADER_WAIT_S
    while time.monotonic() < deadline:
        if status(member).leader == 0:
            return
        time.sleep(0.1)
    raise AssertionError(f"{member.name} still knows a leader after {NO_LEADER_WAIT_S}s")


def watch_created(endpoint, key, metadata=None):
    stream = WatchStream(endpoint, metadata=metadata)
    stream.create(key=key)
    assert stream.next().created
    return stream


def test_calls_requiring_a_leader_fail_without_one(server_kind, cluster_factory):
    cluster = cluster_factory(server_kind, size=3)
    leader = leader_of(cluster)
    survivor = next(m for m in cluster.members if m is not leader)
    others = [m for m in cluster.members if m is not survivor]
    put = etcdrpc.PutRequest(key=b"rl/k", value=b"1")
    rev = until_ok(lambda: call(survivor, etcdrpc.KVStub, "Put", put,
                                REQUIRE_LEADER)).header.revision
    strict = watch_created(survivor.endpoint, b"rl/k", REQUIRE_LEADER)
    plain = watch_created(survivor.endpoint, b"rl/k")
    try:
        for m in others:
            m.kill9()
        wait_no_leader(survivor)

        no_leader = (grpc.StatusCode.UNAVAILABLE, "etcdserver: no leader")
        get = etcdrpc.RangeRequest(key=b"rl/k", serializable=True)
        assert no_leader_error(lambda: call(survivor, etcdrpc.KVStub, "Range", get,
                                            REQUIRE_LEADER)) == no_leader
        assert no_leader_error(lambda: call(survivor, etcdrpc.KVStub, "Put", put,
                                            REQUIRE_LEADER)) == no_leader
        assert no_leader_error(lambda: call(survivor, etcdrpc.LeaseStub, "LeaseGrant",
                                            etcdrpc.LeaseGrantRequest(TTL=10),
                                            REQUIRE_LEADER)) == no_leader
        # Without the metadata a serializable read is served from the member's own state.
        kvs = call(survivor, etcdrpc.KVStub, "Range", get).kvs
        assert [(kv.key, kv.value, kv.mod_revision) for kv in kvs] == [(b"rl/k", b"1", rev)]

        ended = strict.poll(NO_LEADER_WAIT_S)
        assert isinstance(ended, grpc.RpcError), f"strict watch not cancelled: {ended}"
        assert (ended.code(), ended.details()) == no_leader
        assert plain.poll(0.5) is None  # the watch without the metadata stays

        refused = WatchStream(survivor.endpoint, metadata=REQUIRE_LEADER)
        try:
            refused.create(key=b"rl/k")
            first = refused.next(errors=True)
            assert isinstance(first, grpc.RpcError), f"new strict watch served: {first}"
            assert (first.code(), first.details()) == no_leader
        finally:
            refused.close()

        for m in others:
            cluster.restart_member(m)
        put2 = etcdrpc.PutRequest(key=b"rl/k", value=b"2")
        rev2 = until_ok(lambda: call(survivor, etcdrpc.KVStub, "Put", put2,
                                     REQUIRE_LEADER)).header.revision
        events = plain.next().events
        assert [(e.kv.value, e.kv.mod_revision) for e in events] == [(b"2", rev2)]
    finally:
        strict.close()
        plain.close()
