"""Register workload: read / write / compare-and-set on a few keys `<prefix>/r/<n>`.

Values are unique ints (so a value names the write that made it). A cas [old, new] is a
Txn comparing the key's mod_revision with the one the client saw `old` at (the same test
as comparing the value, since values are unique); a failed compare is `fail`. Checked per
key for linearizability.
"""

from etcd3 import etcdrpc

from ..client import Fail
from . import Workload

KEYS = 4


class Register(Workload):
    name = "register"

    def step(self, w):
        key = self.ctx.key("r", w.rng.randrange(KEYS))
        seen = w.state.setdefault("seen", {})  # key -> (value, mod_revision) last read
        roll = w.rng.random()
        if roll < 0.4 or (roll >= 0.7 and key not in seen):
            self.read(w, key, seen)
        elif roll < 0.7:
            value = self.ctx.next_value()

            def write():
                resp = w.client.put(key.encode(), str(value).encode())
                seen[key] = (value, resp.header.revision)
                return {"revision": resp.header.revision}
            w.op("write", write, key=key, value=value)
        else:
            old, old_rev = seen.pop(key)
            new = self.ctx.next_value()

            def cas():
                cmp = etcdrpc.Compare(key=key.encode(), target=etcdrpc.Compare.MOD,
                                      result=etcdrpc.Compare.EQUAL, mod_revision=old_rev)
                put = etcdrpc.RequestOp(request_put=etcdrpc.PutRequest(
                    key=key.encode(), value=str(new).encode()))
                resp = w.client.txn([cmp], [put])
                if not resp.succeeded:
                    raise Fail("compare failed")
                seen[key] = (new, resp.header.revision)
                return {"revision": resp.header.revision}
            w.op("cas", cas, key=key, value=[old, new])

    def read(self, w, key, seen):
        def read():
            resp = w.client.range(key.encode())
            if resp.kvs:
                kv = resp.kvs[0]
                value, mod = int(kv.value), kv.mod_revision
            else:
                value, mod = None, 0
            seen[key] = (value, mod)
            return {"value": value, "mod_revision": mod, "revision": resp.header.revision}
        w.op("read", read, key=key, value=None)
