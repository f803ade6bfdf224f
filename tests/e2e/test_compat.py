"""Case 1 - compatibility: the same requests give the same answers on etcd and on kvd.

Two styles:
  test_golden: each scenario of scenarios.py runs on a fresh etcd (recorded at test time,
    once per session) and on a fresh server of the kind under test; the normalized
    transcripts must be equal step by step. For the etcd side this checks that the
    normalization keeps only deterministic fields (two fresh etcds agree).
  test_*: a few explicit assertions on the data model, readable on their own.
"""

import json

import pytest
from etcd3 import etcdrpc

import harness
import scenarios
from transcript import check_golden

@pytest.mark.parametrize("scenario", sorted(scenarios.SCENARIOS))
def test_golden(scenario, server_kind, cluster_factory):
    check_golden(scenarios.SCENARIOS, scenario, server_kind, cluster_factory)


def ctl_json(server, *args):
    r = server.etcdctl("-w", "json", *args)
    assert r.returncode == 0, f"etcdctl {args}: {r.stderr}"
    return json.loads(r.stdout)


def test_revisions_follow_the_data_model(server):
    """A fresh store is at revision 1; each put is one new revision; versions count puts."""
    start = ctl_json(server, "get", "x")["header"]["revision"]
    assert start == 1
    revs = [ctl_json(server, "put", "x", f"v{i}")["header"]["revision"] for i in range(3)]
    assert revs == [2, 3, 4]
    kv = ctl_json(server, "get", "x")["kvs"][0]
    assert (kv["create_revision"], kv["mod_revision"], kv["version"]) == (2, 4, 3)
    assert harness.b64("v2") == kv["value"]
    # Historical read: the value as of revision 3.
    old = ctl_json(server, "get", "x", "--rev", "3")["kvs"][0]
    assert (old["mod_revision"], old["version"], old["value"]) == (3, 2, harness.b64("v1"))
    # A delete is one revision and resets the version; a delete of nothing is none.
    deleted = ctl_json(server, "del", "x", "--prev-kv")
    assert deleted["header"]["revision"] == 5 and deleted["deleted"] == 1
    assert deleted["prev_kvs"][0]["value"] == harness.b64("v2")
    assert ctl_json(server, "del", "x")["header"]["revision"] == 5
    again = ctl_json(server, "put", "x", "new")
    assert again["header"]["revision"] == 6
    kv = ctl_json(server, "get", "x")["kvs"][0]
    assert (kv["create_revision"], kv["version"]) == (6, 1)


def test_range_forms_and_limits(server):
    for k in ["a", "b", "b/1", "b/2", "c"]:
        ctl_json(server, "put", k, k.upper())
    keys = lambda answer: [harness.b64_decode(kv["key"]) for kv in answer.get("kvs", [])]
    assert keys(ctl_json(server, "get", "b", "--prefix")) == ["b", "b/1", "b/2"]
    assert keys(ctl_json(server, "get", "b/1", "--from-key")) == ["b/1", "b/2", "c"]
    assert keys(ctl_json(server, "get", "a", "b/2")) == ["a", "b", "b/1"]
    limited = ctl_json(server, "get", "", "--prefix", "--limit", "2")
    assert keys(limited) == ["a", "b"] and limited["more"] is True and limited["count"] == 5
    desc = ctl_json(server, "get", "b", "--prefix", "--order", "DESCEND")
    assert keys(desc) == ["b/2", "b/1", "b"]
    reversed_range = ctl_json(server, "get", "c", "a")
    assert "kvs" not in reversed_range and "count" not in reversed_range
    only = server.client().kvstub.Range(etcdrpc.RangeRequest(key=b"b", range_end=b"c",
                                                             count_only=True))
    assert only.count == 3 and len(only.kvs) == 0


def test_txn_compare_and_branches(server):
    c = server.client()
    tx = c.transactions
    c.put("k", "v1")
    c.put("k", "v2")
    ok, responses = c.transaction(
        compare=[tx.value("k") == "v2", tx.version("k") == 2],
        success=[tx.put("k", "v3"), tx.get("k")],
        failure=[tx.put("k", "failed")])
    assert ok is True
    value, meta = responses[1][0]
    assert value == b"v3" and meta.version == 3
    ok, _ = c.transaction(compare=[tx.version("k") < 3], success=[tx.put("k", "no")],
                          failure=[])
    assert ok is False
    assert c.get("k")[0] == b"v3"
