"""A run's history as the checkers see it: operations (an invoke paired with its completion),
stand-alone events (nemesis, watch streams) and the final state (final.json).

An operation that never completed (the run ended first) is treated as `info`: it may or may
not have happened. Times are ns since the run started; `complete_time` of an op that never
completed is None. Values are normalised for comparison with the store's text values by
norm().
"""

import json
import os


class Op:
    """One client operation: its invoke and its completion (ok | fail | info)."""

    __slots__ = ("op_id", "process", "workload", "f", "key", "value", "result", "type",
                 "invoke_time", "complete_time", "revision", "invoke", "complete", "index")

    def __init__(self, invoke, complete=None):
        self.invoke = invoke
        self.complete = complete
        self.op_id = invoke.get("op")
        self.process = invoke.get("process")
        self.workload = invoke.get("workload")
        self.f = invoke.get("f")
        self.key = invoke.get("key")
        self.value = invoke.get("value")
        self.invoke_time = invoke.get("time", 0)
        self.index = invoke.get("index")
        if complete is None:
            self.type = "info"
            self.result = None
            self.complete_time = None
            self.revision = None
        else:
            self.type = complete.get("type")
            self.result = complete.get("value")
            self.complete_time = complete.get("time")
            self.revision = complete.get("revision")

    def field(self, name, default=None):
        """A field of the completion if it has it, else of the invoke."""
        if self.complete is not None and name in self.complete:
            return self.complete[name]
        return self.invoke.get(name, default)

    def describe(self):
        """A small JSON-able description for reports."""
        d = {"process": self.process, "type": self.type, "f": self.f}
        if self.key is not None:
            d["key"] = self.key
        d["value"] = self.value
        if self.type == "ok" and self.result != self.value:
            d["result"] = self.result
        if self.revision is not None:
            d["revision"] = self.revision
        d["invoke_s"] = seconds(self.invoke_time)
        d["complete_s"] = seconds(self.complete_time)
        if self.complete is not None and self.complete.get("error"):
            d["error"] = self.complete["error"]
        if self.op_id is not None:
            d["op"] = self.op_id
        return d

    def __repr__(self):
        return f"Op({self.describe()})"


def seconds(t_ns):
    return None if t_ns is None else round(t_ns / 1e9, 6)


def norm(value):
    """A value in the form the store holds it (text), for comparing history and store."""
    if value is None:
        return None
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float, str)):
        return str(value)
    return json.dumps(value, sort_keys=True)


def event_describe(ev):
    """An event (history line) as a small description for reports."""
    d = {k: ev[k] for k in ("process", "f", "type", "revision", "node", "error")
         if k in ev}
    d["time_s"] = seconds(ev.get("time"))
    return d


class History:
    """Operations, stand-alone events and the final state of one run."""

    def __init__(self, events, final=None, run_dir=None, notes=()):
        self.events = events
        self.final = final
        self.run_dir = run_dir
        self.notes = list(notes)
        self.ops = []          # Op, in invoke order
        self.singles = []      # events that are not part of an invoke/completion pair
        self.nemesis = []      # nemesis events (process "nemesis"), in order
        pending = {}
        for ev in events:
            if ev.get("process") == "nemesis":
                self.nemesis.append(ev)
                continue
            t = ev.get("type")
            pkey = (ev.get("process"), ev.get("op"))
            if t == "invoke":
                pending[pkey] = len(self.ops)
                self.ops.append(Op(ev))
            elif t in ("ok", "fail", "info") and pkey in pending:
                i = pending.pop(pkey)
                self.ops[i] = Op(self.ops[i].invoke, ev)
            else:
                self.singles.append(ev)
        self.end_time = max((ev.get("time", 0) for ev in events), default=0)

    def of(self, workload, fs=None):
        """Operations of one workload (optionally only those whose f is in fs)."""
        return [op for op in self.ops
                if op.workload == workload and (fs is None or op.f in fs)]


def load(run_dir):
    """History of a run directory (history.jsonl, and final.json if present)."""
    notes = []
    path = os.path.join(run_dir, "history.jsonl")
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    try:
        # One document: ~2.5x faster than a loads() per line (and keys are shared).
        events = json.loads("[" + ",".join(line for line in lines if line.strip()) + "]")
    except json.JSONDecodeError:
        events = []
        for n, line in enumerate(lines):
            if not line.strip():
                continue
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                if any(rest.strip() for rest in lines[n + 1:]):
                    raise
                notes.append(f"history.jsonl: last line {n + 1} is cut short; ignored")
    final = None
    fpath = os.path.join(run_dir, "final.json")
    if os.path.exists(fpath):
        with open(fpath, encoding="utf-8") as f:
            final = json.load(f)
    return History(events, final, run_dir, notes)
