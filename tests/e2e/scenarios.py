"""Scripted sequences for the golden comparison (test_compat.py).

Each scenario drives a FRESH single-member cluster through a Transcript and must not
depend on anything but the server's answers: a revision used as input to a later step
(e.g. `--rev`) is taken from an earlier answer of the same server, never hard-coded.
The test runs the scenario on a fresh etcd and on the server under test and requires
the two transcripts to be equal, step by step.

SCENARIOS: name -> (server flags, function(transcript)).
"""

from etcd3 import etcdrpc

SORT_TARGETS = ["KEY", "CREATE", "MODIFY", "VALUE", "VERSION"]
ORDERS = ["ASCEND", "DESCEND"]

# Small limits so the limit errors are cheap to provoke.
LIMIT_FLAGS = ["--max-request-bytes", "10000", "--max-txn-ops", "4"]


def rev_of(answer):
    """Header revision of an etcdctl JSON answer."""
    assert answer is not None, "an earlier step failed; see the transcript"
    return answer["header"]["revision"]


def txn_script(compares=(), success=(), failure=()):
    """etcdctl txn's non-interactive stdin: compares, blank, success, blank, failure, blank."""
    return "\n".join([*compares, "", *success, "", *failure, "", ""])


# --- etcdctl -------------------------------------------------------------------------

def ctl_put_get_del(t):
    t.ctl("put a=1", "put", "a", "1")
    rev_b = rev_of(t.ctl("put b=2", "put", "b", "2"))
    t.ctl("put a=11 --prev-kv", "put", "a", "11", "--prev-kv")
    t.ctl("put a=11 again --prev-kv (same value still a new revision)",
          "put", "a", "11", "--prev-kv")
    for k, v in [("c/1", "x"), ("c/3", "z"), ("c/2", "y"), ("d", "4"), ("c", "cc"),
                 ("c0", "after-prefix"), ("e", "")]:
        t.ctl(f"put {k}={v}", "put", k, v)
    t.ctl("get a", "get", "a")
    t.ctl("get a --consistency=s", "get", "a", "--consistency=s")
    t.ctl("get a --rev=<rev of put b> (historical value)", "get", "a", "--rev", str(rev_b))
    t.ctl("get e (empty value)", "get", "e")
    t.ctl("get missing", "get", "nope")
    t.ctl("get c/ --prefix", "get", "c/", "--prefix")
    t.ctl("get c --prefix", "get", "c", "--prefix")
    t.ctl("get c/ --prefix --limit 2 (more, full count)", "get", "c/", "--prefix",
          "--limit", "2")
    t.ctl("get c/ --prefix --limit 3 (exactly all)", "get", "c/", "--prefix", "--limit", "3")
    t.ctl("get c/2 --from-key", "get", "c/2", "--from-key")
    t.ctl("get b --from-key --limit 3", "get", "b", "--from-key", "--limit", "3")
    t.ctl("get [b, c/3)", "get", "b", "c/3")
    t.ctl("get [d, a) (range_end < key)", "get", "d", "a")
    t.ctl("get [a, a) (range_end == key)", "get", "a", "a")
    t.ctl("get '' --prefix (everything)", "get", "", "--prefix")
    t.ctl("get '' --from-key (everything)", "get", "", "--from-key")
    t.ctl("get c/ --prefix --keys-only", "get", "c/", "--prefix", "--keys-only")
    t.ctl("put c/2=yy", "put", "c/2", "yy")
    t.ctl("put c/2=yyy", "put", "c/2", "yyy")
    t.ctl("put c/1=x2", "put", "c/1", "x2")
    for target in SORT_TARGETS:
        for order in ORDERS:
            t.ctl(f"get c --prefix sort {target} {order}", "get", "c", "--prefix",
                  "--sort-by", target, "--order", order)
    t.ctl("get c --prefix --order DESCEND (no sort-by)", "get", "c", "--prefix",
          "--order", "DESCEND")
    t.ctl("get c --prefix --sort-by VERSION (no order)", "get", "c", "--prefix",
          "--sort-by", "VERSION")
    t.ctl("get '' --prefix sort MODIFY DESCEND --limit 2", "get", "", "--prefix",
          "--sort-by", "MODIFY", "--order", "DESCEND", "--limit", "2")
    t.ctl("get c/ --prefix sort VALUE --keys-only", "get", "c/", "--prefix",
          "--sort-by", "VALUE", "--keys-only")
    rev_before_deletes = rev_of(t.ctl("get a (revision before deletes)", "get", "a"))
    t.ctl("del c/1 --prev-kv", "del", "c/1", "--prev-kv")
    t.ctl("del c/ --prefix --prev-kv", "del", "c/", "--prefix", "--prev-kv")
    t.ctl("del c/ --prefix again (nothing left)", "del", "c/", "--prefix")
    t.ctl("del missing (revision unchanged)", "del", "nope")
    t.ctl("del [a, b) --prev-kv", "del", "a", "b", "--prev-kv")
    t.ctl("del [d, a) (range_end < key)", "del", "d", "a")
    t.ctl("del c0 --from-key --prev-kv", "del", "c0", "--from-key", "--prev-kv")
    t.ctl("get '' --prefix (what is left)", "get", "", "--prefix")
    t.ctl("get c/ --prefix --rev=<before deletes>", "get", "c/", "--prefix",
          "--rev", str(rev_before_deletes))
    t.ctl("get c/2 --rev=<before deletes>", "get", "c/2", "--rev", str(rev_before_deletes))
    t.ctl("put a=again (new create_revision, version 1)", "put", "a", "again")
    t.ctl("get a", "get", "a")
    current = rev_of(t.ctl("get b", "get", "b"))
    t.ctl("get a --rev=<current>", "get", "a", "--rev", str(current))
    t.ctl("get a --rev=<current+1> (future)", "get", "a", "--rev", str(current + 1))
    t.ctl("get '' (empty key)", "get", "")
    t.ctl("put '' v (empty key)", "put", "", "v")


def ctl_txn(t):
    t.ctl("put k1=v1", "put", "k1", "v1")
    t.ctl("put k2=v2", "put", "k2", "v2")
    t.ctl("put k2=v2b", "put", "k2", "v2b")
    k1 = t.ctl("get k1", "get", "k1")["kvs"][0]
    k2 = t.ctl("get k2", "get", "k2")["kvs"][0]
    c1, m2 = k1["create_revision"], k2["mod_revision"]

    def txn(label, compares, success=("put t yes",), failure=("put t no",)):
        t.ctl(label, "txn", stdin=txn_script(compares, success, failure))

    txn("value = (true)", ['val("k1") = "v1"'], ["put t yes", "get k1", "del nothere"])
    txn("value = (false)", ['val("k1") = "nope"'], ["put t yes"], ["put t no", "get t"])
    txn("value != ", ['val("k1") != "v1"'])
    txn("value > <", ['val("k1") > "v0"', 'val("k1") < "v2"'])
    txn("value > (false)", ['val("k1") > "v1"'])
    txn("version =", ['ver("k2") = "2"'])
    txn("version >", ['ver("k2") > "1"'])
    txn("version <", ['ver("k2") < "2"'])
    txn("version !=", ['ver("k2") != "2"'])
    txn("create =", [f'c("k1") = "{c1}"'])
    txn("create >", [f'c("k1") > "{c1 - 1}"'])
    txn("create <", [f'c("k1") < "{c1}"'])
    txn("create !=", [f'c("k2") != "{c1}"'])
    txn("mod =", [f'm("k2") = "{m2}"'])
    txn("mod >", [f'm("k2") > "{m2}"'])
    txn("mod <", [f'm("k2") < "{m2 + 1}"'])
    txn("mod !=", [f'm("k2") != "{m2}"'])
    txn("all targets together", ['val("k1") = "v1"', 'ver("k2") = "2"',
                                 f'c("k1") = "{c1}"', f'm("k2") = "{m2}"'])
    txn("one of several false", ['val("k1") = "v1"', 'ver("k2") = "7"'])
    txn("missing key: version/create/mod compare as 0",
        ['ver("missing") = "0"', 'c("missing") = "0"', 'm("missing") = "0"'])
    txn("missing key: value compare is false even for ''", ['val("missing") = ""'])
    txn("no compares: success branch", [], ["put t empty-compare"])
    txn("reads see the txn's own earlier writes", [],
        ["put x 1", "put y 2", "get x", "get y"])
    txn("get/del with ranges inside a txn", [],
        ["get k --prefix", "get k1 k3", "del x --prev-kv", "get x"])
    txn("failure branch with several ops", ['val("k1") = "zzz"'], ["put t yes"],
        ["put f1 a", "put f2 b", "del f3", "get f --prefix"])
    txn("duplicate key in the branch that does not run is still an error",
        ['val("k1") = "v1"'], ["put t yes"], ["put f1 a", "del f1"])
    txn("empty failure, false compare", ['val("k1") = "zzz"'], ["put t yes"], [])
    t.ctl("get '' --prefix (final state)", "get", "", "--prefix")


def ctl_compaction(t):
    t.ctl("put a=1", "put", "a", "1")
    t.ctl("put a=2", "put", "a", "2")
    mid = rev_of(t.ctl("put a=3", "put", "a", "3"))
    t.ctl("put b=1", "put", "b", "1")
    t.ctl("del a", "del", "a")
    t.ctl("put a=4", "put", "a", "4")
    t.ctl("get a --rev=<mid-1>", "get", "a", "--rev", str(mid - 1))
    t.ctl("compaction <mid>", "compaction", str(mid))
    t.ctl("get a --rev=<mid-1> (compacted)", "get", "a", "--rev", str(mid - 1))
    t.ctl("get a --rev=1 (compacted)", "get", "a", "--rev", "1")
    t.ctl("get a --rev=<mid> (the compaction point stays readable)",
          "get", "a", "--rev", str(mid))
    t.ctl("get '' --prefix --rev=<mid+1>", "get", "", "--prefix", "--rev", str(mid + 1))
    current = rev_of(t.ctl("get a", "get", "a"))
    t.ctl("get a --rev=<current+1> (future)", "get", "a", "--rev", str(current + 1))
    t.ctl("compaction <mid> again", "compaction", str(mid))
    t.ctl("compaction <mid-1> (older)", "compaction", str(mid - 1))
    t.ctl("compaction <current+5> (future)", "compaction", str(current + 5))
    t.ctl("compaction <current> --physical", "compaction", str(current), "--physical")
    t.ctl("get a --rev=<current>", "get", "a", "--rev", str(current))
    t.ctl("get a --rev=<current-1> (compacted)", "get", "a", "--rev", str(current - 1))
    t.ctl("put c=1 (revisions continue)", "put", "c", "1")
    t.ctl("get '' --prefix", "get", "", "--prefix")


def ctl_errors(t):
    t.ctl("put k=v", "put", "k", "v")
    t.ctl("get '' (empty key)", "get", "")
    t.ctl("put '' (empty key)", "put", "", "v")
    t.ctl("del '' (empty key)", "del", "")
    t.ctl("put value of 1.5 x max-request-bytes", "put", "big", "x" * 15000)
    t.ctl("put value of 0.5 x max-request-bytes (fine)", "put", "ok", "x" * 5000)
    t.ctl("txn with 5 ops > max-txn-ops 4", "txn",
          stdin=txn_script([], [f"put t{i} v" for i in range(5)]))
    t.ctl("txn with 4 ops (fine)", "txn", stdin=txn_script([], [f"put t{i} v" for i in range(4)]))
    t.ctl("txn with 5 compares", "txn",
          stdin=txn_script([f'ver("t{i}") = "1"' for i in range(5)], ["put t ok"]))
    t.ctl("txn with 4+4 ops in success and failure (fine: limit is per list)", "txn",
          stdin=txn_script([], [f"put s{i} v" for i in range(4)],
                           [f"put f{i} v" for i in range(4)]))
    t.ctl("txn duplicate put", "txn", stdin=txn_script([], ["put d 1", "put d 2"]))
    t.ctl("txn put + delete of the same key", "txn", stdin=txn_script([], ["put d 1", "del d"]))
    t.ctl("txn put inside a deleted range", "txn",
          stdin=txn_script([], ["put d/1 1", "del d/ --prefix"]))
    t.ctl("txn two deletes of one key (fine)", "txn", stdin=txn_script([], ["del d", "del d"]))
    t.ctl("txn same key in success and failure (fine)", "txn",
          stdin=txn_script([], ["put d 1"], ["put d 2"]))
    current = rev_of(t.ctl("get k", "get", "k"))
    t.ctl("get --rev=<current+1>", "get", "k", "--rev", str(current + 1))
    t.ctl("get '' --prefix", "get", "", "--prefix", "--keys-only")


# --- python etcd3 and raw gRPC -----------------------------------------------------

def py_kv(t):
    c = t.cluster.client()
    kv = c.kvstub
    tx = c.transactions
    t.rpc("put a=1", lambda: c.put("a", "1"))
    t.rpc("put a=2 prev_kv", lambda: c.put("a", "2", prev_kv=True))
    for k in ["c/1", "c/3", "c/2", "c", "d"]:
        t.rpc(f"put {k}", lambda k=k: c.put(k, "v-" + k))
    t.rpc("put c/2 again", lambda: c.put("c/2", "v2"))
    t.rpc("get a", lambda: c.get("a"))
    t.rpc("get missing", lambda: c.get("missing"))
    t.rpc("get_prefix c/", lambda: list(c.get_prefix("c/")))
    t.rpc("get_prefix c/ descend by mod", lambda: list(
        c.get_prefix("c/", sort_order="descend", sort_target="mod")))
    t.rpc("get_prefix c/ ascend by version", lambda: list(
        c.get_prefix("c/", sort_order="ascend", sort_target="version")))
    t.rpc("get_range [a, c/3)", lambda: list(c.get_range("a", "c/3")))
    t.rpc("get_all", lambda: list(c.get_all()))
    t.rpc("put_if_not_exists a (exists)", lambda: c.put_if_not_exists("a", "x"))
    t.rpc("put_if_not_exists n (new)", lambda: c.put_if_not_exists("n", "x"))
    t.rpc("replace a 2->3", lambda: c.replace("a", "2", "3"))
    t.rpc("replace a 2->4 (stale)", lambda: c.replace("a", "2", "4"))
    t.rpc("delete n prev_kv", lambda: c.delete("n", prev_kv=True, return_response=True))
    t.rpc("delete missing", lambda: c.delete("missing"))

    # Raw Range: the forms etcdctl 3.4 does not expose.
    R = etcdrpc.RangeRequest
    t.rpc("count_only c/ prefix", lambda: kv.Range(R(key=b"c/", range_end=b"c0",
                                                     count_only=True)))
    t.rpc("keys_only + limit 1", lambda: kv.Range(R(key=b"c/", range_end=b"c0",
                                                    keys_only=True, limit=1)))
    t.rpc("from-key (range_end \\0)", lambda: kv.Range(R(key=b"c", range_end=b"\0")))
    t.rpc("all keys (key \\0, range_end \\0)", lambda: kv.Range(R(key=b"\0",
                                                                  range_end=b"\0")))
    t.rpc("range_end < key", lambda: kv.Range(R(key=b"d", range_end=b"a")))
    head = kv.Range(R(key=b"a")).header.revision
    t.rpc("min_mod_revision filter", lambda: kv.Range(R(key=b"\0", range_end=b"\0",
                                                        min_mod_revision=head - 1)))
    t.rpc("max_mod_revision filter", lambda: kv.Range(R(key=b"\0", range_end=b"\0",
                                                        max_mod_revision=head - 5)))
    t.rpc("min/max_create_revision filter", lambda: kv.Range(R(
        key=b"\0", range_end=b"\0", min_create_revision=3, max_create_revision=5)))
    t.rpc("serializable + revision", lambda: kv.Range(R(key=b"a", serializable=True,
                                                        revision=head - 3)))
    t.rpc("limit 2 sort VALUE DESCEND", lambda: kv.Range(R(
        key=b"\0", range_end=b"\0", limit=2, sort_order=R.DESCEND, sort_target=R.VALUE)))

    # Raw Put / DeleteRange flags.
    P = etcdrpc.PutRequest
    t.rpc("put ignore_value (keeps value, new revision)",
          lambda: kv.Put(P(key=b"a", ignore_value=True, prev_kv=True)))
    t.rpc("put ignore_value on missing key", lambda: kv.Put(P(key=b"zz", ignore_value=True)))
    t.rpc("put ignore_value with a value", lambda: kv.Put(P(key=b"a", value=b"v",
                                                            ignore_value=True)))
    t.rpc("put lease that does not exist", lambda: kv.Put(P(key=b"a", value=b"v",
                                                            lease=424242)))
    D = etcdrpc.DeleteRangeRequest
    t.rpc("delete from-key c/2 prev_kv", lambda: kv.DeleteRange(D(key=b"c/2",
                                                                  range_end=b"\0",
                                                                  prev_kv=True)))
    t.rpc("get_all after", lambda: list(c.get_all()))

    # etcd3 transactions, including a nested txn.
    t.rpc("transaction value/version/create/mod", lambda: c.transaction(
        compare=[tx.value("a") == "3", tx.version("a") > 1, tx.create("a") < 100,
                 tx.mod("a") != 0],
        success=[tx.put("t", "yes"), tx.get("a")],
        failure=[tx.put("t", "no")]))
    t.rpc("transaction false -> failure", lambda: c.transaction(
        compare=[tx.value("a") == "nope"],
        success=[tx.put("t", "yes")],
        failure=[tx.put("t", "no"), tx.get("t"), tx.delete("d")]))
    t.rpc("nested txn", lambda: c.transaction(
        compare=[tx.version("t") > 0],
        success=[tx.put("outer", "1"),
                 tx.txn(compare=[tx.value("t") == "no"],
                        success=[tx.put("inner", "s"), tx.get("outer")],
                        failure=[tx.put("inner", "f")])],
        failure=[]))
    T, C = etcdrpc.TxnRequest, etcdrpc.Compare
    t.rpc("nested txn, duplicate key across levels", lambda: kv.Txn(T(success=[
        etcdrpc.RequestOp(request_put=P(key=b"x", value=b"1")),
        etcdrpc.RequestOp(request_txn=T(success=[
            etcdrpc.RequestOp(request_put=P(key=b"x", value=b"2"))]))])))
    t.rpc("nested txn, same key in sibling branches (fine)", lambda: kv.Txn(T(success=[
        etcdrpc.RequestOp(request_txn=T(
            success=[etcdrpc.RequestOp(request_put=P(key=b"x", value=b"s"))],
            failure=[etcdrpc.RequestOp(request_put=P(key=b"x", value=b"f"))]))])))
    t.rpc("compare over a key range (all versions > 0)", lambda: kv.Txn(T(
        compare=[C(key=b"c/", range_end=b"c0", target=C.VERSION, result=C.GREATER,
                   version=0)],
        success=[etcdrpc.RequestOp(request_put=P(key=b"rng", value=b"all"))],
        failure=[etcdrpc.RequestOp(request_put=P(key=b"rng", value=b"notall"))])))
    t.rpc("compare value on missing key (always false)", lambda: kv.Txn(T(
        compare=[C(key=b"missing", target=C.VALUE, result=C.NOT_EQUAL, value=b"x")],
        success=[etcdrpc.RequestOp(request_put=P(key=b"mv", value=b"s"))],
        failure=[etcdrpc.RequestOp(request_put=P(key=b"mv", value=b"f"))])))

    # Compaction through the client.
    head = kv.Range(R(key=b"a")).header.revision
    t.rpc("compact head-2", lambda: c.compact(head - 2))
    t.rpc("range at head-3 (compacted)", lambda: kv.Range(R(key=b"a", revision=head - 3)))
    t.rpc("range at head+1 (future)", lambda: kv.Range(R(key=b"a", revision=head + 1)))
    t.rpc("compact head-2 again", lambda: c.compact(head - 2))
    t.rpc("compact head+1 (future)", lambda: c.compact(head + 1))
    t.rpc("compact head physical", lambda: c.compact(head, physical=True))
    t.rpc("get_all final", lambda: list(c.get_all()))


def py_lease(t):
    c = t.cluster.client()
    kv = c.kvstub
    T, C, P = etcdrpc.TxnRequest, etcdrpc.Compare, etcdrpc.PutRequest
    lease = c.lease(600)
    t.note("granted lease", {"lease": lease.id, "ttl": lease.ttl})
    t.rpc("put lk with lease", lambda: c.put("lk", "v", lease=lease))
    t.rpc("put lk2 with lease", lambda: c.put("lk2", "v", lease=lease))
    t.rpc("put plain", lambda: c.put("plain", "v"))
    t.rpc("get lk", lambda: c.get("lk"))

    def cmp_lease(label, key, result, lease_id):
        t.rpc(label, lambda: kv.Txn(T(
            compare=[C(key=key, target=C.LEASE, result=result, lease=lease_id)],
            success=[etcdrpc.RequestOp(request_range=etcdrpc.RangeRequest(key=key))],
            failure=[])))

    cmp_lease("lease = <id> (true)", b"lk", C.EQUAL, lease.id)
    cmp_lease("lease = 0 (false)", b"lk", C.EQUAL, 0)
    cmp_lease("lease != 0 (true)", b"lk", C.NOT_EQUAL, 0)
    cmp_lease("lease > 0 (true)", b"lk", C.GREATER, 0)
    cmp_lease("lease < <id> (false)", b"lk", C.LESS, lease.id)
    cmp_lease("plain key: lease = 0 (true)", b"plain", C.EQUAL, 0)
    cmp_lease("missing key: lease = 0 (true)", b"missing", C.EQUAL, 0)
    t.rpc("put lk ignore_lease keeps the lease", lambda: kv.Put(P(key=b"lk", value=b"v2",
                                                                  ignore_lease=True)))
    t.rpc("put lk2 without lease detaches it", lambda: kv.Put(P(key=b"lk2", value=b"v2")))
    t.rpc("get_all", lambda: list(c.get_all()))
    t.rpc("revoke lease (deletes lk, not lk2)", lambda: c.revoke_lease(lease.id))
    t.rpc("get_all after revoke", lambda: list(c.get_all()))
    t.rpc("put with the revoked lease", lambda: kv.Put(P(key=b"x", value=b"v",
                                                         lease=lease.id)))
    # The same through etcdctl.
    granted = t.ctl("etcdctl lease grant 600", "lease", "grant", "600")
    lease_hex = format(granted["ID"], "x")
    t.ctl("etcdctl put --lease", "put", "el", "v", "--lease", lease_hex)
    t.ctl("etcdctl get el (shows the lease)", "get", "el")
    t.ctl("etcdctl lease revoke", "lease", "revoke", lease_hex)
    t.ctl("etcdctl get el after revoke", "get", "el")


def py_binary_keys_and_big_values(t):
    """Byte-order edge cases (NUL and 0xFF inside and at the end of keys), values with
    every byte, a value near the default --max-request-bytes (1.5 MiB)."""
    import hashlib
    kv = t.cluster.client().kvstub
    R, P, D = etcdrpc.RangeRequest, etcdrpc.PutRequest, etcdrpc.DeleteRangeRequest
    keys = [b"a", b"a\x00", b"a\x00\x00", b"a\x00b", b"a\x01", b"a\xff", b"a\xff\xff",
            b"ab", b"b", b"\x00", b"\x01", b"\xfe\xff", b"\xff", b"\xff\x00", b"\xff\xff"]
    for i, k in enumerate(keys):
        t.rpc(f"put {k!r}", lambda k=k, i=i: kv.Put(P(key=k, value=bytes([i]) * 3)))
    t.rpc("value with every byte", lambda: kv.Put(P(key=b"v", value=bytes(range(256)))))
    t.rpc("get it back", lambda: kv.Range(R(key=b"v")))
    t.rpc("all keys (\\0, \\0)", lambda: kv.Range(R(key=b"\0", range_end=b"\0", keys_only=True)))
    t.rpc("all keys, KEY DESCEND", lambda: kv.Range(R(key=b"\0", range_end=b"\0",
                                                      keys_only=True, sort_order=R.DESCEND,
                                                      sort_target=R.KEY)))
    t.rpc("prefix a -> [a, b)", lambda: kv.Range(R(key=b"a", range_end=b"b", keys_only=True)))
    t.rpc("prefix a\\0 -> [a\\0, a\\1)", lambda: kv.Range(R(key=b"a\x00", range_end=b"a\x01",
                                                             keys_only=True)))
    t.rpc("prefix a\\xff -> [a\\xff, b)", lambda: kv.Range(R(key=b"a\xff", range_end=b"b",
                                                              keys_only=True)))
    t.rpc("prefix \\xff -> from-key \\xff", lambda: kv.Range(R(key=b"\xff", range_end=b"\0",
                                                              keys_only=True)))
    t.rpc("single key as a range [a, a\\0)", lambda: kv.Range(R(key=b"a", range_end=b"a\x00")))
    t.rpc("key \\0 alone", lambda: kv.Range(R(key=b"\x00")))
    t.rpc("keys_only + count_only", lambda: kv.Range(R(key=b"a", range_end=b"b", keys_only=True,
                                                       count_only=True)))
    t.rpc("delete [a\\0, a\\xff) prev_kv", lambda: kv.DeleteRange(D(
        key=b"a\x00", range_end=b"a\xff", prev_kv=True)))
    t.rpc("delete prefix \\xff", lambda: kv.DeleteRange(D(key=b"\xff", range_end=b"\0")))
    t.rpc("what is left", lambda: kv.Range(R(key=b"\0", range_end=b"\0", keys_only=True)))

    big = bytes((i * 7919) % 251 for i in range(1024 * 1024))
    t.rpc("put a 1 MiB value", lambda: kv.Put(P(key=b"big", value=big)))
    got = kv.Range(R(key=b"big")).kvs[0]
    t.note("1 MiB value comes back intact", {
        "sha256": hashlib.sha256(got.value).hexdigest(), "version": got.version,
        "matches": got.value == big})
    t.rpc("keys_only on the big key", lambda: kv.Range(R(key=b"big", keys_only=True)))


def py_many_keys_and_versions(t):
    """Enough keys and versions that a store cannot answer from one small batch."""
    kv = t.cluster.client().kvstub
    R, P, D = etcdrpc.RangeRequest, etcdrpc.PutRequest, etcdrpc.DeleteRangeRequest
    T, Op = etcdrpc.TxnRequest, etcdrpc.RequestOp
    for batch in range(3):
        ops = [Op(request_put=P(key=b"m/%04d" % (batch * 100 + i), value=b"%d" % i))
               for i in range(100)]
        t.rpc(f"txn of 100 puts #{batch}", lambda ops=ops: kv.Txn(T(success=ops)).header)
    revs = []
    for i in range(120):
        revs.append(kv.Put(P(key=b"hot", value=b"v%03d" % i)).header.revision)
    t.note("120 puts of one key: revisions", revs)
    t.rpc("count_only m/", lambda: kv.Range(R(key=b"m/", range_end=b"m0", count_only=True)))
    t.rpc("limit 7 from-key m/0150", lambda: kv.Range(R(key=b"m/0150", range_end=b"\0",
                                                        limit=7, keys_only=True)))
    # Sorting by anything but KEY: etcd's sort is not stable, so keys with EQUAL sort
    # values come back in an order that is an artifact of Go's sort (for more than 12
    # items). The scenario keeps sort values distinct so it tests the contract only.
    order = [(i * 17) % 40 for i in range(40)]  # a fixed permutation of 0..39
    for n, i in enumerate(order):
        for _ in range(1 + i % 3):
            kv.Put(P(key=b"s/%02d" % i, value=b"val-%02d" % ((i * 23) % 40)))
    for target in ["VALUE", "CREATE", "MOD"]:
        for direction in ["ASCEND", "DESCEND"]:
            t.rpc(f"s/ limit 6, {target} {direction}", lambda target=target, d=direction:
                  kv.Range(R(key=b"s/", range_end=b"s0", limit=6,
                             sort_order=getattr(R, d), sort_target=getattr(R, target))))
    t.rpc("m/ limit 5, KEY DESCEND", lambda: kv.Range(R(key=b"m/", range_end=b"m0", limit=5,
                                                        sort_order=R.DESCEND)))
    for r in revs[::37]:
        t.rpc(f"hot at revision {r}", lambda r=r: kv.Range(R(key=b"hot", revision=r)))
    t.rpc("count of m/ at the revision of the 2nd txn",
          lambda: kv.Range(R(key=b"m/", range_end=b"m0", count_only=True, revision=revs[0] - 2)))
    t.rpc("delete m/01 prefix prev_kv", lambda: kv.DeleteRange(D(key=b"m/01", range_end=b"m/02",
                                                                 prev_kv=True)))
    t.rpc("count_only m/ after", lambda: kv.Range(R(key=b"m/", range_end=b"m0", count_only=True)))
    t.rpc("m/01 before the delete", lambda: kv.Range(R(key=b"m/01", range_end=b"m/02",
                                                       count_only=True, revision=revs[-1])))
    t.rpc("compact at the 60th put of hot", lambda: kv.Compact(etcdrpc.CompactionRequest(
        revision=revs[60], physical=True)))
    t.rpc("hot at the compaction point", lambda: kv.Range(R(key=b"hot", revision=revs[60])))
    t.rpc("hot before it", lambda: kv.Range(R(key=b"hot", revision=revs[59])))
    t.rpc("m/ count at the compaction point",
          lambda: kv.Range(R(key=b"m/", range_end=b"m0", count_only=True, revision=revs[60])))
    t.rpc("hot now", lambda: kv.Range(R(key=b"hot")))


def py_unusual_inputs(t):
    """Inputs clients rarely send, where etcd still answers something definite. (Not
    here: sort_target outside the enum, which crashes etcd 3.4.23 - see test_errors.py.)"""
    kv = t.cluster.client().kvstub
    R, P, D = etcdrpc.RangeRequest, etcdrpc.PutRequest, etcdrpc.DeleteRangeRequest
    T, C, Op = etcdrpc.TxnRequest, etcdrpc.Compare, etcdrpc.RequestOp
    t.rpc("compact 0 on a fresh store", lambda: kv.Compact(etcdrpc.CompactionRequest(
        revision=0)))
    t.rpc("compact 1 on a fresh store", lambda: kv.Compact(etcdrpc.CompactionRequest(
        revision=1)))
    t.rpc("range at revision 1 (the compaction point)", lambda: kv.Range(R(key=b"a",
                                                                          revision=1)))
    for i in range(3):
        t.rpc(f"put a{i}", lambda i=i: kv.Put(P(key=b"a%d" % i, value=b"v%d" % (3 - i))))
    rng = dict(key=b"a", range_end=b"b")
    t.rpc("limit -1", lambda: kv.Range(R(limit=-1, **rng)))
    t.rpc("sort_order outside the enum", lambda: kv.Range(R(sort_order=7, **rng)))
    t.rpc("sort_order NONE, sort_target VALUE", lambda: kv.Range(R(
        sort_order=R.NONE, sort_target=R.VALUE, **rng)))
    t.rpc("count is taken before revision filters", lambda: kv.Range(R(
        min_mod_revision=4, max_mod_revision=2, **rng)))
    t.rpc("count_only + limit 1", lambda: kv.Range(R(count_only=True, limit=1, **rng)))
    t.rpc("limit 1 + min_mod_revision", lambda: kv.Range(R(limit=1, min_mod_revision=3,
                                                           **rng)))
    t.rpc("put prev_kv on a new key", lambda: kv.Put(P(key=b"new", value=b"1",
                                                       prev_kv=True)))
    t.rpc("delete prev_kv of nothing", lambda: kv.DeleteRange(D(key=b"zz", prev_kv=True)))
    t.rpc("compare MOD over a range", lambda: kv.Txn(T(compare=[C(
        target=C.MOD, result=C.GREATER, mod_revision=0, **rng)])))
    t.rpc("compare VALUE over a range (one value fails)", lambda: kv.Txn(T(compare=[C(
        target=C.VALUE, result=C.GREATER, value=b"v1", **rng)])))
    t.rpc("compare target outside the enum", lambda: kv.Txn(T(compare=[C(
        key=b"a0", target=9, result=C.EQUAL)])))
    t.rpc("compare result outside the enum", lambda: kv.Txn(T(compare=[C(
        key=b"a0", target=C.VERSION, result=9, version=1)])))
    t.rpc("txn with an empty RequestOp", lambda: kv.Txn(T(success=[Op()])))
    t.rpc("state", lambda: kv.Range(R(key=b"\0", range_end=b"\0")))


def py_paginate_at_a_revision(t):
    """The Kubernetes list pattern: pages of `limit` keys at one fixed revision, the next
    page starting after the last key, while writes land between pages. Every page must
    show the snapshot; the header shows the moving head."""
    kv = t.cluster.client().kvstub
    R, P, D = etcdrpc.RangeRequest, etcdrpc.PutRequest, etcdrpc.DeleteRangeRequest
    T, Op = etcdrpc.TxnRequest, etcdrpc.RequestOp
    for half in range(2):
        ops = [Op(request_put=P(key=b"p/%03d" % i, value=b"v%d" % i))
               for i in range(half * 60, half * 60 + 60)]
        t.rpc(f"txn of 60 puts #{half}", lambda ops=ops: kv.Txn(T(success=ops)).header)
    snapshot = kv.Range(R(key=b"p/", count_only=True)).header.revision
    start, pages = b"p/", 0
    writes = [lambda: kv.Put(P(key=b"p/050", value=b"changed")),
              lambda: kv.DeleteRange(D(key=b"p/100")),
              lambda: kv.Put(P(key=b"p/0995", value=b"new key inside the range")),
              lambda: kv.Compact(etcdrpc.CompactionRequest(revision=snapshot))]
    for pages in range(20):
        page = t.rpc(f"page {pages} at the snapshot", lambda start=start: kv.Range(R(
            key=start, range_end=b"p0", limit=25, revision=snapshot, keys_only=pages % 2 == 1)))
        if page is None or not page.more:
            break
        start = page.kvs[-1].key + b"\x00"
        if pages < len(writes):
            t.rpc(f"write between pages {pages} and {pages + 1}", writes[pages])
    t.rpc("the head now", lambda: kv.Range(R(key=b"p/04", range_end=b"p/06", count_only=True)))
    t.rpc("p/050 and p/0995 now", lambda: kv.Range(R(key=b"p/050", range_end=b"p/0996")))


SCENARIOS = {
    "ctl_put_get_del": ([], ctl_put_get_del),
    "ctl_txn": ([], ctl_txn),
    "ctl_compaction": ([], ctl_compaction),
    "ctl_errors": (LIMIT_FLAGS, ctl_errors),
    "py_kv": ([], py_kv),
    "py_lease": ([], py_lease),
    "py_binary_keys_and_big_values": ([], py_binary_keys_and_big_values),
    "py_many_keys_and_versions": ([], py_many_keys_and_versions),
    "py_unusual_inputs": ([], py_unusual_inputs),
    "py_paginate_at_a_revision": ([], py_paginate_at_a_revision),
}
