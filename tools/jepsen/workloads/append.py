"""Append workload (Elle's list-append): transactions over keys `<prefix>/a/<n>` whose
values are comma-joined lists of unique ints.

A transaction is 1-4 micro-ops on distinct keys, each `["r", key, null]` or
`["append", key, int]`. It runs as one read-only Txn reading every touched key (a single
revision), then - if it appends - one Txn that compares every touched key's mod_revision
with what was read and puts the extended lists. A failed compare is `fail`. The ok
completion carries the lists read. Checked for lost appends and dependency cycles.
"""

from etcd3 import etcdrpc

from ..client import Fail
from . import Workload

KEYS = 8
MAX_OPS = 4


def parse_list(raw):
    return [int(x) for x in raw.decode().split(",")] if raw else []


class Append(Workload):
    name = "append"

    def step(self, w):
        keys = w.rng.sample(range(KEYS), w.rng.randint(1, MAX_OPS))
        mops = []
        for k in keys:
            key = self.ctx.key("a", k)
            if w.rng.random() < 0.5:
                mops.append(["r", key, None])
            else:
                mops.append(["append", key, self.ctx.next_value()])

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
