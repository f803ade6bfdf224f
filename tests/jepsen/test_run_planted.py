"""The harness can fail: kvd started with a planted bug (--kvd-plant-bug, test-only) must be
reported invalid by the check that is there to catch that bug, within a short run.

  local_reads  linearizable reads served from local state without ReadIndex, under
               partitions: a member cut off from the majority answers stale reads, which
               the linearizability checker must find.
  no_fsync     the raft log written without fsync, under kill -9 with the un-fsynced data
               dropped (faultfs): acknowledged writes vanish, which the durability check
               (every acknowledged write present at the end) must find.
"""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from test_run import run_driver, server_args  # noqa: E402
from tools.jepsen import check  # noqa: E402


def assert_caught(out, code, output, checks):
    assert code == 1, f"a run with a planted bug was not reported invalid (exit {code})\n" \
                      f"{output[-6000:]}"
    result = check.check_run(str(out))
    assert not result.valid
    caught = [name for name in checks if not result.checks[name]["valid"]]
    assert caught, (f"invalid, but not by {checks}: " +
                    str({n: c["details"].get("summary") for n, c in result.checks.items()
                         if not c["valid"]}))
    for name in caught:
        summary = str(result.checks[name]["details"].get("summary", ""))
        assert "checker crashed" not in summary, summary


def test_local_reads(tmp_path):
    out = tmp_path / "run"
    code, output = run_driver(out, *server_args("kvd"), "--plant-bug", "local-reads",
                              "--time-limit", "45", "--seed", "11", "--workload", "register",
                              "--nemesis", "partition-half,partition-leader", "--netns",
                              "--concurrency", "8")
    assert_caught(out, code, output, ["linearizable"])


def test_no_fsync(tmp_path):
    out = tmp_path / "run"
    code, output = run_driver(out, *server_args("kvd"), "--plant-bug", "no-fsync",
                              "--time-limit", "45", "--seed", "12",
                              "--workload", "register,append", "--nemesis", "lost-writes",
                              "--no-netns", "--concurrency", "8")
    assert_caught(out, code, output, ["durable"])
