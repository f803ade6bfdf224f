"""Availability and convergence around fault windows.

A fault window runs from a nemesis `start` to the next `stop` of the same nemesis (or the
end of the history). For each window: ops completed in it by type, the longest stretch
without an acknowledged write (register/watch write or delete, cas, lease put, lock
fenced write, append txn), and the time from the fault to the first acknowledged write.

availability is INVALID when, after a leader kill (nemesis "kill-leader", or a start
whose description says "killed_leader": true), no write was acknowledged within
LEADER_KILL_S seconds (unless the history ended sooner: then it says so), and when a
heal reports that members did not come back ("ready": false in the stop's description).

convergence: the driver logs `converged` {"seconds": s} after each heal (time until every
member served a read at the revision of a marker write made after the heal; seconds null:
it did not happen in time). INVALID when any is null or > CONVERGE_S, or a heal has none.

The two time limits (LEADER_KILL_S, CONVERGE_S) are kvd's targets. On the reference etcd
(final.json "kind": "etcd") a window over a limit is reported in the details
("over_limit") but does not fail the run: etcd 3.4 runs without pre-vote, and its
survivors of a leader kill sometimes split their votes for several terms (4.65 s seen),
and it rejoins a wiped member only through a full snapshot (14 s seen). Members that do
not come back, or never converge, fail the run on both servers.
"""

import bisect

from .durable import acknowledged
from .ops import seconds
from .result import Anomalies, nothing, outcome

LEADER_KILL_S = 3.0
CONVERGE_S = 10.0


def windows(history):
    """Fault windows: [{"nemesis", "start", "stop" (ns), "start_value", "stop_value"}]."""
    out = []
    open_ = {}
    for ev in history.nemesis:
        v = ev.get("value") if isinstance(ev.get("value"), dict) else {}
        name = v.get("nemesis", "?")
        if ev.get("f") == "start":
            w = {"nemesis": name, "start": ev.get("time", 0), "stop": None,
                 "start_value": v, "stop_value": None}
            out.append(w)
            open_.setdefault(name, []).append(w)
        elif ev.get("f") == "stop" and open_.get(name):
            w = open_[name].pop(0)
            w["stop"] = ev.get("time", 0)
            w["stop_value"] = v
    for w in out:
        w["open"] = w["stop"] is None
        if w["stop"] is None:
            w["stop"] = history.end_time
    return out


def is_leader_kill(w):
    return w["nemesis"] == "kill-leader" or bool(w["start_value"].get("killed_leader"))


def write_times(history):
    puts, deletes, appends = acknowledged(history)
    ops = {id(op): op for _, _, op in puts + deletes + appends}
    return sorted(op.complete_time for op in ops.values())


def window_stats(history, w, writes, completions=None):
    """Numbers of one fault window (see the module docstring). completions: sorted
    (completion time, type) of every op (computed if not given)."""
    t0, t1 = w["start"], w["stop"]
    if completions is None:
        completions = _completions(history)
    counts = {}
    lo = bisect.bisect_left(completions, (t0, ""))
    hi = bisect.bisect_right(completions, (t1, "~"))
    for _, type_ in completions[lo:hi]:
        counts[type_] = counts.get(type_, 0) + 1
    i = bisect.bisect_left(writes, t0)
    j = bisect.bisect_right(writes, t1)
    points = [t0] + writes[i:j] + [t1]
    gap = max(b - a for a, b in zip(points, points[1:]))
    first = writes[i] if i < len(writes) else None
    return {"nemesis": w["nemesis"], "start_s": seconds(t0), "stop_s": seconds(t1),
            "open": w["open"], "ops": counts, "ok_writes": j - i,
            "longest_without_write_s": round(gap / 1e9, 3),
            "first_write_after_s": None if first is None else round((first - t0) / 1e9, 3),
            "targets": w["start_value"].get("targets"),
            "error": w["start_value"].get("error")}


def _completions(history):
    return sorted((op.complete_time, op.type) for op in history.ops
                  if op.complete_time is not None)


def limits_enforced(history):
    """Whether the time limits fail the run: on kvd (and when the server is unknown)."""
    return (history.final or {}).get("kind") != "etcd"


def _over_limit(history, a, over, kind, text, **fields):
    """A time limit missed: an anomaly where limits are enforced, else only reported."""
    if limits_enforced(history):
        a.add(kind, text, **fields)
    else:
        over.append(text)


def check_availability(history):
    ws = windows(history)
    writes = write_times(history)
    completions = _completions(history)
    if not ws:
        return nothing(f"no fault windows ({len(writes)} acknowledged writes)")
    a = Anomalies()
    over = []
    stats = []
    for w in ws:
        s = window_stats(history, w, writes, completions)
        stats.append(s)
        stop = w["stop_value"] or {}
        if stop.get("ready") is False:
            a.add("member-not-recovered", f"after {w['nemesis']} healed at {s['stop_s']} s, "
                  f"members did not serve again: {stop.get('errors')}", window=s)
        if is_leader_kill(w) and not s.get("error"):
            first = s["first_write_after_s"]
            remaining = (history.end_time - w["start"]) / 1e9
            if first is None and remaining < LEADER_KILL_S:
                s["note"] = f"history ended {remaining:.1f} s after the leader kill"
            elif first is None:
                a.add("no-write-after-leader-kill",
                      f"leader kill at {s['start_s']} s (targets {s['targets']}): no "
                      f"acknowledged write afterwards", window=s)
            elif first > LEADER_KILL_S:
                _over_limit(history, a, over, "no-write-after-leader-kill",
                            f"leader kill at {s['start_s']} s (targets {s['targets']}): "
                            f"first acknowledged write after {first} s "
                            f"(limit {LEADER_KILL_S} s)", window=s)
    kills = [s["first_write_after_s"] for w, s in zip(ws, stats) if is_leader_kill(w)]
    summary = f"{len(ws)} fault windows"
    if kills:
        known = [k for k in kills if k is not None]
        summary += (f"; after {len(kills)} leader kills the first write came after "
                    + (f"max {max(known)} s" if known else "none"))
    if over:
        summary += f"; {len(over)} over the limit (reported only: the server is etcd)"
    return outcome(a, summary, windows=stats, over_limit=over)


def check_convergence(history):
    heals = [ev for ev in history.nemesis if ev.get("f") == "stop"]
    conv = [ev for ev in history.nemesis if ev.get("f") == "converged"]
    if not heals and not conv:
        return nothing("no heals")
    a = Anomalies()
    over = []
    secs = []
    for ev in conv:
        v = ev.get("value") or {}
        s = v.get("seconds")
        text = (f"after the heal before {seconds(ev.get('time'))} s the members did not "
                f"converge within {CONVERGE_S} s: {v}")
        if s is None:
            a.add("not-converged", text)
        elif s > CONVERGE_S:
            _over_limit(history, a, over, "not-converged", text)
        else:
            secs.append(s)
    # Every heal is followed by its convergence measurement before the next heal.
    order = [ev for ev in history.nemesis if ev.get("f") in ("stop", "converged")]
    for ev, nxt in zip(order, order[1:] + [None]):
        if ev.get("f") == "stop" and (nxt is None or nxt.get("f") != "converged"):
            a.add("convergence-missing", f"heal of {(ev.get('value') or {}).get('nemesis')}"
                  f" at {seconds(ev.get('time'))} s has no convergence measurement")
    summary = f"{len(heals)} heals, {len(conv)} measured"
    if secs:
        summary += f", max {max(secs)} s"
    if over:
        summary += f"; {len(over)} over the limit (reported only: the server is etcd)"
    return outcome(a, summary, seconds=secs, over_limit=over)
