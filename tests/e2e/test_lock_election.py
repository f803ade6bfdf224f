"""Lock and Election gRPC services (v3lockpb, v3electionpb), and etcdctl's lock/elect.

- test_golden_lock_election: the same script against etcd and the server under test over
  raw gRPC; transcripts must be equal (lease ids and the hex lease suffix of session keys
  normalized). Covers Lock (uncontended, re-lock with one lease, contended hand-over on
  Unlock, unknown lease), Unlock, Campaign/Leader/Proclaim/Resign/Observe and their errors.
- (etcdctl's and kvctl's lock and elect: test_ctl_lock_election.py.)
- Lock and Campaign with lease 0: each call gets a fresh 60 s lease nobody keeps alive.

The python etcd3 package has no stubs for these services, and etcd's own .proto files
cannot be loaded beside etcd3's (same message names), so a test-local proto with the same
field numbers is compiled with protoc at run time and called by method path.
Every wait is bounded (WAIT_S); blocked calls run in threads with deadlines.
"""

import queue
import threading
import time

import grpc
from etcd3 import etcdrpc

import harness
from transcript import check_golden, proto_to_dict

WAIT_S = 15.0

PROTO = """
syntax = "proto3";
package lockelecttest;
message ResponseHeader { uint64 cluster_id = 1; uint64 member_id = 2; int64 revision = 3;
                         uint64 raft_term = 4; }
message KeyValue { bytes key = 1; int64 create_revision = 2; int64 mod_revision = 3;
                   int64 version = 4; bytes value = 5; int64 lease = 6; }
message LockRequest { bytes name = 1; int64 lease = 2; }
message LockResponse { ResponseHeader header = 1; bytes key = 2; }
message UnlockRequest { bytes key = 1; }
message UnlockResponse { ResponseHeader header = 1; }
message LeaderKey { bytes name = 1; bytes key = 2; int64 rev = 3; int64 lease = 4; }
message CampaignRequest { bytes name = 1; int64 lease = 2; bytes value = 3; }
message CampaignResponse { ResponseHeader header = 1; LeaderKey leader = 2; }
message LeaderRequest { bytes name = 1; }
message LeaderResponse { ResponseHeader header = 1; KeyValue kv = 2; }
message ResignRequest { LeaderKey leader = 1; }
message ResignResponse { ResponseHeader header = 1; }
message ProclaimRequest { LeaderKey leader = 1; bytes value = 2; }
message ProclaimResponse { ResponseHeader header = 1; }
"""

def pb():
    """The test-local messages (compiled once per session)."""
    return harness.compile_proto(PROTO, "lockelect_msgs")


def unary(channel, method, request, response_cls, timeout=WAIT_S):
    call = channel.unary_unary(method, request_serializer=lambda m: m.SerializeToString(),
                               response_deserializer=response_cls.FromString)
    return call(request, timeout=timeout)


class Background:
    """A blocking unary call in a thread."""

    def __init__(self, channel, method, request, response_cls):
        self.result = None
        self.error = None
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        args=(channel, method, request, response_cls))
        self._thread.start()

    def _run(self, channel, method, request, response_cls):
        try:
            self.result = unary(channel, method, request, response_cls, timeout=WAIT_S * 2)
        except grpc.RpcError as e:
            self.error = e

    def running(self):
        return self._thread.is_alive()

    def join(self):
        self._thread.join(timeout=WAIT_S * 2)
        assert not self._thread.is_alive(), "blocked call did not return"


def wait_for_keys(kv_client, prefix, count):
    """Until `count` keys exist under prefix (bounded)."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if len(list(kv_client.get_prefix(prefix))) == count:
            return
        time.sleep(0.02)
    raise AssertionError(f"{count} keys under {prefix!r} never appeared")


def lock_election_scenario(t):
    P = pb()
    c = t.cluster.client()
    channel = grpc.insecure_channel(t.cluster.members[0].endpoint)
    l1, l2 = c.lease(300).id, c.lease(300).id
    hex_names = {format(l1, "x"): "<lease1>", format(l2, "x"): "<lease2>"}

    def norm(obj):
        if isinstance(obj, dict):
            return {k: norm(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [norm(v) for v in obj]
        if isinstance(obj, str):
            for h, name in hex_names.items():
                obj = obj.replace(h, name)
        return obj

    def record(label, fn):
        try:
            r = fn()
        except grpc.RpcError as e:
            t.note(label, {"grpc_code": e.code().name, "details": e.details()})
            return None
        t.note(label, norm(proto_to_dict(r)))
        return r

    def outcome(bg):
        if bg.error is not None:
            return {"grpc_code": bg.error.code().name, "details": bg.error.details()}
        return norm(proto_to_dict(bg.result))

    LOCK, UNLOCK = "/v3lockpb.Lock/Lock", "/v3lockpb.Lock/Unlock"
    lock = lambda name, lease: lambda: unary(channel, LOCK, P.LockRequest(name=name, lease=lease),
                                             P.LockResponse)
    unlock = lambda key: lambda: unary(channel, UNLOCK, P.UnlockRequest(key=key), P.UnlockResponse)

    first = record("lock lk with lease1", lock(b"lk", l1))
    record("lock lk again with lease1 (same acquisition)", lock(b"lk", l1))
    waiter = Background(channel, LOCK, P.LockRequest(name=b"lk", lease=l2), P.LockResponse)
    wait_for_keys(c, "lk/", 2)
    t.note("lease2 waits while lease1 holds lk", waiter.running())
    record("unlock lease1's key", unlock(first.key))
    waiter.join()
    t.note("lease2's lock returns after the unlock", outcome(waiter))
    record("lock with an unknown lease", lock(b"lk2", 0x7777))
    record("unlock a key that does not exist", unlock(b"lk/none"))

    E = "/v3electionpb.Election/"
    call = lambda m, req, resp: lambda: unary(channel, E + m, req, resp)
    record("leader of an empty election", call("Leader", P.LeaderRequest(name=b"el"),
                                               P.LeaderResponse))
    won = record("campaign el with lease1", call(
        "Campaign", P.CampaignRequest(name=b"el", lease=l1, value=b"v1"), P.CampaignResponse))
    leader = won.leader
    record("leader", call("Leader", P.LeaderRequest(name=b"el"), P.LeaderResponse))
    record("proclaim v2", call("Proclaim", P.ProclaimRequest(leader=leader, value=b"v2"),
                               P.ProclaimResponse))
    stale = P.LeaderKey(name=leader.name, key=leader.key, rev=leader.rev + 100,
                        lease=leader.lease)
    record("proclaim with a stale leader key", call(
        "Proclaim", P.ProclaimRequest(leader=stale, value=b"x"), P.ProclaimResponse))
    record("proclaim without a leader key", call("Proclaim", P.ProclaimRequest(value=b"x"),
                                                 P.ProclaimResponse))

    second = Background(channel, E + "Campaign",
                        P.CampaignRequest(name=b"el", lease=l2, value=b"w"), P.CampaignResponse)
    wait_for_keys(c, "el/", 2)
    t.note("lease2's campaign waits", second.running())

    observed = queue.Queue()
    observe = channel.unary_stream(E + "Observe",
                                   request_serializer=lambda m: m.SerializeToString(),
                                   response_deserializer=P.LeaderResponse.FromString)(
        P.LeaderRequest(name=b"el"), timeout=WAIT_S * 2)

    def read_observe():
        try:
            for r in observe:
                observed.put(r)
        except grpc.RpcError:
            pass

    reader = threading.Thread(target=read_observe, daemon=True)
    reader.start()
    t.note("observe: current leader", norm(proto_to_dict(observed.get(timeout=WAIT_S))))
    record("resign lease1", call("Resign", P.ResignRequest(leader=leader), P.ResignResponse))
    second.join()
    t.note("lease2's campaign wins", outcome(second))
    t.note("observe: next leader", norm(proto_to_dict(observed.get(timeout=WAIT_S))))
    observe.cancel()
    record("resign without a leader key", call("Resign", P.ResignRequest(), P.ResignResponse))
    record("leader after hand-over", call("Leader", P.LeaderRequest(name=b"el"),
                                          P.LeaderResponse))
    channel.close()


SCENARIOS = {"lock_election": ([], lock_election_scenario)}


def test_golden_lock_election(server_kind, cluster_factory):
    check_golden(SCENARIOS, "lock_election", server_kind, cluster_factory)


def test_lock_and_campaign_without_lease_get_a_fresh_sixty_second_lease(server):
    """Lease 0: the service grants a session lease of 60 s for the call and never keeps it
    alive; each call gets its own (a second Lock waits for the first)."""
    P = pb()
    c = server.client()
    channel = grpc.insecure_channel(server.members[0].endpoint)
    try:
        def session_lease(key, prefix):
            assert key.startswith(prefix), key
            lease = int(key[len(prefix):], 16)
            kvs = c.kvstub.Range(etcdrpc.RangeRequest(key=key), timeout=WAIT_S).kvs
            assert len(kvs) == 1 and kvs[0].lease == lease
            ttl = c.leasestub.LeaseTimeToLive(etcdrpc.LeaseTimeToLiveRequest(ID=lease),
                                              timeout=WAIT_S)
            assert ttl.grantedTTL == 60 and 0 < ttl.TTL <= 60, ttl
            return lease

        first = unary(channel, "/v3lockpb.Lock/Lock", P.LockRequest(name=b"nl"),
                      P.LockResponse)
        lease = session_lease(first.key, b"nl/")
        waiter = Background(channel, "/v3lockpb.Lock/Lock", P.LockRequest(name=b"nl"),
                            P.LockResponse)
        wait_for_keys(c, "nl/", 2)
        assert waiter.running()
        unary(channel, "/v3lockpb.Lock/Unlock", P.UnlockRequest(key=first.key),
              P.UnlockResponse)
        waiter.join()
        assert waiter.error is None, waiter.error
        assert session_lease(waiter.result.key, b"nl/") != lease

        won = unary(channel, "/v3electionpb.Election/Campaign",
                    P.CampaignRequest(name=b"ne", value=b"v"), P.CampaignResponse)
        assert won.leader.lease != 0
        assert session_lease(won.leader.key, b"ne/") == won.leader.lease

        # Nobody keeps the session alive: its TTL runs down.
        deadline = time.monotonic() + WAIT_S
        while True:
            ttl = c.leasestub.LeaseTimeToLive(etcdrpc.LeaseTimeToLiveRequest(ID=lease),
                                              timeout=WAIT_S)
            if ttl.TTL < 59:
                break
            assert time.monotonic() < deadline, f"TTL stays at {ttl.TTL}"
            time.sleep(0.2)
    finally:
        channel.close()
