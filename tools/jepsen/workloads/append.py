"""Append workload (Elle's list-append): transactions over keys `<prefix>/a/<n>` whose
values are comma-joined lists of unique ints. Eight keys are in use at a time; a key that
took 64 appends retires and the next unused <n> replaces it.

A transaction is 1-4 micro-ops on distinct keys, each `["r", key, null]` or
`["append", key, int]`. It runs as one read-only Txn reading every touched key (a single
revision), then - if it appends - one Txn that compares every touched key's mod_revision
with what was read and puts the extended lists. A failed compare is `fail`. The ok
completion carries the lists read. Checked for lost appends and dependency cycles.
"""

import threading

from etcd3 import etcdrpc

from ..client import Fail
from . import Workload

KEYS = 8                 # keys in use at a time
MAX_OPS = 4
APPENDS_PER_KEY = 64     # then the key retires and a fresh one takes its place



def parse_list(raw):
    return [int(x) for x in raw.decode().split(",")] if raw else []


class Append(Workload):
    name = "append"

    def __init__(self, ctx, rng):
        super().__init__(ctx, rng)
        self._lock = threading.Lock()
        self._active = list(range(KEYS))
        self._next_key = KEYS
        self._appends = {}

    def choose(self, w):
        """The micro-ops of one transaction. Each key takes at most APPENDS_PER_KEY
        appends, then a fresh key replaces it (lists, and the history, stay small)."""
        mops = []
        with self._lock:
            for k in w.rng.sample(self._active, w.rng.randint(1, MAX_OPS)):
                key = self.ctx.key("a", k)
                if w.rng.random() < 0.5:
                    mops.append(["r", key, None])
                    continue
                mops.append(["append", key, self.ctx.next_value()])
                self._appends[k] = self._appends.get(k, 0) + 1
                if self._appends[k] >= APPENDS_PER_KEY:
                    self._active[self._active.index(k)] = self._next_key
                    self._next_key += 1
        return mops

    def step(self, w):
        mops = self.choose(w)

        def txn():
            reads = [etcdrpc.RequestOp(request_range=etcdrpc.RangeRequest(key=k.encode()))
                     for _, k, _ in mops]
            resp = w.client.txn(success=reads, write=False)
            current = {}
            for (_, key, _), r in zip(mops, resp.responses):
                kvs = r.response_range.kvs
                current[key] = (parse_list(kvs[0].value), kvs[0].mod_revision) if kvs \
                    else ([], 0)
            result = [[f, k, current[k][0] if f == "r" else v] for f, k, v in mops]
            if all(f == "r" for f, _, _ in mops):
                return {"value": result, "revision": resp.header.revision}
            cmps = [etcdrpc.Compare(key=k.encode(), target=etcdrpc.Compare.MOD,
                                    result=etcdrpc.Compare.EQUAL, mod_revision=current[k][1])
                    for _, k, _ in mops]
            puts = [etcdrpc.RequestOp(request_put=etcdrpc.PutRequest(
                key=k.encode(), value=",".join(map(str, current[k][0] + [v])).encode()))
                for f, k, v in mops if f == "append"]
            resp = w.client.txn(cmps, puts)
            if not resp.succeeded:
                raise Fail("compare failed")
            return {"value": result, "revision": resp.header.revision}
        w.op("txn", txn, value=mops)
