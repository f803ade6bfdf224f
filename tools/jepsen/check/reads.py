"""Reads against the store at their own header revision.

A Range (or read-only Txn) is served at one revision and says which in its header: what
it returned must be the store's state at that revision, as final.json's events tell it.
Checked for register reads (value, and mod_revision when given) and the reads of append
transactions (each key's list; a transaction that appended reports its writing Txn's
revision, which compared every touched key with what was read: the reads must be the
state just before it). This does not look at time (the linearizability and
Elle checks do): it catches a read whose header revision does not match what it returned
- e.g. a header taken from a different point than the data, or data that never existed.
Anomaly: read-not-at-revision. Reads above the last revision final.json's events cover
(events_complete false) are not judged.
"""

import bisect

from .append import parse_list
from .ops import norm
from .result import Anomalies, nothing, outcome


class _Store:
    """Each key's value at any revision, from final.json's events."""

    def __init__(self, events):
        self.by_key = {}
        for e in events:
            self.by_key.setdefault(e["key"], []).append(e)
        self.revs = {k: [e["revision"] for e in evs] for k, evs in self.by_key.items()}

    def at(self, key, revision):
        """The event that set key's state at revision (PUT), or None (absent)."""
        evs = self.by_key.get(key)
        if not evs:
            return None
        i = bisect.bisect_right(self.revs[key], revision) - 1
        if i < 0 or evs[i]["type"] != "PUT":
            return None
        return evs[i]


def check(history):
    final = history.final or {}
    events = final.get("events")
    reads = [op for op in history.of("register", ("read",)) if op.type == "ok"]
    txns = [op for op in history.of("append", ("txn",)) if op.type == "ok"
            and any(f == "r" for f, _, _ in op.result or [])]
    if not reads and not txns:
        return nothing("no register reads or append transaction reads")
    if events is None:
        return nothing("final.json has no events")
    horizon = None
    if final.get("events_complete") is False:
        horizon = max((e["revision"] for e in events), default=0)
    store = _Store(events)
    a = Anomalies()
    checked = 0
    for op in reads:
        h = op.revision
        if not isinstance(h, int) or (horizon is not None and h > horizon):
            continue
        checked += 1
        cur = store.at(op.key, h)
        got = norm(op.result)
        want = None if cur is None else norm(cur.get("value"))
        mod = op.field("mod_revision")
        if got != want or (mod and cur is not None and mod != cur["revision"]):
            a.add("read-not-at-revision", f"read of {op.key} returned {got!r}"
                  + (f" (mod_revision {mod})" if mod else "") + f" at header revision {h}; "
                  f"the store then held {want!r}"
                  + (f" (mod_revision {cur['revision']})" if cur else ""), [op])
    for op in txns:
        h = op.revision
        if not isinstance(h, int) or (horizon is not None and h > horizon):
            continue
        if any(f == "append" for f, _, _ in op.result):
            # The header is the writing Txn's, which compared every touched key's
            # mod_revision with the reads': just before it, the keys held what was read.
            h -= 1
        for f, k, v in op.result:
            if f != "r":
                continue
            checked += 1
            cur = store.at(k, h)
            want = parse_list(cur.get("value")) if cur else []
            if list(v or []) != want:
                a.add("read-not-at-revision", f"transaction read {k} = {v} at header "
                      f"revision {h}; the store then held {want}", [op])
    summary = f"{checked} reads compared with the store at their header revision"
    if horizon is not None:
        summary += f" (store events known up to revision {horizon})"
    return outcome(a, summary)
