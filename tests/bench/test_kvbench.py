"""kvbench end to end: every workload runs for about a second against one real member
(the reference etcd, then kvd) and must print one JSON object of the documented shape,
with operations done and no errors. Timings are reported by kvbench, never asserted here.

Servers come from the end-to-end suite's harness (tests/e2e/harness.py): loopback, ports
picked at run time, killed at teardown. KVBENCH_BIN names the binary (default
build/bin/kvbench); KVD_BIN and ETCD_BIN as in the e2e suite.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
import harness  # noqa: E402

KVBENCH_BIN = os.environ.get("KVBENCH_BIN",
                             str(harness.REPO_ROOT / "build" / "bin" / "kvbench"))
RUN_TIMEOUT_S = 60

# Small, quick runs of every workload; the flags are the documented CLI.
WORKLOADS = {
    "put": ["--clients=8", "--conns=2", "--key-space=100", "--val-size=64"],
    "put_two_threads": ["--clients=8", "--conns=3", "--threads=2"],
    "put_grpc_channel": ["--clients=8", "--conns=2", "--direct=false"],
    "put_txn_batches": ["--clients=4", "--total=50", "--puts-per-txn=20", "--sequential-keys",
                        "--key-space=1000", "--key-prefix=/kvbench-bulk/"],
    "put_sequential_total": ["--clients=4", "--total=200", "--sequential-keys"],
    "range_point": ["--clients=8", "--key-space=200", "--consistency=l"],
    "range_prefix": ["--clients=4", "--key-space=200", "--consistency=s", "--prefix",
                     "--limit=50"],
    "txn": ["--clients=8", "--hot-keys=4"],
    "watch": ["--watchers=20", "--watch-streams=4", "--watch-keys=4", "--rate=200",
              "--clients=2", "--idle-watchers=10"],
    "lease": ["--clients=4", "--lease-streams=2", "--keepalives-per-lease=3", "--ttl=10"],
    "kubernetes": ["--clients=8", "--k8s-objects=10", "--k8s-page=7", "--k8s-watchers=3",
                   "--watch-streams=2", "--k8s-progress-interval=200ms",
                   "--compact-interval=400ms", "--ttl=10"],
}

LATENCY_FIELDS = {"p50", "p90", "p99", "p999", "max", "mean"}
TOP_FIELDS = {"workload", "endpoints", "conns", "clients", "threads", "elapsed_s",
              "headline", "ops", "ops_per_s", "latency_ms", "ops_total", "errors",
              "errors_by_code", "generator_cpu_s", "generator_cpu_us_per_op", "drained",
              "operations"}


@pytest.fixture(scope="module", params=["etcd", "kvd"])
def member(request):
    path = harness.server_binary(request.param)
    if not os.access(path, os.X_OK):
        pytest.fail(f"{request.param} binary not found: {path}", pytrace=False)
    if not os.access(KVBENCH_BIN, os.X_OK):
        pytest.fail(f"kvbench binary not found: {KVBENCH_BIN}", pytrace=False)
    cluster = harness.Cluster(request.param, size=1)
    try:
        cluster.start()
        yield cluster
    finally:
        print(cluster.log_tails())
        cluster.close()


def run_kvbench(workload, endpoints, *flags):
    argv = [KVBENCH_BIN, workload, "--endpoints=" + ",".join(endpoints), "--json",
            "--duration=1s", "--timeout=5s", *flags]
    return subprocess.run(argv, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)


def count_keys(cluster, prefix):
    client = cluster.client()
    return sum(1 for _ in client.get_prefix(prefix, keys_only=True))


def check_latency(lat):
    assert set(lat) == LATENCY_FIELDS
    assert 0 <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["p999"] <= lat["max"]


@pytest.mark.parametrize("case", sorted(WORKLOADS))
def test_workload(member, case):
    workload = case.split("_")[0]
    proc = run_kvbench(workload, member.endpoints, *WORKLOADS[case])
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1, proc.stdout  # one JSON object and nothing else on stdout
    report = json.loads(lines[0])

    assert TOP_FIELDS <= set(report), TOP_FIELDS - set(report)
    assert report["workload"] == workload
    assert report["endpoints"] == member.endpoints
    assert report["ops"] > 0 and report["ops_total"] >= report["ops"]
    assert report["errors"] == 0 and report["errors_by_code"] == {}, report["errors_by_code"]
    assert report["drained"] is True
    assert report["generator_cpu_s"] > 0 and report["generator_cpu_us_per_op"] > 0
    check_latency(report["latency_ms"])
    assert report["headline"] in report["operations"]
    assert report["operations"][report["headline"]]["ops"] == report["ops"]
    for name, row in report["operations"].items():
        assert {"ops", "errors", "ops_per_s", "latency_ms", "errors_by_code"} <= set(row), name
        assert row["errors"] == 0, (name, row)
        check_latency(row["latency_ms"])

    extra = report.get(workload, {})
    if case == "put_sequential_total":
        assert report["ops"] == 200
    if case == "put_txn_batches":
        assert report["ops"] == 50
        assert count_keys(member, "/kvbench-bulk/") == 50 * 20  # every key of every txn
    if workload == "txn":
        assert extra["increments"] == report["ops"]
        assert extra["lost_updates"] == 0 and extra["counter_sum"] == extra["increments"]
        assert extra["retries"] <= extra["conflicts"]
        # Every answered Txn either incremented or failed its compare.
        assert report["operations"]["cas.txn"]["ops"] == extra["increments"] + extra["conflicts"]
    if workload == "watch":
        assert extra["watchers_created"] == 20 + 10
        assert report["operations"]["put"]["ops"] > 0
        assert extra["events_expected"] > 0
        assert extra["events_received"] == extra["events_expected"]
        assert report["ops"] == extra["events_received"]
    if workload == "lease":
        assert report["operations"]["keepalive"]["ops"] > 0
        assert report["operations"]["revoke"]["ops"] > 0
    if workload == "kubernetes":
        ops = report["operations"]
        for name in ("create", "update", "list", "event", "lease", "watch_event"):
            assert ops[name]["ops"] > 0, name
        assert extra["list_pages"] >= ops["list"]["ops"]
        assert extra["compactions"] > 0


def test_unreachable_endpoint_exits_3():
    port = harness.free_ports(1)[0]  # nothing listens there
    proc = run_kvbench("put", [f"127.0.0.1:{port}"], "--dial-timeout=500ms")
    assert proc.returncode == 3, proc.stderr
    assert "unreachable" in proc.stderr
    assert proc.stdout == ""


def test_unknown_workload_is_a_usage_error():
    proc = subprocess.run([KVBENCH_BIN, "nosuch"], capture_output=True, text=True,
                          timeout=RUN_TIMEOUT_S)
    assert proc.returncode == 2
    assert "unknown workload" in proc.stderr
