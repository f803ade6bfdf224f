"""Linearizability of the register workload, checked per key (P-compositionality).

Model: a register holding None (no key) or a value; `read` returns it, `write v` sets it,
`cas [old, new]` sets new if it holds old. Search: Wing & Gong's algorithm with Lowe's
memoisation, as Porcupine does it. The invokes and completions of a key's operations form
a time-ordered doubly linked list; the search walks it, linearizing the first operation
whose invoke it meets if the model allows it and the (set of linearized ops, model state)
pair was not explored before, and backtracks when it meets the completion of an operation
not yet linearized (real-time order: that op had to take effect before this point).

Operations that ended `fail` did not happen and are dropped. An `info` operation (outcome
unknown) may take effect at any point after its invoke, or never: it has no completion in
the list, so it never forces a backtrack, and skipping it is the "never" branch. `info`
reads are dropped (they constrain nothing), and so are `info` writes / cas whose value no
operation ever observed: taking effect could only make later reads harder to explain.
An observed info write is bounded to the window it must have taken effect in (prune()),
and a read that matches the register's state is linearized at once, without trying to
leave it for later (it commutes with everything pending): both keep the search near
linear on valid histories (a few thousand ops per key in well under a second).

When final.json has the store's kv (after healing, and after killing every member at
once), each is one more read of every key, after the history: the end state must be
explained by the same order.

The search has a budget (steps, and memo entries). A search that runs out of it has not
shown the history linearizable: the check is INVALID ("gave up"), never valid.

On failure, the search's deepest point (the op whose completion could not be passed, the
states the register could hold there) anchors a second search for the smallest failing
window (smallest_window()): the shortest stretch of the history that cannot be linearized
from any starting state - typically a write and the stale read after it. That window is
what the report shows, with times; the deepest point's ops are kept beside it.
"""

import bisect
import itertools

from .ops import Op, seconds
from .result import Anomalies, nothing, outcome

WINDOW_STARTS = 200          # starting points tried when looking for the smallest window
WINDOW_STEP_BUDGET = 50_000  # search steps per window and starting state
WINDOW_ANCHORS = 12          # ops whose completion a smallest window may end at
WINDOW_TOTAL_STEPS = 3_000_000  # for the whole window search of one key (~10 s)
STEP_BUDGET = 5_000_000      # search steps per key (~400k steps/s)
MEMO_BUDGET = 2_000_000      # (linearized set, state) pairs remembered per key, at most
MEMO_BYTES = 600_000_000     # and the memory they may take (a set is an n-bit int)

_CALL, _RETURN = 0, 1
_END = -1


class GaveUp(Exception):
    def __init__(self, message, failure=None):
        super().__init__(message)
        self.failure = failure   # the deepest point reached so far (like a failure)


def _step(state, op):
    """(ok, new state) of applying op to the register state."""
    f = op.f
    if f == "read":
        return state == op.result, state
    if f == "write":
        return True, op.value
    if f == "cas":
        old, new = op.value
        return state == old, new
    raise ValueError(f"unknown register op {f!r}")


def _written(op):
    return op.value if op.f == "write" else op.value[1]


def prune(ops):
    """(ops of one key that matter to the search, windows) - see the module docstring.

    windows: {id(info op): (after, before)} for an info write/cas whose value some ok op
    observed and no other op writes. Values name their writes, so it took effect before
    the earliest completion of its observers (before), and after the invoke of every ok
    write that completed before one of its observers began (after): such a write precedes
    the observer, and cannot come between this op and the observer. The search treats the
    op as invoked at `after` and completing at `before`: this keeps info ops applied long
    after their invoke from making the search explode."""
    keep = [op for op in ops if op.type == "ok" and op.f in ("read", "write", "cas")]
    maybe = [op for op in ops if op.type == "info" and op.f in ("write", "cas")]
    observers = {}
    for op in keep:
        if op.f == "read" or op.f == "cas":
            v = op.result if op.f == "read" else op.value[0]
            observers.setdefault(v, []).append(op)
    kept_info = []
    observed = set(observers)
    while True:
        more = [op for op in maybe if _written(op) in observed and op not in kept_info]
        if not more:
            break
        kept_info += more
        observed |= {op.value[0] for op in more if op.f == "cas"}
    writers = {}
    for op in ops:
        if op.f in ("write", "cas") and op.type != "fail":
            writers[_written(op)] = writers.get(_written(op), 0) + 1
    done_writes = sorted((op.complete_time, op.invoke_time) for op in keep if op.f != "read")
    completes = [c for c, _ in done_writes]
    latest_invoke = list(itertools.accumulate((i for _, i in done_writes), max))
    windows = {}
    for op in kept_info:
        v = _written(op)
        obs = observers.get(v)
        if writers.get(v) != 1 or not obs:
            continue
        after = op.invoke_time
        for o in obs:
            j = bisect.bisect_left(completes, o.invoke_time)
            if j:
                after = max(after, latest_invoke[j - 1])
        windows[id(op)] = (after, min(o.complete_time for o in obs))
    return keep + kept_info, windows


def check_key(ops, windows=None, step_budget=STEP_BUDGET, memo_budget=MEMO_BUDGET,
              initial=None):
    """Search one key's history from the register state `initial`. Returns
    (linearizable, failure or None, stats).

    windows: {id(info op): (after, before)} it must take effect in (see prune()).
    Raises GaveUp when the budget runs out."""
    windows = windows or {}
    memo_budget = min(memo_budget, MEMO_BYTES // (len(ops) // 8 + 120))
    ops = sorted(ops, key=lambda o: windows.get(id(o), (o.invoke_time,))[0])
    n = len(ops)
    call_time = [windows.get(id(op), (op.invoke_time,))[0] for op in ops]
    ret_time = [op.complete_time if op.type == "ok" else windows.get(id(op), (0, None))[1]
                for op in ops]
    is_ok = [t is not None for t in ret_time]     # must be linearized
    # Entries: calls at invoke time, returns at completion time (or the window's ends);
    # at equal times calls come first (taken as concurrent).
    entries = [(call_time[i], _CALL, i) for i in range(n)]
    entries += [(ret_time[i], _RETURN, i) for i in range(n) if is_ok[i]]
    entries.sort()
    m = len(entries)
    kind = [e[1] for e in entries]
    opi = [e[2] for e in entries]
    ret_of = [_END] * n           # entry index of each op's return
    for j in range(m):
        if kind[j] == _RETURN:
            ret_of[opi[j]] = j
    head = m                      # sentinel before the first entry
    nxt = list(range(1, m)) + [_END, 0 if m else _END]
    prv = [head] + list(range(m - 1)) + [_END]

    def unlink(j):
        p, q = prv[j], nxt[j]
        nxt[p] = q
        if q != _END:
            prv[q] = p

    def relink(j):
        p, q = prv[j], nxt[j]
        nxt[p] = j
        if q != _END:
            prv[q] = j

    bit = [1 << i for i in range(n)]
    total_ok = remaining = sum(is_ok)
    stack = []                    # (call entry, state before)
    memo = set()
    linearized = 0
    state = initial
    entry = nxt[head]
    steps = 0
    best = None                   # (depth, stuck entry, states, stack ops, concurrent ops)
    while remaining > 0:
        steps += 1
        if steps > step_budget or len(memo) > memo_budget:
            raise GaveUp(f"search budget exhausted after {steps - 1} steps and "
                         f"{len(memo)} memoised states",
                         _failure(ops, best) if best else None)
        if entry == _END:
            raise AssertionError("walked past every completion with ok ops left")
        if kind[entry] == _CALL:
            i = opi[entry]
            op = ops[i]
            allowed, new_state = _step(state, op)
            # A read that matches the state commutes with everything pending: if any
            # order works from here, one with this read first does. So it is taken
            # without the alternative of leaving it for later (forced), which keeps
            # concurrent reads from multiplying the configurations.
            forced = allowed and op.f == "read"
            if allowed:
                lin = linearized | bit[i]
                k = (lin, new_state)
                if k not in memo:
                    memo.add(k)
                    stack.append((entry, state, forced))
                    state = new_state
                    linearized = lin
                    if is_ok[i]:
                        remaining -= 1
                    unlink(entry)
                    if ret_of[i] != _END:
                        unlink(ret_of[i])
                    entry = nxt[head]
                    continue
            if not forced:
                entry = nxt[entry]
                continue
            # forced and already explored: this configuration fails; backtrack.
        else:
            # A completion whose op is not linearized yet: nothing before it can be next.
            depth = total_ok - remaining
            if best is None or depth > best[0]:
                concurrent = []
                j = nxt[head]
                while j != entry and j != _END:
                    if kind[j] == _CALL:
                        concurrent.append(opi[j])
                    j = nxt[j]
                best = [depth, opi[entry], {state}, [opi[e[0]] for e in stack[-6:]],
                        concurrent]
            elif depth == best[0] and opi[entry] == best[1]:
                best[2].add(state)
        while True:
            if not stack:
                return False, _failure(ops, best), {"steps": steps, "memo": len(memo)}
            entry, state, forced = stack.pop()
            i = opi[entry]
            linearized &= ~bit[i]
            if is_ok[i]:
                remaining += 1
            if ret_of[i] != _END:
                relink(ret_of[i])
            relink(entry)
            if not forced:
                break
        entry = nxt[entry]
    return True, None, {"steps": steps, "memo": len(memo)}


def _failure(ops, best):
    depth, stuck, states, before, concurrent = best
    stuck_op = ops[stuck]
    window_ops = sorted({*before, *concurrent, stuck}, key=lambda i: ops[i].invoke_time)
    t0 = min(ops[i].invoke_time for i in window_ops)
    t1 = stuck_op.complete_time
    return {
        "stuck": stuck_op,
        "op": stuck_op.describe(),
        "explanation": (
            f"no linearization explains {stuck_op.f} {_show(stuck_op)} by process "
            f"{stuck_op.process}: after {depth} ok ops linearized, the register could hold "
            f"{sorted(states, key=repr)} when it completed"),
        "possible_states": sorted(states, key=repr),
        "linearized_before": [ops[i].describe() for i in before],
        "concurrent": [ops[i].describe() for i in concurrent if i != stuck],
        "window_s": [seconds(t0), seconds(t1)],
        "window": [ops[i].describe() for i in window_ops],
    }


class _Part:
    """An op as the window search sees it: mandatory (type "ok": takes effect between its
    invoke and completion) or optional (type "info": any time after its invoke, or not
    in the window at all)."""

    __slots__ = ("op", "f", "value", "result", "process", "type", "invoke_time",
                 "complete_time")

    def __init__(self, op, mandatory, invoke_time):
        self.op, self.f, self.value, self.result = op, op.f, op.value, op.result
        self.process = op.process
        self.type = "ok" if mandatory else "info"
        self.invoke_time = invoke_time
        self.complete_time = op.complete_time if mandatory else None

    def describe(self):
        return self.op.describe()


class _Other:
    """A register state no op of the window reads or compares with."""

    def __repr__(self):
        return "<any other value>"


def smallest_window(kept, windows, stuck, max_starts=WINDOW_STARTS, spent=None):
    """The shortest window [ts, stuck's completion] that is not linearizable from ANY
    starting state (or, when it starts with the history, from the empty key) - a
    self-contained proof a person can check by hand - or None.

    In the window, ops that ran wholly inside it must take effect in it; ops that straddle
    its edges, and info ops, may or may not (outside, their effect is part of the unknown
    starting state, or comes after the window). If the whole history had a linearization,
    its ops taking effect inside [ts, te], from the state it had at ts, would linearize
    the window: so a window that fails from every state proves the history fails.
    ts moves back one invoke at a time from the stuck op's."""
    te = stuck.complete_time
    first = min(o.invoke_time for o in kept)
    call = {id(o): max(o.invoke_time, windows.get(id(o), (o.invoke_time,))[0]) for o in kept}
    starts = sorted({o.invoke_time for o in kept if o.invoke_time <= stuck.invoke_time},
                    reverse=True)[:max_starts]
    for ts in starts:
        parts = []
        for o in kept:
            done_by = o.complete_time if o.type == "ok" else windows.get(id(o), (0, None))[1]
            if call[id(o)] > te or (done_by is not None and done_by < ts):
                continue
            mandatory = o.type == "ok" and o.invoke_time >= ts and o.complete_time <= te
            parts.append(_Part(o, mandatory, call[id(o)]))
        if ts <= first:
            states = {None}      # the window starts with the history: the key is empty
        else:
            states = {None, _OTHER}
            states |= {p.result for p in parts if p.f == "read"}
            states |= {p.value[0] for p in parts if p.f == "cas"}
        proven = True
        for st in states:
            if spent is not None:
                if spent[0] > WINDOW_TOTAL_STEPS:
                    return None
                spent[0] += len(parts)
            try:
                ok, _, stats = check_key(parts, None, WINDOW_STEP_BUDGET, initial=st)
                if spent is not None:
                    spent[0] += stats["steps"]
            except GaveUp:
                ok = True        # not proven from this state
                if spent is not None:
                    spent[0] += WINDOW_STEP_BUDGET
            if ok:
                proven = False
                break
        if proven:
            return sorted(parts, key=lambda p: p.invoke_time), ts, te, ts <= first
    return None


_OTHER = _Other()


def find_window(kept, windows, stuck, anchors=WINDOW_ANCHORS):
    """smallest_window() ending at the completion of the op where the search got stuck,
    else of one of the ok ops completing nearest to it (the search's deepest point is
    not always where the contradiction closes)."""
    near = sorted((o for o in kept if o.type == "ok" and o is not stuck),
                  key=lambda o: abs(o.complete_time - stuck.complete_time))
    spent = [0]
    for anchor in [stuck] + near[:anchors - 1]:
        small = smallest_window(kept, windows, anchor, spent=spent)
        if small:
            return small
    return None


def _show(op):
    if op.f == "read":
        return f"-> {op.result!r}"
    return repr(op.value)


def check(history, step_budget=STEP_BUDGET, memo_budget=MEMO_BUDGET):
    ops = history.of("register")
    if not ops:
        return nothing("no register operations")
    by_key = {}
    for op in ops:
        by_key.setdefault(op.key, []).append(op)
    final_reads = _final_reads(history, by_key)
    for op in final_reads:
        by_key[op.key].append(op)
    anomalies = Anomalies()
    keys = {}
    for key in sorted(by_key, key=str):
        kept, windows = prune(by_key[key])
        stats = {"ops": len(by_key[key]), "searched": len(kept)}
        try:
            ok, failure, s = check_key(kept, windows, step_budget, memo_budget)
            stats.update(s)
            gave_up = None
        except GaveUp as e:
            ok, failure, gave_up = False, e.failure, str(e)
        small = None
        if not ok and failure:
            small = find_window(kept, windows, failure.pop("stuck"))
        if gave_up and not small:
            # Not shown linearizable, not shown otherwise: invalid all the same.
            stats["result"] = "gave up"
            extra = {}
            if failure:
                extra = {k: v for k, v in failure.items() if k != "window"}
                extra["deepest_point"] = extra.pop("explanation")
            anomalies.add("gave-up", f"key {key}: {gave_up}; not shown linearizable",
                          ops=failure["window"] if failure else (), key=key, **extra)
        elif not ok:
            # A window that fails from every starting state proves it, even when the
            # search of the whole key gave up.
            stats["result"] = "NOT linearizable"
            text = failure.pop("explanation")
            window = failure.pop("window")
            if small:
                parts, ts, te, from_start = small
                failure["deepest_point"] = window
                window = [p.describe() for p in parts]
                failure["window_s"] = [seconds(ts), seconds(te)]
                start = ("from the empty key they start with" if from_start else
                         "from any starting state (ops straddling the window's start may "
                         "have taken effect before it)")
                text = (f"these {len(parts)} ops from {seconds(ts)} s to {seconds(te)} s "
                        f"cannot be linearized {start}; {text}")
            if gave_up:
                text += f" (the search of the whole key gave up: {gave_up})"
            anomalies.add("nonlinearizable", f"key {key}: " + text, ops=window, key=key,
                          **failure)
        else:
            stats["result"] = "linearizable"
        keys[key] = stats
    n_ok = sum(1 for op in ops if op.type == "ok")
    summary = f"{len(ops)} register ops ({n_ok} ok) on {len(by_key)} keys"
    if final_reads:
        summary += f", and {len(final_reads)} final reads from final.json"
    return outcome(anomalies, summary, keys=keys)


def _final_reads(history, by_key):
    """Reads of every register key, after the history ends, from final.json's kv (taken
    after healing) and after_kill_all's kv: the end state must be the last write too."""
    final = history.final or {}
    out = []
    t = history.end_time
    for label, state in (("final.json", final), ("after_kill_all", final.get("after_kill_all"))):
        if not state or state.get("kv") is None:
            continue
        kv = {x["key"]: x.get("value") for x in state["kv"]}
        for key in by_key:
            raw = kv.get(key)
            try:
                value = None if raw is None else int(raw)
            except ValueError:
                value = raw
            inv = {"process": label, "type": "invoke", "f": "read", "workload": "register",
                   "key": key, "value": None, "time": t + 1}
            out.append(Op(inv, dict(inv, type="ok", value=value, time=t + 2)))
        t += 2
    return out
