"""End-to-end tests of the driver (python3 -m tools.jepsen) on real 3-member clusters.

A 20 s run without faults must be checked valid on kvd and on etcd, with every workload's
operations in the history and a complete final.json (the ids end in [kvd] / [etcd]).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))
from tools.jepsen import history as historylib  # noqa: E402

PYTHON = "/usr/bin/python3"
RUN_TIMEOUT_S = 300


def server_args(kind):
    if kind == "kvd":
        binary = os.environ.get("KVD_BIN", str(REPO_ROOT / "build" / "bin" / "kvd"))
        if not os.access(binary, os.X_OK):
            pytest.fail(f"kvd binary not found: {binary} (set KVD_BIN)", pytrace=False)
        return ["--server", "kvd", "--binary", binary]
    return ["--server", "etcd"]


def run_driver(out, *args):
    """Run the driver; returns (exit code, its output)."""
    proc = subprocess.run([PYTHON, "-m", "tools.jepsen", "--out", str(out), *args],
                          cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=RUN_TIMEOUT_S)
    return proc.returncode, proc.stdout + proc.stderr


# What each workload must have done successfully at least once in a fault-free run.
EXPECTED_OK = {
    "register": {"read", "write", "cas"},
    "append": {"txn"},
    "watch": {"write", "delete", "watch-start", "watch-events"},
    "lease": {"grant", "put", "keepalive", "revoke", "read"},
    "lock": {"grant", "acquire", "fenced-write", "release"},
}


@pytest.mark.parametrize("kind", ["kvd", "etcd"])
def test_fault_free_run_is_valid(kind, tmp_path):
    out = tmp_path / "run"
    code, output = run_driver(out, *server_args(kind), "--time-limit", "20", "--seed", "5",
                              "--nemesis", "none", "--no-netns", "--concurrency", "10")
    assert code == 0, f"driver exit {code}\n{output[-6000:]}"
    assert "seed 5; reproduce:" in output

    events = historylib.read(out / "history.jsonl")
    ok = {}
    for e in events:
        if e["type"] == "ok":
            ok.setdefault(e["workload"], set()).add(e["f"])
    for workload, fs in EXPECTED_OK.items():
        assert fs <= ok.get(workload, set()), (workload, ok.get(workload))
    # invoke/completion pairing: one open op per process at most, completions match
    open_ops = {}
    for e in events:
        if e["process"] == "nemesis" or e["f"].startswith("watch-"):
            continue
        if e["type"] == "invoke":
            assert e["process"] not in open_ops, e
            open_ops[e["process"]] = e["op"]
        else:
            assert open_ops.pop(e["process"]) == e["op"], e

    final = json.loads((out / "final.json").read_text())
    assert final["kind"] == kind and final["events_complete"]
    assert len(final["members"]) == 3
    hashes = {m["hashkv"]["hash"] for m in final["members"].values()}
    assert len(hashes) == 1, final["members"]
    assert final["kv"] and final["events"] and final["leases"]
    # every write a client saw acknowledged is among the final events
    acked = {(e["key"], str(e["value"])) for e in events
             if e["type"] == "ok" and e["f"] in ("write", "put")}
    seen = {(ev["key"], ev["value"]) for ev in final["events"] if ev["type"] == "PUT"}
    assert acked <= seen
    after = final["after_kill_all"]
    assert after["events_complete"] and after["revision"] >= final["revision"]
    assert after["events"][:len(final["events"])] == final["events"]
    assert (out / "summary.txt").exists() and (out / "timeline.html").exists()
