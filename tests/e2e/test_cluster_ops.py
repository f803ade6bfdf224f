"""Cluster operations on multi-member clusters, as operators run them: member list / add
(learner) / promote / remove, endpoint status, move-leader, HashKV across members, alarms
(NOSPACE from a tiny quota, then disarm), defrag, and the Snapshot stream.

Each case runs against etcd (the reference) and kvd with the same command lines. Requests
the python etcd3 client cannot express (its protos predate learners, MemberPromote,
MemberList.linearizable and HashKV.hash_revision) are sent with message classes built at
run time from kvd's own api/etcdserverpb/rpc.proto (same names and numbers as etcd's), in
a private descriptor pool.

kvd cannot start a member with --initial-cluster-state existing yet, so added members are
never started here: the cases check the membership changes and the refusals instead.
"""

import hashlib
import json
import os
import random
import subprocess
import tempfile
import time

import grpc
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

import harness

WAIT_S = 15.0  # bound on every "until the cluster agrees" wait
POLL_S = 0.1
QUOTA_BYTES = 1_000_000
VALUE_BYTES = 20_000

NO_SPACE = (grpc.StatusCode.RESOURCE_EXHAUSTED, "etcdserver: mvcc: database space exceeded")
CORRUPT = (grpc.StatusCode.DATA_LOSS, "etcdserver: corrupt cluster")
BAD_URLS = (grpc.StatusCode.INVALID_ARGUMENT, "etcdserver: given member URLs are invalid")
NOT_FOUND = (grpc.StatusCode.NOT_FOUND, "etcdserver: member not found")
URL_EXISTS = (grpc.StatusCode.FAILED_PRECONDITION, "etcdserver: Peer URLs already exists")
NOT_LEARNER = (grpc.StatusCode.FAILED_PRECONDITION, "etcdserver: can only promote a learner member")
LEARNER_NOT_READY = (grpc.StatusCode.FAILED_PRECONDITION,
                     "etcdserver: can only promote a learner member which is in sync with leader")
TOO_MANY_LEARNERS = (grpc.StatusCode.FAILED_PRECONDITION,
                     "etcdserver: too many learner members in cluster")
NOT_LEADER = (grpc.StatusCode.FAILED_PRECONDITION, "etcdserver: not leader")
BAD_TRANSFEREE = (grpc.StatusCode.FAILED_PRECONDITION, "etcdserver: bad leader transferee")
COMPACTED = (grpc.StatusCode.OUT_OF_RANGE, "etcdserver: mvcc: required revision has been compacted")
FUTURE_REV = (grpc.StatusCode.OUT_OF_RANGE, "etcdserver: mvcc: required revision is a future revision")
# etcd refuses membership changes until it has been connected to every voter for 5 s.
UNHEALTHY = (grpc.StatusCode.UNAVAILABLE, "etcdserver: unhealthy cluster")


# --- etcd's v3 messages, from kvd's proto -------------------------------------------------

def _load_messages():
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "rpc.pb")
        subprocess.run(["protoc", "-I", str(harness.REPO_ROOT), "--include_imports",
                        "--descriptor_set_out", out, "api/etcdserverpb/rpc.proto"], check=True)
        with open(out, "rb") as f:
            files = descriptor_pb2.FileDescriptorSet.FromString(f.read())
    pool = descriptor_pool.DescriptorPool()  # private: etcd3's own protos use the same names
    for f in files.file:
        pool.Add(f)
    factory = message_factory.MessageFactory(pool)
    names = pool.FindFileByName("api/etcdserverpb/rpc.proto").message_types_by_name
    return type("pb", (), {n: factory.GetPrototype(pool.FindMessageTypeByName(
        "etcdserverpb." + n)) for n in names})


pb = _load_messages()


class Rpc:
    """Unary and server-streaming calls to one member."""

    def __init__(self, member):
        self.member = member
        self.channel = grpc.insecure_channel(member.endpoint)

    def call(self, service, method, request, response_type, timeout=harness.RPC_TIMEOUT_S):
        fn = self.channel.unary_unary(f"/etcdserverpb.{service}/{method}",
                                      request_serializer=lambda r: r.SerializeToString(),
                                      response_deserializer=response_type.FromString)
        return fn(request, timeout=timeout)

    def stream(self, service, method, request, response_type, timeout=30.0):
        fn = self.channel.unary_stream(f"/etcdserverpb.{service}/{method}",
                                       request_serializer=lambda r: r.SerializeToString(),
                                       response_deserializer=response_type.FromString)
        return list(fn(request, timeout=timeout))

    def status(self):
        return self.call("Maintenance", "Status", pb.StatusRequest(), pb.StatusResponse)

    def members(self, linearizable=False):
        return self.call("Cluster", "MemberList", pb.MemberListRequest(linearizable=linearizable),
                         pb.MemberListResponse).members

    def put(self, key, value):
        return self.call("KV", "Put", pb.PutRequest(key=key, value=value), pb.PutResponse)

    def alarm(self, action, member_id=0, alarm=0):
        return self.call("Maintenance", "Alarm", pb.AlarmRequest(
            action=action, memberID=member_id, alarm=alarm), pb.AlarmResponse).alarms

    def close(self):
        self.channel.close()


@pytest.fixture
def rpcs():
    made = []

    def make(cluster):
        r = [Rpc(m) for m in cluster.members]
        made.extend(r)
        return r

    yield make
    for r in made:
        r.close()


def error_of(fn):
    try:
        fn()
    except grpc.RpcError as e:
        return e.code(), e.details()
    return None


def wait_until(what, fn, timeout_s=WAIT_S):
    """fn() until it returns something truthy; fails with `what` after timeout_s."""
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        try:
            last = fn()
        except grpc.RpcError as e:
            last = (e.code(), e.details())
        else:
            if last:
                return last
        time.sleep(POLL_S)
    raise AssertionError(f"{what}: not after {timeout_s}s (last: {last!r})")


def settled_change(fn):
    """A membership change; retried while etcd calls the cluster unhealthy (it wants 5 s
    of connection to every voter first). Returns the response or the final error."""
    deadline = time.monotonic() + WAIT_S
    while True:
        try:
            return fn()
        except grpc.RpcError as e:
            err = (e.code(), e.details())
            if err != UNHEALTHY or time.monotonic() > deadline:
                return err
        time.sleep(0.25)


def ctl(cluster, *args, endpoints=None):
    """etcdctl against the given endpoints (default: all members)."""
    eps = endpoints or cluster.endpoints
    env = dict(os.environ, ETCDCTL_API="3")
    return subprocess.run([harness.ETCDCTL_BIN, "--endpoints", ",".join(eps),
                           "--dial-timeout", "3s", "--command-timeout", "10s", *args],
                          capture_output=True, text=True, env=env, timeout=harness.CTL_TIMEOUT_S)


def ctl_json(cluster, *args, endpoints=None):
    r = ctl(cluster, "-w", "json", *args, endpoints=endpoints)
    assert r.returncode == 0, f"etcdctl {args}: {r.stderr[-2000:]}"
    return json.loads(r.stdout)


def leader_of(rpcs_):
    """The leader all members agree on (waits for agreement)."""
    def agreed():
        leaders = {r.status().leader for r in rpcs_}
        return leaders.pop() if len(leaders) == 1 and 0 not in leaders else None
    leader = wait_until("members agree on a leader", agreed)
    by_id = {r.status().header.member_id: r for r in rpcs_}
    return leader, by_id


def free_peer_url():
    [port] = harness.free_ports(1)
    return f"http://127.0.0.1:{port}"


def start3(cluster_factory, kind, extra_flags=()):
    return cluster_factory(kind, size=3, extra_flags=extra_flags)


# --- membership ----------------------------------------------------------------------------

def test_member_list_shows_every_member(server_kind, cluster_factory, rpcs):
    c = start3(cluster_factory, server_kind)
    expected = sorted((m.name, m.peer_url) for m in c.members)
    for m in c.members:
        answer = ctl_json(c, "member", "list", endpoints=[m.endpoint])
        assert sorted((x["name"], *x["peerURLs"]) for x in answer["members"]) == expected
        assert all(not x.get("isLearner", False) for x in answer["members"])
        assert answer["header"]["member_id"] in [x["ID"] for x in answer["members"]]
        assert answer["header"]["cluster_id"] != 0
    ids = {r.status().header.member_id for r in rpcs(c)}
    # The 3.5 linearizable flag gives the same list, from every member.
    for r in rpcs(c):
        assert {x.ID for x in r.members(linearizable=True)} == ids
    r = ctl(c, "member", "list", endpoints=[c.members[0].endpoint])
    lines = sorted(r.stdout.splitlines())
    assert len(lines) == 3 and all(", started, m" in line for line in lines), r.stdout


def test_member_list_shows_every_client_url(server_kind, cluster_factory, rpcs, request):
    c = start3(cluster_factory, server_kind)
    expected = sorted((m.name, m.client_url) for m in c.members)
    for r in rpcs(c):
        wait_until(f"{r.member.name} lists every client URL", lambda: sorted(
            (x.name, *x.clientURLs) for x in r.members(linearizable=True)) == expected,
            timeout_s=5.0)


def test_endpoint_status_agrees_on_leader_and_term(server_kind, cluster_factory, rpcs):
    c = start3(cluster_factory, server_kind)
    r0 = rpcs(c)[0]
    r0.put(b"k", b"v")
    leader, by_id = leader_of(rpcs(c))
    statuses = ctl_json(c, "endpoint", "status")
    assert sorted(s["Endpoint"] for s in statuses) == sorted(c.endpoints)
    assert {s["Status"]["leader"] for s in statuses} == {leader}
    assert len({s["Status"]["raftTerm"] for s in statuses}) == 1
    assert sorted(s["Status"]["header"]["member_id"] for s in statuses) == sorted(by_id)
    for s in statuses:
        st = s["Status"]
        assert st["raftTerm"] >= 1 and st["raftIndex"] >= 1 and st["dbSize"] > 0
        assert st["header"]["revision"] >= 2
        assert not st.get("isLearner", False)
        assert not st.get("errors")


def test_learner_add_promote_remove(server_kind, cluster_factory, rpcs):
    c = start3(cluster_factory, server_kind)
    r0 = rpcs(c)[0]
    ids = {x.ID for x in r0.members()}
    url = free_peer_url()
    add = settled_change(lambda: r0.call("Cluster", "MemberAdd", pb.MemberAddRequest(
        peerURLs=[url], isLearner=True), pb.MemberAddResponse))
    assert not isinstance(add, tuple), add
    learner = add.member
    assert learner.isLearner and list(learner.peerURLs) == [url] and learner.ID not in ids
    assert learner.name == "" and list(learner.clientURLs) == []  # never started
    assert {x.ID for x in add.members} == ids | {learner.ID}
    assert add.header.member_id == r0.status().header.member_id
    # Every member lists it (linearizably), as an unstarted learner.
    for r in rpcs(c):
        listed = {x.ID: x for x in r.members(linearizable=True)}
        assert set(listed) == ids | {learner.ID}
        assert listed[learner.ID].isLearner
    answer = ctl_json(c, "member", "list", endpoints=[c.members[1].endpoint])
    [row] = [x for x in answer["members"] if x["ID"] == learner.ID]
    assert row["isLearner"] and row["peerURLs"] == [url]

    # One learner at a time; the same URL twice; a learner that never started cannot be
    # promoted (it is not in sync), from any member.
    second = lambda: r0.call("Cluster", "MemberAdd", pb.MemberAddRequest(
        peerURLs=[free_peer_url()], isLearner=True), pb.MemberAddResponse)
    assert error_of(second) == TOO_MANY_LEARNERS
    leader, by_id = leader_of(rpcs(c))
    promote = lambda: by_id[leader].call("Cluster", "MemberPromote", pb.MemberPromoteRequest(
        ID=learner.ID), pb.MemberPromoteResponse)
    assert error_of(promote) == LEARNER_NOT_READY
    # A learner cannot lead.
    move = lambda: by_id[leader].call("Maintenance", "MoveLeader", pb.MoveLeaderRequest(
        targetID=learner.ID), pb.MoveLeaderResponse)
    assert error_of(move) == BAD_TRANSFEREE
    # The learner's URLs can change while it waits.
    new_url = free_peer_url()
    upd = r0.call("Cluster", "MemberUpdate", pb.MemberUpdateRequest(ID=learner.ID,
                                                                     peerURLs=[new_url]),
                  pb.MemberUpdateResponse)
    # (etcd 3.4 then reports the learner as a voter: its update replaces the learner flag.)
    [row] = [x for x in upd.members if x.ID == learner.ID]
    assert list(row.peerURLs) == [new_url]

    r = ctl(c, "member", "remove", "%x" % learner.ID, endpoints=[c.members[2].endpoint])
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().startswith("Member %16x removed from cluster" % learner.ID)
    for rr in rpcs(c):
        assert {x.ID for x in rr.members(linearizable=True)} == ids
    remove = lambda: r0.call("Cluster", "MemberRemove", pb.MemberRemoveRequest(
        ID=learner.ID), pb.MemberRemoveResponse)
    assert error_of(remove) == NOT_FOUND
    r = ctl(c, "member", "remove", "%x" % learner.ID)
    assert harness.ctl_error(r) == {"exit": 1, "error": ["Error: " + NOT_FOUND[1]]}


def test_promote_through_a_follower(server_kind, cluster_factory, rpcs, request):
    """Only the leader knows whether a learner is in sync: followers pass the request on."""
    c = start3(cluster_factory, server_kind)
    rs = rpcs(c)
    add = settled_change(lambda: rs[0].call("Cluster", "MemberAdd", pb.MemberAddRequest(
        peerURLs=[free_peer_url()], isLearner=True), pb.MemberAddResponse))
    assert not isinstance(add, tuple), add
    leader, by_id = leader_of(rs)
    for member_id, r in by_id.items():
        if member_id == leader:
            continue
        promote = lambda: r.call("Cluster", "MemberPromote", pb.MemberPromoteRequest(
            ID=add.member.ID), pb.MemberPromoteResponse)
        assert error_of(promote) == LEARNER_NOT_READY


def test_membership_refusals(server_kind, cluster_factory, rpcs):
    c = start3(cluster_factory, server_kind)
    r0 = rpcs(c)[0]
    ids = sorted(x.ID for x in r0.members())
    add = lambda urls, learner=True: (lambda: r0.call("Cluster", "MemberAdd", pb.MemberAddRequest(
        peerURLs=urls, isLearner=learner), pb.MemberAddResponse))
    for urls in ([], [""], ["not a url"], ["127.0.0.1:2390"], ["ftp://127.0.0.1:2390"],
                 ["http://127.0.0.1"], ["http://127.0.0.1:2390/"], ["http://127.0.0.1:2390/x"],
                 ["http://127.0.0.1:2390", "http//x"]):
        assert error_of(add(urls)) == BAD_URLS, urls
    assert settled_change(add([c.members[1].peer_url])) == URL_EXISTS
    unknown = max(ids) + 1 if max(ids) < 2**64 - 1 else 1
    for method, req, resp in [
            ("MemberRemove", pb.MemberRemoveRequest(ID=unknown), pb.MemberRemoveResponse),
            ("MemberUpdate", pb.MemberUpdateRequest(ID=unknown, peerURLs=["http://127.0.0.1:9"]),
             pb.MemberUpdateResponse),
            ("MemberPromote", pb.MemberPromoteRequest(ID=unknown), pb.MemberPromoteResponse)]:
        assert error_of(lambda: r0.call("Cluster", method, req, resp)) == NOT_FOUND, method
    first, second = r0.members()[:2]
    upd = lambda: r0.call("Cluster", "MemberUpdate", pb.MemberUpdateRequest(
        ID=first.ID, peerURLs=list(second.peerURLs)), pb.MemberUpdateResponse)
    assert error_of(upd) == URL_EXISTS
    assert [x.ID for x in r0.members()] == ids  # nothing changed


def test_remove_a_voter(server_kind, cluster_factory, rpcs):
    c = start3(cluster_factory, server_kind)
    rs = rpcs(c)
    leader, by_id = leader_of(rs)
    follower_id = next(i for i in by_id if i != leader)
    victim = by_id[follower_id]
    rest = [r for r in rs if r is not victim]
    resp = settled_change(lambda: by_id[leader].call("Cluster", "MemberRemove", pb.MemberRemoveRequest(
        ID=follower_id), pb.MemberRemoveResponse))
    assert not isinstance(resp, tuple), resp
    assert follower_id not in {x.ID for x in resp.members} and len(resp.members) == 2
    for r in rest:
        assert {x.ID for x in r.members(linearizable=True)} == set(by_id) - {follower_id}
    # The two left still make progress.
    rest[0].put(b"after-remove", b"1")
    got = rest[1].call("KV", "Range", pb.RangeRequest(key=b"after-remove"), pb.RangeResponse)
    assert [kv.value for kv in got.kvs] == [b"1"]


# --- leadership ----------------------------------------------------------------------------

def test_move_leader(server_kind, cluster_factory, rpcs):
    c = start3(cluster_factory, server_kind)
    rs = rpcs(c)
    leader, by_id = leader_of(rs)
    followers = [i for i in by_id if i != leader]
    term = by_id[leader].status().raftTerm
    move = lambda r, target: (lambda: r.call("Maintenance", "MoveLeader", pb.MoveLeaderRequest(
        targetID=target), pb.MoveLeaderResponse))
    assert error_of(move(by_id[followers[0]], followers[1])) == NOT_LEADER
    assert error_of(move(by_id[leader], max(by_id) + 1)) == BAD_TRANSFEREE
    assert error_of(move(by_id[leader], 0)) == BAD_TRANSFEREE
    # etcdctl finds the leader among the endpoints and asks it.
    target = followers[0]
    r = ctl(c, "move-leader", "%x" % target)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "Leadership transferred from %x to %x" % (leader, target)
    def moved():
        statuses = [x.status() for x in rs]
        return all(s.leader == target for s in statuses) and \
            len({s.raftTerm for s in statuses}) == 1
    wait_until("every member follows the new leader", moved)
    assert by_id[target].status().raftTerm > term
    # The new leader serves writes; the old one now refuses to move leadership.
    by_id[leader].put(b"after-move", b"1")
    assert error_of(move(by_id[leader], followers[1])) == NOT_LEADER


# --- hashes --------------------------------------------------------------------------------

def mixed_workload(r, rng):
    lease = r.call("Lease", "LeaseGrant", pb.LeaseGrantRequest(TTL=600), pb.LeaseGrantResponse)
    for i in range(60):
        key = b"key/%02d" % rng.randrange(20)
        op = rng.random()
        if op < 0.6:
            r.put(key, b"v%d" % i)
        elif op < 0.75:
            r.call("KV", "DeleteRange", pb.DeleteRangeRequest(key=key), pb.DeleteRangeResponse)
        elif op < 0.9:
            r.call("KV", "Txn", pb.TxnRequest(
                compare=[pb.Compare(key=key, target=pb.Compare.VERSION, result=pb.Compare.GREATER,
                                    version=0)],
                success=[pb.RequestOp(request_put=pb.PutRequest(key=key, value=b"t%d" % i))],
                failure=[pb.RequestOp(request_put=pb.PutRequest(key=key + b"/new", value=b"f"))]),
                pb.TxnResponse)
        else:
            r.call("KV", "Put", pb.PutRequest(key=b"leased/%d" % i, value=b"l", lease=lease.ID),
                   pb.PutResponse)
    return r.call("KV", "Range", pb.RangeRequest(key=b"x"), pb.RangeResponse).header.revision


def hash_kv(r, rev):
    return r.call("Maintenance", "HashKV", pb.HashKVRequest(revision=rev), pb.HashKVResponse)


def test_hashkv_equal_on_every_member(server_kind, cluster_factory, rpcs):
    c = start3(cluster_factory, server_kind)
    rs = rpcs(c)
    rng = random.Random(7)
    mid = mixed_workload(rs[0], rng)
    rs[1].call("KV", "Compact", pb.CompactionRequest(revision=mid - 20, physical=True),
               pb.CompactionResponse)
    head = mixed_workload(rs[2], rng)
    # Every member has applied the head (serializable reads see the local state).
    for r in rs:
        wait_until(f"{r.member.name} applied revision {head}", lambda: r.call(
            "KV", "Range", pb.RangeRequest(key=b"x", serializable=True),
            pb.RangeResponse).header.revision >= head)
    for rev in (head, mid, mid - 19):
        hashes = [hash_kv(r, rev) for r in rs]
        assert len({h.hash for h in hashes}) == 1, (rev, hashes)
        assert {h.compact_revision for h in hashes} == {mid - 20}
        if server_kind == "kvd":  # hash_revision is etcd 3.5's
            assert {h.hash_revision for h in hashes} == {rev}
    assert hash_kv(rs[0], head).hash != hash_kv(rs[0], mid).hash
    assert hash_kv(rs[0], 0).hash == hash_kv(rs[0], head).hash
    for r in rs:
        assert error_of(lambda: hash_kv(r, mid - 20)) == COMPACTED
        assert error_of(lambda: hash_kv(r, head + 1000)) == FUTURE_REV
    # etcdctl's view: one hash for every endpoint.
    entries = ctl_json(c, "endpoint", "hashkv", "--rev", str(head))
    assert len(entries) == 3 and len({e["HashKV"]["hash"] for e in entries}) == 1


def test_hash_answers(server_kind, server, rpcs):
    [r] = rpcs(server)
    r.put(b"a", b"1")
    h = r.call("Maintenance", "Hash", pb.HashRequest(), pb.HashResponse)
    assert h.header.revision == 2 and h.header.member_id == r.status().header.member_id


# --- alarms and quota ----------------------------------------------------------------------

GET, ACTIVATE, DEACTIVATE = 0, 1, 2
NONE, NOSPACE, CORRUPT_ALARM = 0, 1, 2


def test_alarms_are_replicated(server_kind, cluster_factory, rpcs):
    c = start3(cluster_factory, server_kind)
    rs = rpcs(c)
    ids = sorted(r.status().header.member_id for r in rs)
    assert list(rs[0].alarm(GET)) == []
    got = rs[0].alarm(ACTIVATE, ids[1], NOSPACE)
    assert [(a.memberID, a.alarm) for a in got] == [(ids[1], NOSPACE)]
    # Every member refuses what needs space, and serves reads and deletes.
    for r in rs:
        assert [(a.memberID, a.alarm) for a in r.alarm(GET)] == [(ids[1], NOSPACE)]
        assert error_of(lambda: r.put(b"k", b"v")) == NO_SPACE
        assert error_of(lambda: r.call("KV", "Txn", pb.TxnRequest(
            success=[pb.RequestOp(request_range=pb.RangeRequest(key=b"k"))],
            failure=[pb.RequestOp(request_put=pb.PutRequest(key=b"k"))]), pb.TxnResponse)) \
            == NO_SPACE
        assert error_of(lambda: r.call("Lease", "LeaseGrant", pb.LeaseGrantRequest(TTL=60),
                                       pb.LeaseGrantResponse)) == NO_SPACE
        r.call("KV", "Range", pb.RangeRequest(key=b"k"), pb.RangeResponse)
        r.call("KV", "DeleteRange", pb.DeleteRangeRequest(key=b"k"), pb.DeleteRangeResponse)
        r.call("KV", "Txn", pb.TxnRequest(success=[pb.RequestOp(
            request_delete_range=pb.DeleteRangeRequest(key=b"k"))]), pb.TxnResponse)
        wait_until("status shows the alarm", lambda: list(r.status().errors) ==
                   [f"memberID:{ids[1]} alarm:NOSPACE "])
    r = ctl(c, "alarm", "list", endpoints=[c.members[2].endpoint])
    assert (r.returncode, r.stdout.strip()) == (0, f"memberID:{ids[1]} alarm:NOSPACE")
    # GET filters by type; DEACTIVATE answers what it cleared.
    assert list(rs[0].alarm(GET, 0, CORRUPT_ALARM)) == []
    assert list(rs[1].alarm(DEACTIVATE, ids[0], NOSPACE)) == []
    got = rs[1].alarm(DEACTIVATE, ids[1], NOSPACE)
    assert [(a.memberID, a.alarm) for a in got] == [(ids[1], NOSPACE)]
    for r in rs:
        assert list(r.alarm(GET)) == []
        r.put(b"k", b"v")

    # CORRUPT refuses every write, reads still work.
    rs[2].alarm(ACTIVATE, ids[2], CORRUPT_ALARM)
    assert error_of(lambda: rs[0].put(b"k", b"v")) == CORRUPT
    got = rs[0].call("KV", "Range", pb.RangeRequest(key=b"k"), pb.RangeResponse)
    assert [kv.value for kv in got.kvs] == [b"v"]
    r = ctl(c, "alarm", "disarm", endpoints=[c.members[0].endpoint])
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"memberID:{ids[2]} alarm:CORRUPT"
    rs[0].put(b"k", b"v2")


def test_quota_raises_nospace_until_disarmed(server_kind, cluster_factory, rpcs):
    c = start3(cluster_factory, server_kind,
               extra_flags=("--quota-backend-bytes", str(QUOTA_BYTES)))
    rs = rpcs(c)
    rng = random.Random(3)
    accepted, refusal = 0, None
    for i in range(10 * QUOTA_BYTES // VALUE_BYTES):
        value = rng.randbytes(VALUE_BYTES)
        refusal = error_of(lambda: rs[i % 3].put(b"big/%04d" % i, value))
        if refusal:
            break
        accepted += 1
    assert refusal == NO_SPACE and accepted >= 1, (accepted, refusal)
    # The alarm is the cluster's: every member refuses writes and lists it.
    alarms = wait_until("a NOSPACE alarm is listed", lambda: list(rs[0].alarm(GET)))
    ids = {r.status().header.member_id for r in rs}
    assert {a.alarm for a in alarms} == {NOSPACE} and {a.memberID for a in alarms} <= ids
    for r in rs:
        assert error_of(lambda: r.put(b"small", b"1")) == NO_SPACE
    r = ctl(c, "put", "small", "1", endpoints=[c.members[1].endpoint])
    assert r.returncode == 1 and r.stderr.splitlines()[-1] == "Error: " + NO_SPACE[1]
    # Free the space: delete, compact, defragment every member, disarm.
    deleted = rs[0].call("KV", "DeleteRange", pb.DeleteRangeRequest(key=b"big/", range_end=b"big0"),
                         pb.DeleteRangeResponse)
    # (etcd may count one more: a put whose answer raced the alarm.)
    assert accepted <= deleted.deleted <= accepted + 1
    rs[0].call("KV", "Compact", pb.CompactionRequest(revision=deleted.header.revision,
                                                     physical=True), pb.CompactionResponse)
    r = ctl(c, "defrag")
    assert r.returncode == 0, r.stderr
    r = ctl(c, "alarm", "disarm", endpoints=[c.members[0].endpoint])
    assert r.returncode == 0, r.stderr
    for r in rs:
        wait_until("the alarm is gone", lambda: not list(r.alarm(GET)))
    for i, r in enumerate(rs):
        r.put(b"small/%d" % i, b"1")


def test_defrag_every_endpoint(server_kind, cluster_factory, rpcs):
    c = start3(cluster_factory, server_kind)
    rs = rpcs(c)
    for i in range(50):
        rs[0].put(b"d/%d" % (i % 5), b"x" * 1000)
    r = ctl(c, "defrag")
    assert r.returncode == 0, r.stderr
    assert sorted(r.stdout.splitlines()) == sorted(
        f"Finished defragmenting etcd member[{e}]" for e in c.endpoints)
    for rr in rs:
        got = rr.call("KV", "Range", pb.RangeRequest(key=b"d/", range_end=b"d0"), pb.RangeResponse)
        assert got.count == 5


# --- snapshot ------------------------------------------------------------------------------

def test_snapshot_stream_ends_with_its_sha256(server_kind, server, rpcs):
    [r] = rpcs(server)
    for i in range(200):
        r.put(b"s/%03d" % i, os.urandom(1000))
    messages = r.stream("Maintenance", "Snapshot", pb.SnapshotRequest(), pb.SnapshotResponse)
    assert len(messages) >= 2
    *data, trailer = messages
    body = b"".join(m.blob for m in data)
    assert len(body) > 200 * 1000
    assert trailer.blob == hashlib.sha256(body).digest() and trailer.remaining_bytes == 0
    assert len(body) % 512 == 0  # etcdctl snapshot save checks it
    # remaining_bytes counts down to 0 over the data.
    sent = 0
    for m in data:
        sent += len(m.blob)
        assert m.remaining_bytes == len(body) - sent
    if server_kind == "kvd":
        assert body.startswith(b"KVDSNAP1")
        assert messages[0].header.member_id == r.status().header.member_id
