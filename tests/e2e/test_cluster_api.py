"""Cluster and maintenance APIs as scripts see them: etcdctl member list, endpoint
status, endpoint health. Expected values come from the flags the server was started with
and from the data model (a single member is its own leader), not from constants.
"""

import json

from etcd3 import etcdrpc


def ctl_json(cluster, *args):
    r = cluster.etcdctl("-w", "json", *args)
    assert r.returncode == 0, f"etcdctl {args} failed: {r.stderr}"
    return json.loads(r.stdout)


def test_member_list_reports_the_flags(server):
    m = server.members[0]
    answer = ctl_json(server, "member", "list")
    members = answer["members"]
    assert len(members) == 1
    me = members[0]
    assert me["name"] == m.name
    assert me["peerURLs"] == [m.peer_url]
    assert me["clientURLs"] == [m.client_url]
    assert me["ID"] == answer["header"]["member_id"] != 0
    assert answer["header"]["cluster_id"] != 0
    assert not me.get("isLearner", False)


def test_endpoint_status_single_member_is_leader(server):
    kv = server.client().kvstub
    kv.Put(etcdrpc.PutRequest(key=b"k", value=b"v"))
    [entry] = ctl_json(server, "endpoint", "status")
    assert entry["Endpoint"] == server.members[0].endpoint
    status = entry["Status"]
    header = status["header"]
    assert status["leader"] == header["member_id"] != 0
    assert status["raftTerm"] >= 1 and header["raft_term"] == status["raftTerm"]
    assert status["raftIndex"] >= 1
    assert status.get("raftAppliedIndex", status["raftIndex"]) <= status["raftIndex"]
    assert header["revision"] == 2
    # A version string clients can parse: "major.minor.patch".
    parts = status["version"].split(".")
    assert len(parts) == 3 and all(p.isdigit() for p in parts), status["version"]
    assert status["dbSize"] > 0


def test_endpoint_health(server):
    [entry] = ctl_json(server, "endpoint", "health")
    assert entry["endpoint"] == server.members[0].endpoint
    assert entry["health"] is True
    r = server.etcdctl("endpoint", "health")
    assert r.returncode == 0
    # etcdctl 3.4 prints the simple form on stderr.
    assert (r.stdout + r.stderr).startswith(f"{server.members[0].endpoint} is healthy:")


def test_status_rpc_agrees_with_member_list(server):
    c = server.client()
    status = c.maintenancestub.Status(etcdrpc.StatusRequest())
    members = c.clusterstub.MemberList(etcdrpc.MemberListRequest())
    assert [m.ID for m in members.members] == [status.header.member_id]
    assert status.leader == status.header.member_id
    assert members.header.cluster_id == status.header.cluster_id


def hashkv(cluster, *args):
    [entry] = ctl_json(cluster, "endpoint", "hashkv", *args)
    return entry["HashKV"]


def test_hashkv_is_a_function_of_history(server):
    """What a consistency checker relies on (the values themselves are the server's
    business): the same history gives the same hash, a write changes it, HashKV at an
    old revision equals the hash taken when that revision was the head, and
    compact_revision is -1 until a compaction, then the compaction point."""
    kv = server.client().kvstub
    kv.Put(etcdrpc.PutRequest(key=b"a", value=b"1"))
    first = hashkv(server)
    assert first["compact_revision"] == -1
    assert hashkv(server)["hash"] == first["hash"]
    rev_first = first["header"]["revision"]
    kv.Put(etcdrpc.PutRequest(key=b"a", value=b"2"))
    second = hashkv(server)
    assert second["hash"] != first["hash"]
    assert hashkv(server, "--rev", str(rev_first))["hash"] == first["hash"]
    kv.Compact(etcdrpc.CompactionRequest(revision=rev_first, physical=True))
    after = hashkv(server)
    assert after["compact_revision"] == rev_first


def test_snapshot_save(server):
    """`etcdctl snapshot save` (the usual backup command) succeeds and writes a file.
    (Whether `snapshot status/restore` can read it depends on the file format: etcd's is
    a bbolt database; that is a design decision, not checked here.)"""
    server.etcdctl("put", "k", "v")
    path = server.workdir / "backup.db"
    r = server.etcdctl("snapshot", "save", str(path))
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == f"Snapshot saved at {path}"
    assert path.stat().st_size > 0
