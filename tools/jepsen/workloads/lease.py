"""Lease workload: short leases, keys attached to them, keep-alives, revokes, expiries.

Each client keeps a few leases of its own (TTL 2-4 s). Steps: `grant` (value ttl -> ok
value lease id), `put` (key `<prefix>/l/<n>`, unique int value, `lease`), `keepalive`
(`lease` -> ok value remaining TTL, 0 when the lease is gone), `revoke` (`lease`) and
`read` (key -> ok value, `lease`, `mod_revision`). Leases not kept alive expire on their
own. Checked: a key is never read under a lease that was dead at the read's revision, and
no key of a dead lease remains at the end.
"""

from ..client import Fail
from . import Workload

KEYS = 6
TTLS = (2, 3, 4)
MAX_LEASES = 3


class Lease(Workload):
    name = "lease"

    def step(self, w):
        leases = w.state.setdefault("leases", [])
        roll = w.rng.random()
        if not leases or (roll < 0.15 and len(leases) < MAX_LEASES):
            self.grant(w, leases)
        elif roll < 0.45:
            key = self.ctx.key("l", w.rng.randrange(KEYS))
            lease = w.rng.choice(leases)
            value = self.ctx.next_value()

            def put():
                resp = w.client.put(key.encode(), str(value).encode(), lease=lease)
                return {"revision": resp.header.revision}
            w.op("put", put, key=key, value=value, lease=lease)
        elif roll < 0.6:
            lease = w.rng.choice(leases)

            def keepalive():
                resp = w.client.lease_keepalive(lease)
                if resp.TTL <= 0:
                    leases.remove(lease)
                return {"value": resp.TTL, "revision": resp.header.revision}
            w.op("keepalive", keepalive, lease=lease, value=None)
        elif roll < 0.7:
            lease = w.rng.choice(leases)
            leases.remove(lease)

            def revoke():
                resp = w.client.lease_revoke(lease)
                return {"revision": resp.header.revision}
            w.op("revoke", revoke, lease=lease, value=None)
        else:
            key = self.ctx.key("l", w.rng.randrange(KEYS))

            def read():
                resp = w.client.range(key.encode())
                if not resp.kvs:
                    return {"value": None, "lease": 0, "mod_revision": 0,
                            "revision": resp.header.revision}
                kv = resp.kvs[0]
                return {"value": int(kv.value), "lease": kv.lease,
                        "mod_revision": kv.mod_revision, "revision": resp.header.revision}
            w.op("read", read, key=key, value=None)

    def grant(self, w, leases):
        ttl = w.rng.choice(TTLS)

        def grant():
            resp = w.client.lease_grant(ttl)
            if resp.error:
                raise Fail(resp.error)
            leases.append(resp.ID)
            return {"value": resp.ID, "ttl": resp.TTL, "revision": resp.header.revision}
        w.op("grant", grant, value=ttl)
