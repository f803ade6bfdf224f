"""Revision monotonicity: the response header revision a client sees never decreases.

Per process (a client; it keeps one id until an op ends info), over every completion that
carries a `revision` (ok, and fail when a response came back), in history order. A watch
stream is checked on its own (its responses and progress notifications). LeaseKeepAlive
is left out: etcd fills its header from the local member, which may lag the one the
client used before. Anomaly: revision-decreased, with the two ops.
"""

from .ops import event_describe
from .result import Anomalies, nothing, outcome
from .watch import UNORDERED_FS


def check(history):
    a = Anomalies()
    last = {}
    seen = 0
    processes = set()
    for ev in history.events:
        p = ev.get("process")
        rev = ev.get("revision")
        f = ev.get("f") or ""
        if (p == "nemesis" or ev.get("type") not in ("ok", "fail")
                or not isinstance(rev, int) or isinstance(rev, bool) or f in UNORDERED_FS
                or ev.get("serializable")):
            continue
        if f == "watch-start":
            last.pop(("watch", p), None)
            continue
        key = ("watch", p) if f.startswith("watch-") else p
        seen += 1
        processes.add(p)
        prev = last.get(key)
        if prev is not None and rev < prev.get("revision"):
            a.add("revision-decreased", f"process {p} saw revision {prev['revision']} then "
                  f"{rev}", [event_describe(prev) | {"f": prev.get("f")},
                             event_describe(ev)])
        if prev is None or rev >= prev.get("revision"):
            last[key] = ev
    if not seen:
        return nothing("no completions with a header revision")
    return outcome(a, f"{seen} header revisions seen by {len(processes)} processes")
