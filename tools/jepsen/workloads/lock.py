"""Lock workload: etcd's Lock service (v3lock) with leases, checked with fencing tokens.

A client grants a lease (TTL 3 s, logged as `grant`), then `acquire`s the lock
`<prefix>/lock/l` with it (value: the lock name -> ok value {"key": owner key,
"revision": the owner key's create_revision, the fencing token}). While it believes it
holds the lock it makes 1-3 `fenced-write`s of unique ints to `<prefix>/lock/resource`,
each a Txn(If create_revision(owner key) == token Then put): ok if applied, fail if the
compare failed (the lock was lost). Sometimes it pauses past its lease's TTL first, so the
lock expires under it. Then it `release`s (Unlock, value: owner key) and revokes the lease
(`revoke`). Checked: fenced writes in commit order carry non-decreasing tokens and no two
holders' writes interleave.
"""

from etcd3 import etcdrpc

from ..client import Fail, OpError
from . import Workload

TTL = 3
LOCK_TIMEOUT_S = 5.0
PAUSE_CHANCE = 0.1


class Lock(Workload):
    name = "lock"

    def step(self, w):
        name = self.ctx.key("lock", "l")
        resource = self.ctx.key("lock", "resource")
        grant = w.op("grant", lambda: self._grant(w), value=TTL)
        if grant["type"] != "ok":
            return
        lease = grant["value"]
        acquired = w.op("acquire", lambda: self._acquire(w, name, lease),
                        value=name, lease=lease)
        if acquired["type"] == "ok" and acquired["value"]["revision"]:
            owner = acquired["value"]["key"]
            token = acquired["value"]["revision"]
            for _ in range(w.rng.randint(1, 3)):
                if w.rng.random() < PAUSE_CHANCE:
                    self.ctx.stop.wait(TTL + 1.5)  # the lease expires: the lock is lost
                value = self.ctx.next_value()
                w.op("fenced-write", lambda v=value: self._fenced(w, owner, token, resource, v),
                     key=resource, value={"token": token, "value": value})
            w.op("release", lambda: self._release(w, owner), value=owner)
        w.op("revoke", lambda: self._revoke(w, lease), lease=lease, value=None)

    def _grant(self, w):
        resp = w.client.lease_grant(TTL)
        if resp.error:
            raise Fail(resp.error)
        return {"value": resp.ID, "ttl": resp.TTL, "revision": resp.header.revision}

    def _acquire(self, w, name, lease):
        resp = w.client.lock(name.encode(), lease, timeout=LOCK_TIMEOUT_S)
        key = resp.key
        token = None
        try:
            got = w.client.range(key)
            if got.kvs:
                token = got.kvs[0].create_revision
        except OpError:
            pass  # held, but its token is unknown: no fenced writes this time
        return {"value": {"key": key.decode(), "revision": token},
                "revision": resp.header.revision}

    def _fenced(self, w, owner, token, resource, value):
        cmp = etcdrpc.Compare(key=owner.encode(), target=etcdrpc.Compare.CREATE,
                              result=etcdrpc.Compare.EQUAL, create_revision=token)
        put = etcdrpc.RequestOp(request_put=etcdrpc.PutRequest(
            key=resource.encode(), value=str(value).encode()))
        resp = w.client.txn([cmp], [put])
        if not resp.succeeded:
            raise Fail("fence: owner key gone")
        return {"revision": resp.header.revision}

    def _release(self, w, owner):
        resp = w.client.unlock(owner.encode())
        return {"revision": resp.header.revision}

    def _revoke(self, w, lease):
        resp = w.client.lease_revoke(lease)
        return {"revision": resp.header.revision}
