"""HTTP on the client URL, as scripts and HTTP-only clients use it: GET /health (readiness
probes), GET /version, and the v3 JSON gateway (POST /v3/kv/...; e.g. Patroni's etcd3
support speaks it). Gateway answers are compared with etcd's (golden), including the
error bodies {"error", "message", "code"} and the HTTP status.
"""

import base64
import json

from transcript import check_golden, http_request


def b64(s):
    return base64.b64encode(s.encode()).decode()


def test_health(server):
    status, text = http_request(server.members[0].client_url + "/health")
    assert status == 200, status
    assert json.loads(text) == {"health": "true"}


def test_version(server):
    status, text = http_request(server.members[0].client_url + "/version")
    assert status == 200, status
    version = json.loads(text)
    assert set(version) == {"etcdserver", "etcdcluster"}, version
    for v in version.values():
        parts = v.split(".")
        assert len(parts) == 3 and all(p.isdigit() for p in parts), version


def gateway_scenario(t):
    t.http("put a", "/v3/kv/put", {"key": b64("a"), "value": b64("1")})
    t.http("put a again, prev_kv", "/v3/kv/put", {"key": b64("a"), "value": b64("2"),
                                                  "prev_kv": True})
    t.http("put b", "/v3/kv/put", {"key": b64("b"), "value": b64("3")})
    t.http("range a", "/v3/kv/range", {"key": b64("a")})
    t.http("range [a, c) limit 1", "/v3/kv/range", {"key": b64("a"), "range_end": b64("c"),
                                                    "limit": 1})
    t.http("range count_only", "/v3/kv/range", {"key": b64("a"), "range_end": b64("c"),
                                                "count_only": True})
    t.http("range sorted by mod, descending", "/v3/kv/range", {
        "key": b64("a"), "range_end": b64("c"), "sort_order": "DESCEND",
        "sort_target": "MOD"})
    t.http("range missing key", "/v3/kv/range", {"key": b64("zz")})
    t.http("range at revision 2", "/v3/kv/range", {"key": b64("a"), "revision": 2})
    t.http("txn (true)", "/v3/kv/txn", {
        "compare": [{"key": b64("a"), "result": "EQUAL", "target": "VALUE",
                     "value": b64("2")}],
        "success": [{"request_put": {"key": b64("c"), "value": b64("4")}},
                    {"request_range": {"key": b64("c")}}],
        "failure": [{"request_put": {"key": b64("c"), "value": b64("no")}}]})
    t.http("txn (false), camelCase field names", "/v3/kv/txn", {
        "compare": [{"key": b64("a"), "result": "GREATER", "target": "VERSION",
                     "version": 5}],
        "success": [{"requestPut": {"key": b64("c"), "value": b64("yes")}}],
        "failure": [{"requestDeleteRange": {"key": b64("b"), "prevKv": True}}]})
    t.http("deleterange [a, z) prev_kv", "/v3/kv/deleterange", {
        "key": b64("a"), "range_end": b64("z"), "prev_kv": True})
    t.http("compaction at 3", "/v3/kv/compaction", {"revision": 3})
    t.http("error: empty key", "/v3/kv/range", {"key": ""})
    t.http("error: compacted revision", "/v3/kv/range", {"key": b64("a"), "revision": 2})
    t.http("error: future revision", "/v3/kv/range", {"key": b64("a"), "revision": 99})
    t.http("error: duplicate key in txn", "/v3/kv/txn", {"success": [
        {"request_put": {"key": b64("d"), "value": b64("1")}},
        {"request_put": {"key": b64("d"), "value": b64("2")}}]})
    # Malformed JSON: the message is the JSON library's own text; only the code is kept.
    t.http("error: malformed JSON", "/v3/kv/range", b"{bad", keep={"code"})
    t.http("status", "/v3/maintenance/status", {}, keep={"header"})
    t.http("unknown path", "/v3/kv/nope", {"key": b64("a")}, keep={})


HTTP_SCENARIOS = {"gateway": ([], gateway_scenario)}


def test_golden_gateway(server_kind, cluster_factory):
    check_golden(HTTP_SCENARIOS, "gateway", server_kind, cluster_factory)
