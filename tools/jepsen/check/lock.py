"""Lock checker: fenced writes to the lock's resource, in commit order, carry
non-decreasing fencing tokens (each token is its owner key's create_revision; a later
holder has a larger one), so no two holders' writes interleave.

Commit order is the store's: the resource key's PUT events in final.json (a write's value
names it; ok and info writes both count when the store has them). Without final events,
the ok writes' header revisions are used. Anomalies:
  overlapping-fenced-writes  a write with token T committed after one with a larger token
  phantom-write              the store holds a resource value no fenced write wrote
  duplicate-token            two acquisitions got the same token for different owner keys
"""

from .ops import norm
from .result import Anomalies, nothing, outcome


def check(history):
    writes = history.of("lock", ("fenced-write",))
    acquires = [op for op in history.of("lock", ("acquire",)) if op.type == "ok"]
    if not writes and not acquires:
        return nothing("no lock operations")
    a = Anomalies()
    by_token = {}
    for op in acquires:
        res = op.result or {}
        token = res.get("revision")
        if token:
            other = by_token.setdefault(token, op)
            if (other is not op and (other.result or {}).get("key") != res.get("key")):
                a.add("duplicate-token", f"token {token} given to two owner keys",
                      [other, op])
    by_value = {norm((op.value or {}).get("value")): op for op in writes}
    resources = {op.key for op in writes}
    events = (history.final or {}).get("events")
    committed = []        # (revision, op)
    if events is not None:
        for e in events:
            if e["key"] not in resources or e["type"] != "PUT":
                continue
            op = by_value.get(norm(e["value"]))
            if op is None or op.type == "fail":
                a.add("phantom-write", f"the store holds {e['key']} = {e['value']!r} at "
                      f"revision {e['revision']}, which no fenced write wrote"
                      + (" (its write failed)" if op else ""), [op] if op else [], event=e)
                continue
            committed.append((e["revision"], op))
        source = "final.json events"
        if (history.final or {}).get("events_complete") is False:
            # The store's events stop early: later ok writes by their header revisions.
            horizon = max((e["revision"] for e in events), default=0)
            committed += [(op.revision, op) for op in writes
                          if op.type == "ok" and isinstance(op.revision, int)
                          and op.revision > horizon]
            source += f" up to revision {horizon}, then header revisions"
    else:
        committed = [(op.revision, op) for op in writes
                     if op.type == "ok" and isinstance(op.revision, int)]
        source = "ok writes' header revisions"
    committed.sort(key=lambda x: x[0])
    top = None            # (token, revision, op) of the largest token committed so far
    for rev, op in committed:
        token = op.value["token"]
        if top is not None and token < top[0]:
            a.add("overlapping-fenced-writes", f"a write fenced by token {token} committed "
                  f"at revision {rev}, after one fenced by the larger token {top[0]} at "
                  f"revision {top[1]}: two holders' writes interleave", [top[2], op])
        if top is None or token > top[0]:
            top = (token, rev, op)
    n_tokens = len({op.value["token"] for _, op in committed})
    return outcome(a, f"{len(acquires)} acquisitions, {len(writes)} fenced writes, "
                   f"{len(committed)} committed under {n_tokens} tokens (order from "
                   f"{source})")
