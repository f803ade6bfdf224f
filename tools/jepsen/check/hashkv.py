"""HashKV: after quiescing, every member reports the same revision and the same hash of
its whole key-value history (Maintenance.HashKV) - final.json's "members". Anomalies:
hashkv-mismatch (different hashes at one revision), revision-mismatch (members at
different revisions, so hashes cannot be compared), hashkv-missing (a member gave none).
"""

from .result import Anomalies, nothing, outcome


def check(history):
    members = (history.final or {}).get("members")
    if not members:
        return nothing("no members in final.json")
    a = Anomalies()
    got = {}
    for name, m in sorted(members.items()):
        h = (m or {}).get("hashkv")
        if not h or h.get("hash") is None:
            a.add("hashkv-missing", f"member {name} reported no HashKV"
                  + (f": {m.get('error')}" if isinstance(m, dict) and m.get("error") else ""))
            continue
        got[name] = h
    revs = {name: h.get("revision") for name, h in got.items()}
    if len(set(revs.values())) > 1:
        a.add("revision-mismatch", f"members at different revisions after quiescing: {revs}",
              members=revs)
    else:
        hashes = {name: h["hash"] for name, h in got.items()}
        if len(set(hashes.values())) > 1:
            a.add("hashkv-mismatch", f"HashKV differs at revision "
                  f"{next(iter(revs.values()))}: {hashes}", members=hashes)
    detail = ", ".join(f"{n}: {h['hash']}@{h.get('revision')}" for n, h in got.items())
    return outcome(a, f"{len(members)} members: {detail}")
