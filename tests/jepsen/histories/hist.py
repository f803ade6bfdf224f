"""Builders of small hand-written histories and generators of large ones, for the checker
tests (tests/jepsen/test_check*.py). They write run directories in the harness's format
(history.jsonl, final.json; see /work/helpers/JEPSEN.md and tools/jepsen/README.md).
"""

import json
import os
import random

MS = 1_000_000  # ns


class Builder:
    """Events of a history, given with explicit times (ms), written in time order."""

    def __init__(self):
        self.events = []
        self._op = 0
        self._open = {}

    def _add(self, t_ms, ev):
        ev["time"] = int(t_ms * MS)
        self.events.append(ev)
        return ev

    def invoke(self, t, process, workload, f, key=None, value=None, **fields):
        op = self._op
        self._op += 1
        ev = {"process": process, "type": "invoke", "f": f, "workload": workload,
              "key": key, "value": value, "op": op, **fields}
        self._open[op] = ev
        self._add(t, ev)
        return op

    def complete(self, t, op, type_, **fields):
        inv = self._open.pop(op)
        ev = {k: v for k, v in inv.items() if k != "time"}
        ev.update(fields)
        ev["type"] = type_
        return self._add(t, ev)

    def op(self, t0, t1, process, workload, f, key=None, value=None, type_="ok", done=None,
           **fields):
        """An invoke at t0 (with fields) and its completion at t1 (with done: fields of the
        completion, e.g. the value a read returned). type_ None: never completed."""
        op = self.invoke(t0, process, workload, f, key, value, **fields)
        if type_ is not None:
            self.complete(t1, op, type_, **(done or {}))
        return op

    def single(self, t, **ev):
        return self._add(t, dict(ev))

    def nemesis(self, t, f, value):
        return self._add(t, {"process": "nemesis", "type": "info", "f": f, "value": value})

    # register shorthands
    def write(self, t0, t1, p, key, v, type_="ok", revision=None):
        extra = {"revision": revision} if revision is not None else {}
        return self.op(t0, t1, p, "register", "write", key, v, type_, extra)

    def read(self, t0, t1, p, key, result, type_="ok", revision=None):
        done = {"value": result}
        if revision is not None:
            done["revision"] = revision
        return self.op(t0, t1, p, "register", "read", key, None, type_, done)

    def cas(self, t0, t1, p, key, old, new, type_="ok"):
        return self.op(t0, t1, p, "register", "cas", key, [old, new], type_)

    def txn(self, t0, t1, p, mops, result=None, type_="ok"):
        done = {"value": result} if result is not None else {}
        return self.op(t0, t1, p, "append", "txn", None, mops, type_, done)

    def save(self, run_dir, final=None):
        os.makedirs(run_dir, exist_ok=True)
        events = sorted(self.events, key=lambda e: e["time"])
        with open(os.path.join(run_dir, "history.jsonl"), "w") as f:
            for i, ev in enumerate(events):
                ev = {"index": i, **ev}
                f.write(json.dumps(ev) + "\n")
        if final is not None:
            with open(os.path.join(run_dir, "final.json"), "w") as f:
                json.dump(final, f)
        return run_dir


def register_history(seed, keys=3, ops_per_key=2000, concurrency=10, p_info=0.03,
                     p_cas=0.2, p_read=0.45):
    """A linearizable register history made by simulation.

    Each of `concurrency` client slots issues ops back to back on random keys; each op
    takes effect at a random point between its invoke and completion, and the results are
    those of applying the ops in that order. With probability p_info a write or cas ends
    `info`: it takes effect never (half the time) or at any point up to 2 s after its
    invoke - possibly long after it completed - and the slot continues as a new process.
    Returns a Builder."""
    rng = random.Random(seed)
    b = Builder()
    total = keys * ops_per_key
    planned = []          # (effect time or None, op record)
    next_process = concurrency
    values = iter(range(1, 10 ** 9))
    written = {}          # key -> values written so far
    slots = [(0.0, p) for p in range(concurrency)]
    for _ in range(total):
        slot = rng.randrange(concurrency)
        t, process = slots[slot]
        t0 = t + rng.uniform(0, 2)
        t1 = t0 + rng.uniform(0.2, 15)
        key = f"jepsen/r/{rng.randrange(keys)}"
        roll = rng.random()
        if roll < p_read:
            rec = {"f": "read", "key": key, "value": None}
        elif roll < p_read + p_cas and written.get(key):
            rec = {"f": "cas", "key": key,
                   "value": [rng.choice(written[key][-5:]), next(values)]}
        else:
            rec = {"f": "write", "key": key, "value": next(values)}
        written.setdefault(key, [])
        if rec["f"] != "read":
            written[key].append(rec["value"] if rec["f"] == "write" else rec["value"][1])
        rec.update(process=process, t0=t0, t1=t1)
        info = rec["f"] != "read" and rng.random() < p_info
        rec["info"] = info
        if info:
            effect = None if rng.random() < 0.5 else t0 + rng.uniform(0, 2000)
            next_process += 1
            slots[slot] = (t1, next_process)
        else:
            effect = rng.uniform(t0, t1)
            slots[slot] = (t1, process)
        planned.append((effect, rec))
    state = {}
    for effect, rec in sorted((p for p in planned if p[0] is not None),
                              key=lambda p: p[0]):
        cur = state.get(rec["key"])
        if rec["f"] == "read":
            rec["result"] = cur
        elif rec["f"] == "write":
            state[rec["key"]] = rec["value"]
        else:
            old, new = rec["value"]
            rec["applied"] = cur == old
            if cur == old:
                state[rec["key"]] = new
    b.final_state = state  # key -> the value it holds at the end
    for _, rec in planned:
        if rec["info"]:
            type_, done = "info", {"error": "timeout"}
        elif rec["f"] == "read":
            type_, done = "ok", {"value": rec["result"]}
        elif rec["f"] == "cas" and not rec["applied"]:
            type_, done = "fail", {"error": "compare failed"}
        else:
            type_, done = "ok", {}
        b.op(rec["t0"], rec["t1"], rec["process"], "register", rec["f"], rec["key"],
             rec["value"], type_, done)
    return b


def check(builder, tmp_path, final=None, only=None, **options):
    """Save the builder's history (and final.json) under tmp_path and check it."""
    from tools.jepsen.check import check_run
    return check_run(builder.save(str(tmp_path), final), only=only, **options)


def events_of(puts):
    """final.json events from [(revision, type, key, value, lease)]."""
    return [{"revision": r, "type": t, "key": k, "value": "" if v is None else str(v),
             "create_revision": r, "version": 1, "lease": lease}
            for r, t, k, v, lease in puts]


def append_history(seed, txns=1000, keys=5, concurrency=8, p_info=0.03, p_fail=0.05):
    """A serializable (indeed strictly serializable) list-append history by simulation:
    each transaction takes effect atomically at a random point between its invoke and
    completion; info ones take effect (half the time) or not. Returns (Builder, final kv)."""
    rng = random.Random(seed)
    b = Builder()
    values = iter(range(1, 10 ** 9))
    slots = [(0.0, p) for p in range(concurrency)]
    next_process = concurrency
    planned = []
    for _ in range(txns):
        slot = rng.randrange(concurrency)
        t, process = slots[slot]
        t0 = t + rng.uniform(0, 2)
        t1 = t0 + rng.uniform(0.5, 10)
        ks = rng.sample(range(keys), rng.randint(1, 3))
        mops = [["r", f"jepsen/a/{k}", None] if rng.random() < 0.5
                else ["append", f"jepsen/a/{k}", next(values)] for k in ks]
        roll = rng.random()
        type_ = "info" if roll < p_info else "fail" if roll < p_info + p_fail else "ok"
        if type_ == "info":
            next_process += 1
            slots[slot] = (t1, next_process)
        else:
            slots[slot] = (t1, process)
        applied = type_ == "ok" or (type_ == "info" and rng.random() < 0.5)
        planned.append((rng.uniform(t0, t1), applied, type_, t0, t1, process, mops))
    state = {}
    results = {}
    for effect, applied, type_, t0, t1, process, mops in sorted(planned, key=lambda p: p[0]):
        if not applied:
            continue
        out = []
        for f, k, v in mops:
            if f == "r":
                out.append([f, k, list(state.get(k, []))])
            else:
                state.setdefault(k, []).append(v)
                out.append([f, k, v])
        results[id(mops)] = out
    for effect, applied, type_, t0, t1, process, mops in planned:
        done = {"value": results[id(mops)]} if type_ == "ok" else {}
        b.txn(t0, t1, process, mops, done.get("value"), type_)
    kv = [{"key": k, "value": ",".join(map(str, v)), "create_revision": 1,
           "mod_revision": 2, "version": len(v), "lease": 0} for k, v in state.items()]
    return b, kv
