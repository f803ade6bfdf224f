"""Tests of check_run, its command line and the report (tools/jepsen/check/__init__.py,
__main__.py, tools/jepsen/report.py) on generated run directories. No server needed."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent / "histories"))
import hist  # noqa: E402
from tools.jepsen import check, report  # noqa: E402


def valid_run(tmp_path, seed=1):
    """A run dir with register + append ops, fault windows and a consistent final state."""
    b = hist.register_history(seed, keys=2, ops_per_key=300, concurrency=6)
    ab, kv = hist.append_history(seed, txns=300)
    for ev in ab.events:            # same timeline, other processes
        ev = dict(ev, process=ev["process"] + 1000, op=ev["op"] + 10 ** 6)
        b.events.append(ev)
    b.nemesis(100, "start", {"nemesis": "kill-leader", "targets": ["n1"]})
    b.nemesis(300, "stop", {"nemesis": "kill-leader", "targets": ["n1"]})
    b.nemesis(350, "converged", {"seconds": 0.2, "revision": 9})
    b.nemesis(400, "start", {"nemesis": "partition-half", "targets": ["n2"]})
    b.nemesis(600, "stop", {"nemesis": "partition-half"})
    b.nemesis(650, "converged", {"seconds": 0.4, "revision": 10})
    # The store's events: every acknowledged register write (values name them).
    rev = iter(range(2, 10 ** 6))
    events = [{"revision": next(rev), "type": "PUT", "key": e["key"], "value": str(v),
               "create_revision": 2, "version": 1, "lease": 0}
              for e in b.events if e.get("workload") == "register" and e["type"] == "ok"
              and e["f"] in ("write", "cas")
              for v in [e["value"] if e["f"] == "write" else e["value"][1]]]
    members = {n: {"hashkv": {"hash": 77, "revision": 50, "compact_revision": 0},
                   "revision": 50} for n in ("n1", "n2", "n3")}
    kv = kv + [{"key": k, "value": str(v), "create_revision": 2, "mod_revision": 3,
                "version": 1, "lease": 0} for k, v in b.final_state.items()]
    final = {"prefix": "jepsen", "kind": "kvd", "members": members, "kv": kv,
             "events": events, "leases": {}}
    return b.save(str(tmp_path / "run"), final)


def test_check_run_valid_and_report(tmp_path):
    run_dir = valid_run(tmp_path)
    result = check.check_run(run_dir)
    assert result.valid, [c["details"]["summary"] for c in result.checks.values()
                          if not c["valid"]]
    assert set(result.checks) == set(check.CHECKS)
    assert "nothing to check" in result.checks["lease"]["details"]["summary"]
    summary, timeline = report.write_report(run_dir, result)
    text = open(summary).read()
    assert text.startswith("verdict: VALID")
    for name in check.CHECKS:
        assert f"PASS  {name}" in text
    assert "kill-leader" in text and "longest without a write" in text
    page = open(timeline).read()
    assert page.count("<svg") == 1 and "partition-half" in page
    assert page.count("<rect") > 600          # one bar per op, at least
    assert "latency of ok operations" in page
    json.dumps(result.to_json())              # JSON-able


def test_invalid_run_report_lists_the_anomaly(tmp_path):
    b = hist.Builder()
    b.write(0, 10, 0, "jepsen/r/1", 1)
    b.write(20, 30, 0, "jepsen/r/1", 2)
    b.read(40, 50, 1, "jepsen/r/1", 1)
    run_dir = b.save(str(tmp_path / "run"), {"events": hist.events_of(
        [(2, "PUT", "jepsen/r/1", 1, 0), (3, "PUT", "jepsen/r/1", 2, 0)])})
    result = check.check_run(run_dir)
    assert not result.valid
    assert result.anomaly_types("linearizable") == ["nonlinearizable"]
    summary, _ = report.write_report(run_dir, result)
    text = open(summary).read()
    assert text.startswith("verdict: INVALID")
    assert "FAIL  linearizable" in text
    assert "[linearizable] nonlinearizable" in text
    assert "p1 0.04-0.05s ok read jepsen/r/1 null -> 1" in text
    page = open(os.path.join(run_dir, "timeline.html")).read()
    assert page.count('stroke="#000" stroke-width="1.5"') == 2   # write 2, the read


def test_a_crashing_checker_is_invalid(tmp_path, monkeypatch):
    run_dir = valid_run(tmp_path)

    def boom(history):
        raise RuntimeError("checker bug")
    monkeypatch.setitem(check.CHECKS, "hashkv", boom)
    result = check.check_run(run_dir)
    assert not result.valid
    d = result.checks["hashkv"]["details"]
    assert "checker bug" in d["summary"] and "Traceback" in d["traceback"]
    assert "checker crashed" in report.summary_text(result)


def test_cut_short_last_line_is_tolerated(tmp_path):
    run_dir = valid_run(tmp_path)
    with open(os.path.join(run_dir, "history.jsonl"), "a") as f:
        f.write('{"index": 99999, "ti')
    result = check.check_run(run_dir, only=["linearizable"])
    assert result.valid
    assert "cut short" in result.checks["linearizable"]["details"]["notes"][0]


def test_command_line_exit_codes(tmp_path):
    good = valid_run(tmp_path / "good")
    p = subprocess.run([sys.executable, "-m", "tools.jepsen.check", good, "--report"],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.startswith("verdict: VALID")
    assert os.path.exists(os.path.join(good, "timeline.html"))
    b = hist.Builder()
    b.write(0, 10, 0, "jepsen/r/1", 1)
    b.read(20, 30, 1, "jepsen/r/1", None)
    bad = b.save(str(tmp_path / "bad"), {"events": []})
    p = subprocess.run([sys.executable, "-m", "tools.jepsen.check", bad], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "FAIL  linearizable" in p.stdout and "FAIL  durable" in p.stdout


FIXTURES = sorted(p.parent for p in (Path(__file__).resolve().parent / "histories").glob(
    "*/expect.json"))


@pytest.mark.parametrize("fixture", FIXTURES, ids=[p.name for p in FIXTURES])
def test_fixture_histories(fixture):
    """Small run directories written out in full (history.jsonl, final.json), each with the
    verdict it must get (expect.json): examples of the format a person can read."""
    expect = json.loads((fixture / "expect.json").read_text())
    result = check.check_run(str(fixture), only=["linearizable", "append", "watch", "lease",
                                                 "lock", "durable"])
    assert result.valid == expect["valid"], report.summary_text(result)
    if not expect["valid"]:
        assert result.anomaly_types(expect["check"]) == expect["anomalies"], \
            report.summary_text(result)


def test_empty_history_is_invalid(tmp_path):
    (tmp_path / "history.jsonl").write_text("")
    result = check.check_run(str(tmp_path))
    assert not result.valid
    assert [n for n, c in result.checks.items() if not c["valid"]] == ["history"]
