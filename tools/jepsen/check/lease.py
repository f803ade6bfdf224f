"""Lease checker: a key is never visible under a dead lease, and no key of a dead lease
remains at the end.

A lease is dead from its revocation (the revoke's header revision; any workload's revoke)
or its expiry (the revision at which the store deleted a key attached to it without a
client asking, from final.json's events). Anomalies:
  read-under-dead-lease  a read returned a key with lease L at a header revision where the
                         store (final.json's events) had deleted it because L died
  read-mismatch          a read's key/value/lease/mod_revision is not the store's at the
                         read's header revision (a stale or invented read)
  read-after-revoke      a read invoked after L's revoke was acknowledged returned a key
                         under L
  keepalive-after-revoke a keep-alive invoked after L's revoke was acknowledged returned
                         TTL > 0
  put-under-dead-lease   the store committed a put with lease L after L's revocation
  dead-lease-key-remains final.json's kv holds a key of a lease that is dead (revoked, or
                         TimeToLive -1 in final.json's leases)
  revoked-lease-alive    a lease whose revoke was acknowledged still has a TTL at the end
"""

import bisect

from .ops import norm
from .result import Anomalies, nothing, outcome


def _lease_of(op):
    lease = op.field("lease")
    return int(lease) if lease not in (None, "") else None


def check(history):
    lease_ops = history.of("lease")
    if not lease_ops:
        return nothing("no lease operations")
    a = Anomalies()
    final = history.final or {}
    revoked = {}          # lease -> the first acknowledged revoke (by completion time)
    for op in history.ops:
        if op.f == "revoke" and op.type == "ok":
            lease = _lease_of(op)
            if lease is not None and (lease not in revoked or
                                      op.complete_time < revoked[lease].complete_time):
                revoked[lease] = op
    events = final.get("events")
    by_key = {}
    if events is not None:
        for e in events:
            by_key.setdefault(e["key"], []).append(e)
    lease_keys = {op.key for op in lease_ops if op.key is not None}

    # Death revision of each lease: revocation, or the store deleting its key on its own.
    death = {lease: op.revision for lease, op in revoked.items()
             if isinstance(op.revision, int)}
    client_deletes = {(op.key, op.revision) for op in history.ops
                      if op.f == "delete" and op.type == "ok"}
    for k in lease_keys:
        prev = None
        for e in by_key.get(k, []):
            if (e["type"] == "DELETE" and prev is not None and prev.get("lease")
                    and (k, e["revision"]) not in client_deletes):
                lease = int(prev["lease"])
                death[lease] = min(death.get(lease, e["revision"]), e["revision"])
            prev = e

    horizon = None        # the store's events are known up to here (see watch.py)
    if events is not None and final.get("events_complete") is False:
        horizon = max((e["revision"] for e in events), default=0)
    reads = [op for op in lease_ops if op.f == "read" and op.type == "ok"]
    revs_of = {k: [e["revision"] for e in evs] for k, evs in by_key.items()}
    for op in reads:
        lease = _lease_of(op) or 0
        if (events is not None and isinstance(op.revision, int)
                and (horizon is None or op.revision <= horizon)):
            evs = by_key.get(op.key, [])
            i = bisect.bisect_right(revs_of[op.key], op.revision) - 1 if evs else -1
            cur = evs[i] if i >= 0 else None
            live = cur if cur is not None and cur["type"] == "PUT" else None
            if op.result is None:
                if live is not None:
                    a.add("read-mismatch", f"read of {op.key} at revision {op.revision} "
                          f"found nothing; the store had {norm(live['value'])!r}", [op])
            elif (live is None or norm(live["value"]) != norm(op.result)
                  or int(live.get("lease") or 0) != lease
                  or (op.field("mod_revision") and live["revision"]
                      != op.field("mod_revision"))):
                if lease and lease in death and death[lease] <= op.revision:
                    a.add("read-under-dead-lease", f"read of {op.key} at revision "
                          f"{op.revision} returned {op.result!r} under lease {lease}, dead "
                          f"since revision {death[lease]}", [op])
                else:
                    a.add("read-mismatch", f"read of {op.key} at revision {op.revision} "
                          f"returned {op.result!r} (lease {lease}); the store had "
                          f"{_show(live)}", [op])
        if lease and lease in revoked and op.invoke_time > revoked[lease].complete_time \
                and op.result is not None:
            a.add("read-after-revoke", f"read of {op.key} invoked after lease {lease} was "
                  f"revoked returned {op.result!r} under it", [revoked[lease], op])
    for op in lease_ops:
        if op.f != "keepalive" or op.type != "ok":
            continue
        lease = _lease_of(op)
        if (lease in revoked and op.invoke_time > revoked[lease].complete_time
                and isinstance(op.result, int) and op.result > 0):
            a.add("keepalive-after-revoke", f"keep-alive of lease {lease} invoked after its "
                  f"revoke returned TTL {op.result}", [revoked[lease], op])
    if events is not None:
        for e in events:
            lease = int(e.get("lease") or 0)
            if (e["type"] == "PUT" and lease in revoked
                    and isinstance(revoked[lease].revision, int)
                    and e["revision"] > revoked[lease].revision):
                a.add("put-under-dead-lease", f"put of {e['key']} at revision "
                      f"{e['revision']} under lease {lease}, revoked at revision "
                      f"{revoked[lease].revision}", [revoked[lease]], event=e)
    final_leases = {int(k): v for k, v in (final.get("leases") or {}).items()}
    for kv in final.get("kv") or []:
        lease = int(kv.get("lease") or 0)
        if not lease:
            continue
        ttl = (final_leases.get(lease) or {}).get("ttl")
        if lease in revoked or ttl == -1:
            why = "revoked" if lease in revoked else "expired (TimeToLive -1)"
            a.add("dead-lease-key-remains", f"{kv['key']} remains at the end under lease "
                  f"{lease}, {why}", [revoked[lease]] if lease in revoked else [], kv=kv)
    for lease, op in revoked.items():
        ttl = (final_leases.get(lease) or {}).get("ttl")
        if isinstance(ttl, int) and ttl > 0:
            a.add("revoked-lease-alive", f"lease {lease} was revoked but has TTL {ttl} at "
                  f"the end", [op])
    summary = (f"{len(lease_ops)} lease ops, {len(reads)} ok reads, {len(revoked)} leases "
               f"revoked, {len(death)} dead leases known")
    if events is None:
        summary += " (no final events: reads not compared with the store)"
    elif horizon is not None:
        summary += f" (store events incomplete: reads compared up to revision {horizon})"
    return outcome(a, summary)


def _show(e):
    if e is None:
        return "no key"
    return f"{e['value']!r} (lease {e.get('lease')}, mod_revision {e['revision']})"
