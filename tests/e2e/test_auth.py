"""Authentication and RBAC as etcdctl and raw gRPC clients see them: users, roles,
permissions on keys and prefixes, auth enable/disable, and the errors (exit codes,
messages, gRPC codes) for a missing user, a wrong password and a denied permission.
Golden transcripts against etcd.
"""

import grpc
from etcd3 import etcdrpc

from transcript import check_golden


def ctl_auth_scenario(t):
    t.ctl("user add root", "user", "add", "root", "--new-user-password", "rootpw")
    t.ctl("user add alice", "user", "add", "alice", "--new-user-password", "alicepw")
    t.ctl("role add app", "role", "add", "app")
    t.ctl("grant readwrite app/ prefix", "role", "grant-permission", "app", "readwrite",
          "app/", "--prefix")
    t.ctl("grant read on shared", "role", "grant-permission", "app", "read", "shared")
    t.ctl("grant role app to alice", "user", "grant-role", "alice", "app")
    t.ctl("user list", "user", "list")
    t.ctl("role list", "role", "list")
    t.ctl("role get app", "role", "get", "app")
    t.ctl("user get alice", "user", "get", "alice")
    t.ctl("put shared before auth", "put", "shared", "s0")
    t.ctl("auth enable", "auth", "enable")
    t.ctl("put without a user", "put", "x", "1")
    t.ctl("put with a wrong password", "--user", "root:wrong", "put", "x", "1")
    t.ctl("put as root", "--user", "root:rootpw", "put", "x", "1")
    t.ctl("alice: put inside her prefix", "--user", "alice:alicepw", "put", "app/1", "v")
    t.ctl("alice: put outside", "--user", "alice:alicepw", "put", "x", "2")
    t.ctl("alice: read shared", "--user", "alice:alicepw", "get", "shared")
    t.ctl("alice: write shared (read only)", "--user", "alice:alicepw", "put", "shared", "s")
    t.ctl("alice: read her prefix", "--user", "alice:alicepw", "get", "app/", "--prefix")
    t.ctl("alice: read everything", "--user", "alice:alicepw", "get", "", "--prefix")
    t.ctl("alice: txn touching x", "--user", "alice:alicepw", "txn",
          stdin="\nput app/2 v\nget x\n\n\n")
    t.ctl("alice: user list (admin only)", "--user", "alice:alicepw", "user", "list")

    # Raw gRPC: the codes behind those messages.
    c = t.cluster.client()
    auth, kv = etcdrpc.AuthStub(c.channel), c.kvstub
    t.rpc("raw: put without a token", lambda: kv.Put(etcdrpc.PutRequest(key=b"x", value=b"1")))
    t.rpc("raw: authenticate, wrong password", lambda: auth.Authenticate(
        etcdrpc.AuthenticateRequest(name="alice", password="nope")))
    t.rpc("raw: authenticate, unknown user", lambda: auth.Authenticate(
        etcdrpc.AuthenticateRequest(name="bob", password="x")))
    token = auth.Authenticate(etcdrpc.AuthenticateRequest(name="alice",
                                                          password="alicepw")).token
    t.note("raw: alice gets a token", {"has_token": bool(token)})
    meta = [("token", token)]
    t.rpc("raw: alice puts outside her prefix", lambda: kv.Put(
        etcdrpc.PutRequest(key=b"x", value=b"1"), metadata=meta))
    t.rpc("raw: alice puts inside", lambda: kv.Put(
        etcdrpc.PutRequest(key=b"app/3", value=b"1"), metadata=meta))
    t.rpc("raw: a made-up token", lambda: kv.Put(
        etcdrpc.PutRequest(key=b"app/4", value=b"1"), metadata=[("token", "made.up")]))

    t.ctl("revoke alice's role", "--user", "root:rootpw", "user", "revoke-role", "alice", "app")
    t.ctl("alice: put inside after revoke", "--user", "alice:alicepw", "put", "app/1", "w")
    t.ctl("auth disable", "--user", "root:rootpw", "auth", "disable")
    t.ctl("put without a user again", "put", "x", "3")
    t.ctl("state", "get", "", "--prefix")
    t.ctl("user delete alice", "user", "delete", "alice")
    t.ctl("role delete app", "role", "delete", "app")
    t.ctl("user list at the end", "user", "list")


AUTH_SCENARIOS = {"ctl_auth": ([], ctl_auth_scenario)}


def test_golden_auth(server_kind, cluster_factory):
    check_golden(AUTH_SCENARIOS, "ctl_auth", server_kind, cluster_factory)


def test_permission_denied_is_the_grpc_code(server):
    """Explicit: the code a client's retry logic sees for a denied write."""
    assert server.etcdctl("user", "add", "root", "--new-user-password", "pw").returncode == 0
    assert server.etcdctl("user", "add", "u", "--new-user-password", "pw").returncode == 0
    assert server.etcdctl("auth", "enable").returncode == 0
    c = server.client()
    token = etcdrpc.AuthStub(c.channel).Authenticate(etcdrpc.AuthenticateRequest(name="u", password="pw")).token
    try:
        c.kvstub.Put(etcdrpc.PutRequest(key=b"k", value=b"v"), metadata=[("token", token)])
    except grpc.RpcError as e:
        assert (e.code(), e.details()) == (grpc.StatusCode.PERMISSION_DENIED,
                                           "etcdserver: permission denied")
    else:
        raise AssertionError("a user without roles could write")
