"""Durability: every acknowledged write is in the store at the end.

Checked against final.json (taken after healing) and, when the driver took one, against
final.json's "after_kill_all" (a second final state taken after killing every member at
once and restarting them; same shape: "kv" and/or "events"). Acknowledged writes:
register write / cas, watch-writer write / delete, lease put, lock fenced-write (a PUT, or
DELETE, event with that key and value must exist), and append transactions (each appended
element must be in the key's final list). Anomalies: lost-write, lost-delete, lost-append,
and lost-after-kill-all (an event of the first final state missing from the second).
"""

from .append import parse_list
from .ops import norm
from .result import Anomalies, invalid, nothing, outcome


def acknowledged(history):
    """(puts [(key, value text, op)], deletes [(key, revision, op)], appends [(key, elem,
    op)]) of every ok operation that wrote."""
    puts, deletes, appends = [], [], []
    for op in history.ops:
        if op.type != "ok":
            continue
        w, f = op.workload, op.f
        if f == "write" and w in ("register", "watch"):
            puts.append((op.key, norm(op.value), op))
        elif f == "cas" and w == "register":
            puts.append((op.key, norm(op.value[1]), op))
        elif f == "put" and w == "lease":
            puts.append((op.key, norm(op.value), op))
        elif f == "fenced-write" and w == "lock":
            puts.append((op.key, norm((op.value or {}).get("value")), op))
        elif f == "delete" and w == "watch" and op.field("deleted"):
            deletes.append((op.key, op.revision, op))
        elif f == "txn" and w == "append":
            for mf, k, v in op.value or []:
                if mf == "append":
                    appends.append((k, v, op))
    return puts, deletes, appends


def _check_state(label, state, puts, deletes, appends, a):
    events = state.get("events")
    if state.get("events_complete") is False:
        label += " (whose events are incomplete: the driver's watch did not reach the end)"
    kv = state.get("kv")
    checked = 0
    if events is not None:
        put_set = {(e["key"], norm(e.get("value"))) for e in events if e["type"] == "PUT"}
        del_set = {(e["key"], e["revision"]) for e in events if e["type"] == "DELETE"}
        del_keys = {e["key"] for e in events if e["type"] == "DELETE"}
        for key, value, op in puts:
            checked += 1
            if (key, value) not in put_set:
                a.add("lost-write", f"{label}: acknowledged {op.f} of {key} = {value} is not "
                      f"in the store's events", [op])
        for key, rev, op in deletes:
            checked += 1
            if ((key, rev) not in del_set) if isinstance(rev, int) else (key not in del_keys):
                a.add("lost-delete", f"{label}: acknowledged delete of {key} (revision "
                      f"{rev}) is not in the store's events", [op])
    lists = None
    if kv is not None:
        lists = {x["key"]: x.get("value") for x in kv}
    elif events is not None:
        lists = {}
        for e in events:
            lists[e["key"]] = e.get("value") if e["type"] == "PUT" else None
    if lists is not None:
        parsed = {}
        for key, elem, op in appends:
            checked += 1
            if key not in parsed:
                try:
                    parsed[key] = set(parse_list(lists.get(key)))
                except ValueError:
                    parsed[key] = set()
            if elem not in parsed[key]:
                a.add("lost-append", f"{label}: acknowledged append of {elem} to {key} is "
                      f"not in its final list", [op])
    return checked, events is not None or kv is not None


def check(history):
    puts, deletes, appends = acknowledged(history)
    n = len(puts) + len(deletes) + len(appends)
    final = history.final
    if final is None:
        if n:
            return invalid(f"{n} acknowledged writes but no final.json to find them in")
        return nothing("no acknowledged writes and no final.json")
    if n == 0 and not final.get("after_kill_all"):
        return nothing("no acknowledged writes")
    a = Anomalies()
    checked, usable = _check_state("final", final, puts, deletes, appends, a)
    if not usable:
        return invalid("final.json has neither kv nor events")
    summary = f"{n} acknowledged writes, {checked} checked in the final state"
    after = final.get("after_kill_all")
    if after:
        checked2, _ = _check_state("after kill-all", after, puts, deletes, appends, a)
        summary += f", {checked2} after killing every member"
        if final.get("events") is not None and after.get("events") is not None:
            have = {(e["revision"], e["key"], e["type"], norm(e.get("value")))
                    for e in after["events"]}
            for e in final["events"]:
                if (e["revision"], e["key"], e["type"], norm(e.get("value"))) not in have:
                    a.add("lost-after-kill-all", f"event {e['type']} {e['key']} @"
                          f"{e['revision']} was in the store before killing every member "
                          f"and is not after", event=e)
    else:
        summary += " (no after_kill_all state)"
    return outcome(a, summary)
