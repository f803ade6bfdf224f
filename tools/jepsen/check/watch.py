"""Watch checker: what each watcher received against the store's committed history.

A watcher (history field `watcher`, else its process) is a series of streams, each opened
by a `watch-start` {key, range_end, start_revision} and re-opened after a break from the
last revision seen + 1. Its `watch-events` responses, concatenated over its streams, must
be exactly final.json's "events" restricted to its key range from its first start
revision - up to the highest revision it received or was told of by a progress
notification (events after that may simply not have arrived before the run ended).
Anomalies:
  gap             an event of the range missing although a later one arrived
  duplicate       an event received twice
  reorder         an event received after a later one (or after a progress notification
                  covering its revision)
  torn-revision   one revision's events split across responses, or only some of them
                  received
  mismatch        an event whose type/value/create_revision/version/lease differ from the
                  store's
  phantom-event   an event the store never committed (not in final.json's events)
  out-of-range    an event outside the watched range or below the start revision
  ahead-of-store  a watcher received revision R (an event or a progress notification), and
                  a linearizable operation invoked after that returned a header revision < R
"""

import bisect

from .ops import event_describe, seconds
from .result import Anomalies, invalid, nothing, outcome

_FIELDS = ("type", "value", "create_revision", "version", "lease")
# Completions whose header revision is not a linearizable store revision: LeaseKeepAlive's
# header is the (possibly lagging) local member's.
UNORDERED_FS = ("keepalive",)


def in_range(key, start, range_end):
    if not range_end:
        return key == start
    if range_end == "\0":
        return key >= start
    return start <= key < range_end


def _streams(history):
    """watcher -> [stream], a stream being {"start": ev, "responses": [ev], "progress":
    [ev], "end": ev | None}; consecutive streams of a watcher over the same range are
    merged (a re-watch continues the same sequence)."""
    watchers = {}
    for ev in history.events:
        f = ev.get("f") or ""
        if not f.startswith("watch-") or ev.get("type") == "invoke":
            continue
        w = ev.get("watcher", ev.get("process"))
        streams = watchers.setdefault(w, [])
        if f == "watch-start":
            rng = (ev.get("key"), ev.get("range_end"))
            if streams and streams[-1]["range"] == rng:
                streams[-1]["starts"].append(ev)
            else:
                streams.append({"range": rng, "starts": [ev], "items": []})
        elif streams:
            streams[-1]["items"].append(ev)
    return watchers


def check(history):
    watchers = _streams(history)
    if not watchers:
        return nothing("no watchers")
    if not history.final or history.final.get("events") is None:
        return invalid("final.json has no events to compare the watchers with")
    final_events = history.final["events"]
    # When the driver's own watch did not reach the end (events_complete false), events
    # after the last one it got cannot be judged.
    horizon = None
    if history.final.get("events_complete") is False:
        horizon = max((e["revision"] for e in final_events), default=0)
    a = Anomalies()
    per = {}
    notices = []      # (time, revision, event) a watcher learnt
    for w, streams in sorted(watchers.items(), key=lambda x: str(x[0])):
        for n, s in enumerate(streams):
            name = f"watcher {w}" + (f" stream {n}" if len(streams) > 1 else "")
            per[name] = _check_stream(name, s, final_events, a, notices, horizon)
    _ahead_of_store(history, notices, a)
    received = sum(p["received"] for p in per.values())
    summary = (f"{len(per)} watch streams, {received} events received, "
               f"{len(final_events)} events in the store")
    if horizon is not None:
        summary += f" (store events incomplete: judged up to revision {horizon})"
    return outcome(a, summary, streams=per)


def _start_revision(start):
    rev = start.get("start_revision") or 0
    if rev > 0:
        return rev
    if start.get("revision"):
        return start["revision"] + 1
    return None


def _check_stream(name, s, final_events, a, notices, horizon=None):
    key, range_end = s["range"]
    first = s["starts"][0]
    start = _start_revision(first)
    if start is None:   # "from now": take the first event received as the start
        revs = [e["revision"] for r in s["items"] if r.get("f") == "watch-events"
                for e in r.get("value") or []]
        start = min(revs) if revs else 1 << 62
    expected = [e for e in final_events
                if e["revision"] >= start and in_range(e["key"], key, range_end)]
    pos = {(e["revision"], e["key"]): i for i, e in enumerate(expected)}
    seen = {}
    resp_of_rev = {}
    max_pos = -1
    max_rev = 0
    last_progress = 0
    count = 0
    for ri, r in enumerate(s["items"]):
        f = r.get("f")
        if f == "watch-progress":
            rev = r.get("revision") or 0
            last_progress = max(last_progress, rev)
            notices.append((r.get("time", 0), rev, r))
            continue
        if f != "watch-events":
            continue
        events = r.get("value") or []
        if events:
            notices.append((r.get("time", 0), max(e["revision"] for e in events), r))
        for e in events:
            count += 1
            rev, k = e["revision"], e["key"]
            if horizon is not None and rev > horizon:
                continue
            where = f"{name}: event {e.get('type')} {k} @{rev}"
            if rev < start or not in_range(k, key, range_end):
                a.add("out-of-range", f"{where} is outside the watched range "
                      f"[{key}, {range_end}) from revision {start}", [event_describe(r)])
                continue
            p = pos.get((rev, k))
            if p is None:
                a.add("phantom-event", f"{where} was never committed (not in the store's "
                      f"events)", [event_describe(r)], event=e)
                continue
            want = expected[p]
            if (e.get("value") == want.get("value") and e.get("type") == want.get("type")
                    and e.get("version") == want.get("version")
                    and e.get("create_revision") == want.get("create_revision")
                    and e.get("lease") == want.get("lease")):
                diff = None       # the common case, without building anything
            else:
                diff = {fld: [e.get(fld), want.get(fld)] for fld in _FIELDS
                        if fld in e and fld in want and e.get(fld) != want.get(fld)}
            if diff:
                a.add("mismatch", f"{where} differs from the store: " + ", ".join(
                    f"{fld} {x!r} != {y!r}" for fld, (x, y) in diff.items()),
                    [event_describe(r)])
            if p in seen:
                a.add("duplicate", f"{where} received twice", [event_describe(r)])
            elif p < max_pos:
                a.add("reorder", f"{where} arrived after the later event "
                      f"{expected[max_pos]['key']} @{expected[max_pos]['revision']}",
                      [event_describe(r)])
            elif rev <= last_progress:
                a.add("reorder", f"{where} arrived after a progress notification at "
                      f"{last_progress}", [event_describe(r)])
            else:
                resp_of_rev.setdefault(rev, set()).add(ri)
            seen.setdefault(p, ri)
            max_pos = max(max_pos, p)
            max_rev = max(max_rev, rev)
    bound = max(max_rev, last_progress)
    missing = [i for i, e in enumerate(expected) if e["revision"] <= bound and i not in seen]
    gaps = []
    for i in missing:
        e = expected[i]
        if e["revision"] in resp_of_rev:
            a.add("torn-revision", f"{name}: revision {e['revision']} arrived without its "
                  f"event {e['type']} {e['key']}", event=e)
        else:
            gaps.append(e)
    # Report gaps as runs of consecutive missing revisions.
    run = []
    for e in gaps + [None]:
        if run and (e is None or e["revision"] - run[-1]["revision"] > 1):
            a.add("gap", f"{name}: missed {len(run)} events, revisions "
                  f"{run[0]['revision']}..{run[-1]['revision']} (keys "
                  f"{sorted({x['key'] for x in run})[:5]}) though it received later ones",
                  first=run[0], last=run[-1])
            run = []
        if e is not None:
            run.append(e)
    for rev, resps in sorted(resp_of_rev.items()):
        if len(resps) > 1:
            a.add("torn-revision", f"{name}: revision {rev}'s events were split over "
                  f"{len(resps)} responses",
                  [event_describe(s["items"][i]) for i in sorted(resps)])
    return {"start_revision": start, "range": [key, range_end], "received": count,
            "expected_up_to_last_seen": sum(1 for e in expected if e["revision"] <= bound),
            "not_received_at_end": sum(1 for e in expected if e["revision"] > bound),
            "last_revision": bound}


def _ahead_of_store(history, notices, a):
    if not notices:
        return
    notices.sort(key=lambda x: x[0])
    times = [n[0] for n in notices]
    best = []        # prefix maximum of revisions, with the notice that set it
    for n in notices:
        best.append(n if not best or n[1] > best[-1][1] else best[-1])
    for op in history.ops:
        if (op.type != "ok" or not isinstance(op.revision, int) or op.f in UNORDERED_FS
                or (op.f or "").startswith("watch-") or op.field("serializable")):
            continue
        i = bisect.bisect_left(times, op.invoke_time) - 1
        if i < 0:
            continue
        t, rev, ev = best[i]
        if op.revision < rev:
            a.add("ahead-of-store", f"a watcher had revision {rev} at "
                  f"{seconds(t)} s, and {op.f} invoked later at {seconds(op.invoke_time)} s "
                  f"returned header revision {op.revision}", [event_describe(ev), op])
