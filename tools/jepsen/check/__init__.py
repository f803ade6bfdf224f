"""Checkers of a fault-harness run: check_run(run_dir) -> Result.

Reads the run's history.jsonl and final.json (tools/jepsen/check/ops.py) and runs every
check of CHECKS, each in its own module. A check returns {"valid", "details"}; one with
nothing to check (no ops of its workload) says so and is valid; one that crashes is
INVALID with the traceback in its details. The run is valid only if every check is.
"""

import time
import traceback

from . import (append, availability, durable, hashkv, lease, linearizable, lock, monotonic,
               reads, watch)
from .ops import History, load



def check_history_itself(history):
    """A run with no client operation at all checked nothing: invalid, not vacuously valid
    (e.g. the driver broke before its clients started)."""
    n = len(history.ops)
    unfinished = sum(1 for op in history.ops if op.complete is None)
    if n == 0:
        return {"valid": False, "details": {"summary": "no client operations in the history"}}
    return {"valid": True, "details": {
        "summary": f"{n} operations, {len(history.nemesis)} nemesis events, "
                   f"{len(history.singles)} other events; {unfinished} never completed "
                   f"(taken as info)"}}


# name -> check(history) -> {"valid": bool, "details": dict}
CHECKS = {
    "history": check_history_itself,
    "linearizable": linearizable.check,
    "append": append.check,
    "watch": watch.check,
    "lease": lease.check,
    "lock": lock.check,
    "durable": durable.check,
    "revision-monotonic": monotonic.check,
    "reads-at-revision": reads.check,
    "hashkv": hashkv.check,
    "availability": availability.check_availability,
    "convergence": availability.check_convergence,
}


class Result:
    """The verdict on a run: valid only if every check is valid."""

    def __init__(self, checks, history=None):
        self.checks = checks
        self.history = history
        self.valid = all(c["valid"] for c in checks.values())

    def to_json(self):
        return {"valid": self.valid, "checks": self.checks}

    def anomaly_types(self, name):
        """The anomaly types a check found (for tests and reports)."""
        return sorted(self.checks[name]["details"].get("anomaly_counts", {}))

    def __repr__(self):
        bad = [n for n, c in self.checks.items() if not c["valid"]]
        return f"Result(valid={self.valid}, invalid={bad})"


def check_history(history, only=None, **options):
    """Run the checks (all, or those named in `only`) on a History.

    options: linearizable_step_budget, linearizable_memo_budget."""
    checks = {}
    for name, fn in CHECKS.items():
        if only is not None and name not in only:
            continue
        kwargs = {}
        if name == "linearizable":
            for opt in ("step_budget", "memo_budget"):
                if "linearizable_" + opt in options:
                    kwargs[opt] = options["linearizable_" + opt]
        t0 = time.monotonic()
        try:
            res = fn(history, **kwargs)
        except Exception:  # a checker bug must not pass a run
            res = {"valid": False,
                   "details": {"summary": "the checker crashed: " +
                               traceback.format_exc().strip().splitlines()[-1],
                               "traceback": traceback.format_exc()}}
        res["details"]["seconds"] = round(time.monotonic() - t0, 3)
        checks[name] = res
    return Result(checks, history)


def check_run(run_dir, only=None, **options):
    """Check the run in run_dir (history.jsonl, final.json)."""
    history = load(run_dir)
    result = check_history(history, only, **options)
    if history.notes:
        for c in result.checks.values():
            c["details"].setdefault("notes", []).extend(history.notes)
    return result


__all__ = ["CHECKS", "History", "Result", "check_history", "check_run", "load"]
