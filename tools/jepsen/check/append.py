"""Elle-style checker of the list-append workload (Kingsbury & Alvaro, "Elle").

Each key holds a list; transactions read lists and append unique ints. Because every
append is unique and a read returns the whole list, the reads reveal each key's version
order: the longest read (or the final state from final.json), of which every other read
must be a prefix (else: incompatible-order). Reads also reveal:
  duplicate-elements  an element twice in one read
  G1a                 a read saw an element appended by a transaction that failed
  phantom-append      a read saw an element nobody appended
  G1b                 a read saw a transaction's append to a key but not its later one
  lost-append         an append acknowledged before a read began is missing from it;
                      the final state lacks an element some read saw, or an append of
                      an info transaction whose other appends were seen
  internal            a read inside a transaction disagrees with the transaction's own
                      earlier appends
Committed transactions (ok ones, and info ones whose appends someone read) form a graph
with edges ww (appended the next element), wr (a read saw the element appended last by),
rw (a read did not see the next element appended by) and rt (real time: completed before
the other was invoked; process order is part of it). A cycle is an anomaly; each strongly
connected component (Tarjan) is reported once, with the cycle found first in the order
G0 (ww only), G1c (ww+wr), G-single (exactly one rw), G2 (any) - and the same with
"-realtime" when the cycle needs real-time edges (a strict-serializability violation).
"""

import bisect

from .result import Anomalies, nothing, outcome

_PRIORITY = ("ww", "wr", "rw", "rt")
RW_TRIES = 2000   # rw edges tried per component when looking for a G-single cycle


def _short(lst, keep=6):
    """A list for an explanation: long ones shortened to their ends."""
    if len(lst) <= 2 * keep:
        return str(lst)
    return (f"[{', '.join(map(str, lst[:keep]))}, ... {', '.join(map(str, lst[-keep:]))}]"
            f" ({len(lst)} elements)")


def parse_list(value):
    """A key's value in final.json (comma-joined ints) as a list."""
    if value is None or value == "":
        return []
    if isinstance(value, list):
        return value
    return [int(x) for x in str(value).split(",")]


def check(history):
    txns = history.of("append", ("txn",))
    if not txns:
        return nothing("no append transactions")
    x = _Analysis(txns, history.final)
    x.collect()
    x.version_orders()
    x.intermediate_reads()
    x.lost_appends()
    x.final_state()
    x.cycles()
    return outcome(x.a, f"{len(txns)} txns ({len(x.ok)} ok, {len(x.failed)} fail, "
                   f"{len(x.info)} info), {len(x.order)} keys ordered, "
                   f"{len(x.committed)} committed in the graph")


class _Analysis:
    """The steps of the append check over one history (see the module docstring)."""

    def __init__(self, txns, final):
        self.a = Anomalies()
        self.final = final
        self.ok = [t for t in txns if t.type == "ok"]
        self.failed = [t for t in txns if t.type == "fail"]
        self.info = [t for t in txns if t.type == "info"]
        self.writer = {}         # (key, element) -> txn that appended it (ok or info)
        self.failed_writer = {}  # (key, element) -> failed txn that tried to append it
        self.appends_of = {}     # id(txn) -> {key: [elements in order]}
        self.reads = {}          # key -> [(txn, or None for the final state, list)]
        self.order = {}          # key -> version order (when its reads agree)
        self.committed = []

    def collect(self):
        """Who appended what; every read (of the state before the txn's own appends)."""
        a = self.a
        for t in self.ok + self.info:
            mine = {}
            for f, k, v in (t.value or []):
                if f == "append":
                    if (k, v) in self.writer:
                        a.add("duplicate-append", f"element {v} appended to {k} twice",
                              [self.writer[(k, v)], t])
                    self.writer.setdefault((k, v), t)
                    mine.setdefault(k, []).append(v)
            self.appends_of[id(t)] = mine
        for t in self.failed:
            for f, k, v in (t.value or []):
                if f == "append":
                    self.failed_writer[(k, v)] = t
        for t in self.ok:
            own = {}
            for f, k, v in (t.result or t.value or []):
                if f == "append":
                    own.setdefault(k, []).append(v)
                elif f == "r":
                    lst = list(v or [])
                    mine = own.get(k, [])
                    if mine:
                        if lst[-len(mine):] == mine:
                            lst = lst[:-len(mine)]
                        elif any(x in lst for x in mine):
                            a.add("internal", f"read of {k} {v} does not end with the "
                                  f"transaction's own appends {mine}", [t])
                    self.reads.setdefault(k, []).append((t, lst))
        if self.final and self.final.get("kv") is not None:
            final_kv = {kv["key"]: kv for kv in self.final["kv"]}
            for k in set(self.reads) | {k for k, _ in self.writer}:
                kv = final_kv.get(k)
                try:
                    lst = parse_list(kv["value"]) if kv else []
                except ValueError:
                    a.add("phantom-append", f"final value of {k} is not a list: "
                          f"{kv['value']!r}")
                    continue
                self.reads.setdefault(k, []).append((None, lst))

    def version_orders(self):
        """Each key's order: its longest read, of which every read must be a prefix."""
        a = self.a
        for k, rs in self.reads.items():
            longest = max((lst for _, lst in rs), key=len)
            consistent = True
            for t, lst in rs:
                if len(set(lst)) != len(lst):
                    dup = sorted({x for x in lst if lst.count(x) > 1})
                    a.add("duplicate-elements", f"read of {k} has {dup[:10]} more than "
                          f"once: {_short(lst)}", [t] if t else [], key=k)
                if lst != longest[:len(lst)]:
                    consistent = False
                    a.add("incompatible-order", f"{'read' if t else 'final value'} of {k} "
                          f"{_short(lst)} is not a prefix of the longest read "
                          f"{_short(longest)}", [t] if t else [], key=k)
            for x in set(longest):
                if (k, x) in self.writer:
                    continue
                readers = [t for t, lst in rs if t and x in lst][:3]
                if (k, x) in self.failed_writer:
                    a.add("G1a", f"element {x} of {k} was read but its transaction failed",
                          [self.failed_writer[(k, x)]] + readers, key=k)
                else:
                    a.add("phantom-append", f"element {x} of {k} was read but never "
                          f"appended", readers, key=k)
            if consistent:
                self.order[k] = longest

    def intermediate_reads(self):
        """G1b: a read ending at an append its transaction followed with another."""
        for k, rs in self.reads.items():
            for t, lst in rs:
                if not lst or t is None:
                    continue
                w = self.writer.get((k, lst[-1]))
                if w is None or w is t:
                    continue
                mine = self.appends_of[id(w)].get(k, [])
                if mine and lst[-1] != mine[-1]:
                    self.a.add("G1b", f"read of {k} ends at {lst[-1]}, an intermediate "
                               f"append of a transaction that appended {mine}", [w, t], key=k)

    def lost_appends(self):
        """An append acknowledged before a read was invoked, missing from that read."""
        for k, rs in self.reads.items():
            pos = {x: i for i, x in
                   enumerate(self.order.get(k, max((l for _, l in rs), key=len)))}
            timed = sorted((((t.invoke_time if t else float("inf")), len(lst), t)
                            for t, lst in rs), key=lambda x: x[:2])
            starts = [x[0] for x in timed]
            suffix_min = [None] * len(timed)   # the shortest read invoked at or after i
            best = None
            for i in range(len(timed) - 1, -1, -1):
                if best is None or timed[i][1] < best[1]:
                    best = timed[i]
                suffix_min[i] = best
            for t in self.ok:
                for v in self.appends_of[id(t)].get(k, []):
                    i = bisect.bisect_right(starts, t.complete_time)
                    if i == len(timed):
                        continue
                    _, length, reader = suffix_min[i]
                    p = pos.get(v)
                    if p is None or p >= length:
                        self.a.add("lost-append", f"element {v} appended to {k} "
                                   f"(acknowledged) is missing from a read of {k} invoked "
                                   f"after" + ("" if reader else " (the final state)"),
                                   [t] + ([reader] if reader else []), key=k)

    def final_state(self):
        """The committed txns; the final state (read after everything) must extend every
        read and hold every append of every committed txn (an info one seen included)."""
        observed = {(k, x) for k, lst in self.order.items() for x in lst}
        self.committed = self.ok + [
            t for t in self.info
            if any((k, v) in observed for k, vs in self.appends_of[id(t)].items()
                   for v in vs)]
        finals = {k: lst for k, rs in self.reads.items() for t, lst in rs if t is None}
        for k, fin in finals.items():
            for t, lst in self.reads[k]:
                if t is not None and len(lst) > len(fin) and lst[:len(fin)] == fin:
                    self.a.add("lost-append", f"a read of {k} saw {_short(lst)}; the final "
                               f"state is only {_short(fin)}", [t], key=k)
        for t in self.committed:
            if t.type != "info":
                continue              # ok ones: checked against every later read
            for k, vs in self.appends_of[id(t)].items():
                if k in finals and any(v not in finals[k] for v in vs):
                    self.a.add("lost-append", f"a transaction of unknown outcome was seen "
                               f"to commit, but its appends {vs} to {k} are not all in the "
                               f"final state {_short(finals[k])}", [t], key=k)

    def cycles(self):
        """The dependency graph (ww, wr, rw, rt) and one cycle per strongly connected
        component, classified."""
        committed = self.committed
        node = {id(t): i for i, t in enumerate(committed)}
        adj = [dict() for _ in committed]

        def edge(src, dst, label, k):
            if src is None or dst is None or src is dst:
                return
            s, d = node.get(id(src)), node.get(id(dst))
            if s is not None and d is not None:
                adj[s].setdefault(d, {}).setdefault(label, k)

        for k, lst in self.order.items():
            ws = [self.writer.get((k, x)) for x in lst]
            for i in range(len(ws) - 1):
                edge(ws[i], ws[i + 1], "ww", k)
            for t, rl in self.reads.get(k, []):
                if t is None:
                    continue
                n = len(rl)
                if n:
                    edge(ws[n - 1], t, "wr", k)
                if n < len(ws):
                    edge(t, ws[n], "rw", k)
        _realtime_edges(committed, node, adj)
        for scc in _tarjan(len(committed), adj):
            if len(scc) < 2:
                continue
            name, cyc = _classify(scc, adj)
            steps = []
            for u, label, k in cyc:
                d = committed[u].describe()
                d["edge"] = f"{label}" + (f" on {k}" if k else "") + " ->"
                steps.append(d)
            text = " ".join(f"T{i}" + f" -{label}" + (f"({k})" if k else "") + "->"
                            for i, (u, label, k) in enumerate(cyc)) + " T0"
            self.a.add(name, f"cycle of {len(cyc)} transactions in a component of "
                       f"{len(scc)}: {text}", steps)


def _realtime_edges(committed, node, adj):
    """Edges A -> B when A completed before B was invoked, transitively reduced: each op
    links from the ops completed since the last op that completed before it began."""
    events = []
    for t in committed:   # at equal times invokes first: taken as concurrent
        events.append((t.invoke_time, 0, node[id(t)]))
        if t.type == "ok":
            events.append((t.complete_time, 1, node[id(t)]))
    events.sort()
    frontier = set()   # completed ops not yet followed by a completed op
    preds = {}
    for _, kind, i in events:
        if kind == 0:
            preds[i] = list(frontier)
            for p in frontier:
                adj[p].setdefault(i, {}).setdefault("rt", None)
        else:
            frontier -= set(preds.get(i, ()))
            frontier.add(i)


def _tarjan(n, adj):
    """Strongly connected components (iterative Tarjan)."""
    index = [None] * n
    low = [0] * n
    on = [False] * n
    stack, out, counter = [], [], 0
    for root in range(n):
        if index[root] is not None:
            continue
        work = [(root, iter(adj[root]))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on[root] = True
        while work:
            v, it = work[-1]
            advanced = False
            for w in it:
                if index[w] is None:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on[w] = True
                    work.append((w, iter(adj[w])))
                    advanced = True
                    break
                if on[w]:
                    low[v] = min(low[v], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on[w] = False
                    comp.append(w)
                    if w == v:
                        break
                out.append(comp)
    return out


def _label(labels, allowed):
    for lab in _PRIORITY:
        if lab in labels and lab in allowed:
            return lab, labels[lab]
    return None


def _path(src, dst, members, adj, allowed):
    """Shortest path src -> dst inside members using allowed edge labels:
    [(node, label, key)] (each step's edge leaves that node) or None."""
    prev = {src: None}
    frontier = [src]
    while frontier:
        nxt = []
        for u in frontier:
            for v, labels in adj[u].items():
                if v not in members or v in prev:
                    continue
                lab = _label(labels, allowed)
                if lab is None:
                    continue
                prev[v] = (u, lab)
                if v == dst:
                    steps = []
                    x = v
                    while prev[x] is not None:
                        u2, (l2, k2) = prev[x]
                        steps.append((u2, l2, k2))
                        x = u2
                    return steps[::-1]
                nxt.append(v)
        frontier = nxt
    return None


def _cycle(members, adj, allowed):
    """Any cycle inside members using only allowed labels, as [(node, label, key)]."""
    sub = {u: {v: ls for v, ls in adj[u].items()
               if v in members and _label(ls, allowed)} for u in members}
    ids = sorted(members)
    local = {u: i for i, u in enumerate(ids)}
    ladj = [{local[v]: ls for v, ls in sub[u].items()} for u in ids]
    for comp in _tarjan(len(ids), ladj):
        if len(comp) > 1:
            comp_members = {ids[i] for i in comp}
            start = ids[comp[0]]
            for v, ls in sub[start].items():
                if v in comp_members:
                    lab, k = _label(ls, allowed)
                    back = _path(v, start, comp_members, adj, allowed)
                    if back is not None:
                        return [(start, lab, k)] + back
    return None


def _classify(scc, adj):
    members = set(scc)
    for suffix, extra in (("", ()), ("-realtime", ("rt",))):
        base = ("ww",) + extra
        cyc = _cycle(members, adj, base)
        if cyc:
            return "G0" + suffix, cyc
        base = ("ww", "wr") + extra
        cyc = _cycle(members, adj, base)
        if cyc:
            return "G1c" + suffix, cyc
        tries = 0
        for u in scc:
            for v, labels in adj[u].items():
                if v not in members or "rw" not in labels:
                    continue
                if _label(labels, base) is not None:
                    continue   # also a ww/wr/rt edge: not an anti-dependency step
                tries += 1
                if tries > RW_TRIES:
                    break
                back = _path(v, u, members, adj, base)
                if back is not None:
                    return "G-single" + suffix, [(u, "rw", labels["rw"])] + back
        cyc = _cycle(members, adj, base + ("rw",))
        if cyc:
            return "G2" + suffix, cyc
    cyc = _cycle(members, adj, _PRIORITY)
    return "cycle", cyc
