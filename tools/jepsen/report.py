"""The report of a fault-harness run: summary.txt and timeline.html in the run directory.

summary.txt: the verdict, one line per check, operation counts by workload/f/outcome,
the fault windows with their availability figures, and every anomaly with its ops.
timeline.html: one self-contained page with an inline SVG, like Jepsen's plots - one lane
per client (a lane holds the processes that followed each other in one client slot), each
op a bar from invoke to completion coloured by outcome, fault windows shaded and named,
and below it the latency of ok ops over time (log scale). Hovering shows each op.
"""

import html
import json
import math
import os

from .check import ops as opslib

MAX_OPS_SHOWN = 30     # per anomaly in summary.txt
MAX_OP_CHARS = 400     # per op line in summary.txt
OK, FAIL, INFO = "#2e9d48", "#d64541", "#f0a30a"
TYPE_COLOURS = {"ok": OK, "fail": FAIL, "info": INFO}
WORKLOAD_COLOURS = {"register": "#1f77b4", "append": "#9467bd", "watch": "#17becf",
                    "lease": "#8c564b", "lock": "#e377c2"}
NEMESIS_COLOURS = ["#9ecae1", "#fdae6b", "#a1d99b", "#bcbddc", "#fdd0a2", "#c7e9c0",
                   "#d9d9d9", "#fcbba1", "#c6dbef", "#dadaeb"]


# --- summary.txt ------------------------------------------------------------------------

def _fmt_op(d):
    if not isinstance(d, dict):
        return str(d)
    if "f" in d and "invoke_s" in d:
        s = (f"p{d.get('process')} {d.get('invoke_s')}-{d.get('complete_s')}s "
             f"{d.get('type')} {d.get('f')}")
        if d.get("key") is not None:
            s += f" {d['key']}"
        s += f" {json.dumps(d.get('value'))}"
        if "result" in d:
            s += f" -> {json.dumps(d['result'])}"
        if d.get("revision") is not None:
            s += f" @rev {d['revision']}"
        if d.get("error"):
            s += f" ({d['error']})"
        return s
    return json.dumps(d, default=str)


def summary_text(result):
    h = result.history
    lines = [f"verdict: {'VALID' if result.valid else 'INVALID'}"]
    if h is not None and h.run_dir:
        lines[0] += f"   ({h.run_dir})"
    if h is not None and h.final:
        lines.append(f"server: {h.final.get('kind', '?')}, prefix {h.final.get('prefix')!r},"
                     f" {len(h.final.get('members') or {})} members, "
                     f"{len(h.final.get('events') or [])} events in the store")
    if h is not None:
        from .check.availability import windows
        tried = {}
        for w in windows(h):
            tried[w["nemesis"]] = tried.get(w["nemesis"], 0) + 1
        by_type = {}
        for op in h.ops:
            by_type[op.type] = by_type.get(op.type, 0) + 1
        lines.append(f"operations checked: {len(h.ops)} (ok {by_type.get('ok', 0)}, fail "
                     f"{by_type.get('fail', 0)}, info {by_type.get('info', 0)}) over "
                     f"{h.end_time / 1e9:.1f} s")
        lines.append("faults tried: " + (", ".join(f"{n} x{c}" for n, c in tried.items())
                                         or "none"))
    lines.append("")
    lines.append("checks:")
    width = max((len(n) for n in result.checks), default=10)
    for name, c in result.checks.items():
        d = c["details"]
        mark = "PASS" if c["valid"] else "FAIL"
        lines.append(f"  {mark}  {name:<{width}}  {d.get('summary', '')}")
    if h is not None:
        lines.append("")
        lines.append(f"operations ({len(h.ops)}, over {h.end_time / 1e9:.1f} s):")
        counts = {}
        for op in h.ops:
            c = counts.setdefault((op.workload or "?", op.f or "?"), {})
            c[op.type] = c.get(op.type, 0) + 1
        for (w, f), c in sorted(counts.items()):
            lines.append(f"  {w:<9} {f:<13} ok {c.get('ok', 0):>6}  fail {c.get('fail', 0):>6}"
                         f"  info {c.get('info', 0):>5}")
        singles = {}
        for ev in h.singles:
            singles[ev.get("f")] = singles.get(ev.get("f"), 0) + 1
        if singles:
            lines.append("  other events: " + ", ".join(f"{f} {n}" for f, n in
                                                         sorted(singles.items(), key=str)))
    avail = result.checks.get("availability", {}).get("details", {}).get("windows")
    if avail:
        lines.append("")
        lines.append("fault windows (availability: writes = acknowledged writes):")
        for w in avail:
            ops = w["ops"]
            lines.append(
                f"  {w['start_s']:>8.2f}-{w['stop_s']:<8.2f}s {w['nemesis']:<18} "
                f"targets {w.get('targets')}  ok {ops.get('ok', 0)} fail {ops.get('fail', 0)}"
                f" info {ops.get('info', 0)}; longest without a write "
                f"{w['longest_without_write_s']} s, first write after "
                f"{w['first_write_after_s']} s" + (f"  ERROR {w['error']}" if w.get("error")
                                                   else "")
                + (f"  ({w['note']})" if w.get("note") else ""))
    conv = result.checks.get("convergence", {}).get("details", {}).get("seconds")
    if conv:
        lines.append(f"convergence after heals (s): {conv}")
    bad = [(n, c) for n, c in result.checks.items() if not c["valid"]]
    if bad:
        lines.append("")
        lines.append("anomalies:")
        for name, c in bad:
            d = c["details"]
            if d.get("traceback"):
                lines.append(f"  [{name}] checker crashed:")
                lines += ["    " + x for x in d["traceback"].rstrip().splitlines()]
            if not d.get("anomalies"):
                lines.append(f"  [{name}] {d.get('summary')}")
            for an in d.get("anomalies", []):
                lines.append(f"  [{name}] {an['type']}: {an['explanation']}")
                ops = an.get("ops", [])
                for o in ops[:MAX_OPS_SHOWN]:
                    text = _fmt_op(o)
                    if len(text) > MAX_OP_CHARS:
                        text = text[:MAX_OP_CHARS] + " ..."
                    lines.append(f"      {text}")
                if len(ops) > MAX_OPS_SHOWN:
                    lines.append(f"      ... {len(ops) - MAX_OPS_SHOWN} more ops")
            shown = len(d.get("anomalies", []))
            total = sum(d.get("anomaly_counts", {}).values())
            if total > shown:
                lines.append(f"  [{name}] ... {total - shown} more not shown")
    notes = sorted({n for c in result.checks.values() for n in c["details"].get("notes", [])})
    if notes:
        lines.append("")
        lines += ["note: " + n for n in notes]
    return "\n".join(lines) + "\n"


# --- timeline.html ----------------------------------------------------------------------

def _lanes(ops, singles):
    """Lanes: [(label, [process ids])], processes of one workload that never overlap in
    time share a lane (a client slot continuing under a fresh id after an info op)."""
    span = {}
    wl = {}
    for op in ops:
        end = op.complete_time if op.complete_time is not None else op.invoke_time
        s = span.setdefault(op.process, [op.invoke_time, end])
        s[0] = min(s[0], op.invoke_time)
        s[1] = max(s[1], end)
        wl.setdefault(op.process, op.workload or "?")
    for ev in singles:
        p = ev.get("process")
        t = ev.get("time", 0)
        s = span.setdefault(p, [t, t])
        s[0], s[1] = min(s[0], t), max(s[1], t)
        wl.setdefault(p, ev.get("workload") or "?")
    lanes = []
    for w in sorted(set(wl.values()), key=str):
        procs = sorted((p for p in span if wl[p] == w), key=lambda p: span[p][0])
        mine = []     # [end time, [processes]]
        for p in procs:
            for lane in mine:
                if lane[0] < span[p][0]:
                    lane[0] = span[p][1]
                    lane[1].append(p)
                    break
            else:
                mine.append([span[p][1], [p]])
        for i, (_, ps) in enumerate(mine):
            lanes.append((f"{w} {i}", ps))
    return lanes


def _flagged(result):
    """(process, op id) -> names of the anomalies whose ops include it."""
    out = {}
    for c in result.checks.values():
        for an in c["details"].get("anomalies", []):
            for o in an.get("ops", []):
                if isinstance(o, dict) and o.get("op") is not None and "f" in o:
                    out.setdefault((o.get("process"), o["op"]), set()).add(an["type"])
    return out


def _title(op):
    lat = ("" if op.complete_time is None
           else f", {(op.complete_time - op.invoke_time) / 1e6:.1f} ms")
    s = f"p{op.process} {op.f} {op.key or ''} {json.dumps(op.value, default=str)}"
    if op.type == "ok" and op.result is not None and op.result != op.value:
        s += f" -> {json.dumps(op.result, default=str)}"
    s += f"  [{op.type}{lat}] at {op.invoke_time / 1e9:.3f} s"
    if op.complete is not None and op.complete.get("error"):
        s += f"  {op.complete['error']}"
    return html.escape(s[:400])


def timeline_html(result, width=1500):
    h = result.history
    ops = h.ops
    t_end = max(h.end_time, 1)
    left, right = 110, 20
    plot_w = width - left - right
    lanes = _lanes(ops, h.singles)
    lane_of = {p: i for i, (_, ps) in enumerate(lanes) for p in ps}
    lane_h = 12
    top = 58
    lanes_h = max(1, len(lanes)) * lane_h
    lat_top = top + lanes_h + 50
    lat_h = 260
    height = lat_top + lat_h + 50

    def x(t):
        return left + plot_w * (t / t_end)

    out = []
    add = out.append
    add(f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="11">')
    add(f'<rect x="0" y="0" width="{width}" height="{height}" fill="white"/>')
    # Fault windows: shaded behind both plots, a coloured strip with the name above the
    # lanes (names on two staggered rows), dashed edges drawn over the bars (below).
    from .check.availability import windows
    colour_of = {}
    edges = []
    for n, w in enumerate(windows(h)):
        c = colour_of.setdefault(w["nemesis"],
                                 NEMESIS_COLOURS[len(colour_of) % len(NEMESIS_COLOURS)])
        x0, x1 = x(w["start"]), x(w["stop"])
        tip = html.escape(f"{w['nemesis']} {w['start'] / 1e9:.2f}-{w['stop'] / 1e9:.2f} s "
                          f"{json.dumps(w['start_value'], default=str)[:300]}")
        for y0, hh in ((top, lanes_h), (lat_top, lat_h), (top - 9, 7)):
            add(f'<rect x="{x0:.1f}" y="{y0}" width="{max(1.0, x1 - x0):.1f}" height="{hh}"'
                f' fill="{c}" fill-opacity="{0.9 if hh == 7 else 0.4}"><title>{tip}</title>'
                f'</rect>')
        add(f'<text x="{x0 + 1:.1f}" y="{top - 12 - 11 * (n % 2)}" fill="#333">'
            f'{html.escape(w["nemesis"])}<title>{tip}</title></text>')
        edges += [(x0, c), (x1, c)]
    # Time axis and grid.
    step = _nice_step(t_end / 1e9)
    t = 0.0
    while t <= t_end / 1e9 + 1e-9:
        xx = x(t * 1e9)
        add(f'<line x1="{xx:.1f}" y1="{top}" x2="{xx:.1f}" y2="{top + lanes_h}" '
            f'stroke="#ddd"/>')
        add(f'<line x1="{xx:.1f}" y1="{lat_top}" x2="{xx:.1f}" y2="{lat_top + lat_h}" '
            f'stroke="#ddd"/>')
        add(f'<text x="{xx:.1f}" y="{top + lanes_h + 14}" text-anchor="middle">'
            f'{t:g} s</text>')
        add(f'<text x="{xx:.1f}" y="{lat_top + lat_h + 14}" text-anchor="middle">'
            f'{t:g} s</text>')
        t += step
    # Lanes.
    for i, (label, ps) in enumerate(lanes):
        y = top + i * lane_h
        if i % 2:
            add(f'<rect x="{left}" y="{y}" width="{plot_w}" height="{lane_h}" '
                f'fill="#000" fill-opacity="0.03"/>')
        add(f'<text x="{left - 6}" y="{y + lane_h - 3}" text-anchor="end" fill="#444">'
            f'{html.escape(label)}<title>processes {html.escape(str(ps[:50]))}</title>'
            f'</text>')
    flagged = _flagged(result)
    marks = []
    for op in ops:
        y = top + lane_of[op.process] * lane_h + 2
        t1 = op.complete_time if op.complete_time is not None else h.end_time
        x0 = x(op.invoke_time)
        w = max(1.2, x(t1) - x0)
        colour = TYPE_COLOURS.get(op.type, INFO)
        add(f'<rect x="{x0:.1f}" y="{y}" width="{w:.1f}" height="{lane_h - 4}" '
            f'fill="{colour}"><title>{_title(op)}</title></rect>')
        names = flagged.get((op.process, op.op_id))
        if names:
            marks.append((x0, y, w, op, names))
    # Ops named by an anomaly: outlined, with a marker above the lanes and a label.
    for x0, y, w, op, names in marks:
        tip = html.escape(", ".join(sorted(names))) + " - " + _title(op)
        add(f'<rect x="{x0 - 1:.1f}" y="{y - 1}" width="{w + 2:.1f}" height="{lane_h - 2}" '
            f'fill="none" stroke="#000" stroke-width="1.5"><title>{tip}</title></rect>')
        add(f'<path d="M{x0 + w / 2 - 5:.1f},{top - 8} l10,0 l-5,7 z" fill="{FAIL}">'
            f'<title>{tip}</title></path>')
    # Watch streams: a thin bar over the stream's life, a tick per response.
    streams = {}
    for ev in h.singles:
        p = ev.get("process")
        if p in lane_of:
            streams.setdefault(p, []).append(ev)
    for p, evs in streams.items():
        y = top + lane_of[p] * lane_h
        t0, t1 = evs[0].get("time", 0), evs[-1].get("time", 0)
        tip = html.escape(f"watch stream p{p}: {len(evs)} records, "
                          f"{t0 / 1e9:.2f}-{t1 / 1e9:.2f} s")
        add(f'<rect x="{x(t0):.1f}" y="{y + 5}" width="{max(1.0, x(t1) - x(t0)):.1f}" '
            f'height="2" fill="{WORKLOAD_COLOURS["watch"]}"><title>{tip}</title></rect>')
        ticks = set()     # one tick per pixel at most: a stream has thousands
        for ev in evs:
            if ev.get("f") in ("watch-events", "watch-end"):
                xx = round(x(ev.get("time", 0)))
                if (xx, ev["f"]) in ticks:
                    continue
                ticks.add((xx, ev["f"]))
                c = (WORKLOAD_COLOURS["watch"] if ev["f"] == "watch-events" else FAIL)
                add(f'<rect x="{xx}" y="{y + 2}" width="1" height="{lane_h - 4}" '
                    f'fill="{c}"/>')
    for xx, c in edges:
        add(f'<line x1="{xx:.1f}" y1="{top}" x2="{xx:.1f}" y2="{top + lanes_h}" '
            f'stroke="#555" stroke-width="0.8" stroke-dasharray="3,2"/>')
    add(f'<rect x="{left}" y="{top}" width="{plot_w}" height="{lanes_h}" fill="none" '
        f'stroke="#999"/>')
    # Latency over time (ok ops), log scale.
    lats = [(op, (op.complete_time - op.invoke_time) / 1e6) for op in ops
            if op.type == "ok" and op.complete_time is not None]
    lo = 10 ** math.floor(math.log10(max(0.01, min((l for _, l in lats), default=1))))
    hi = 10 ** math.ceil(math.log10(max(lo * 10, max((l for _, l in lats), default=10))))

    def y_lat(ms):
        ms = min(max(ms, lo), hi)
        return lat_top + lat_h - lat_h * (math.log10(ms / lo) / math.log10(hi / lo))
    dec = lo
    while dec <= hi * 1.0001:
        yy = y_lat(dec)
        add(f'<line x1="{left}" y1="{yy:.1f}" x2="{left + plot_w}" y2="{yy:.1f}" '
            f'stroke="#ddd"/>')
        add(f'<text x="{left - 6}" y="{yy + 4:.1f}" text-anchor="end">{_ms(dec)}</text>')
        dec *= 10
    for op, ms in lats:
        c = WORKLOAD_COLOURS.get(op.workload, "#555")
        add(f'<circle cx="{x(op.complete_time):.1f}" cy="{y_lat(ms):.1f}" r="1.6" '
            f'fill="{c}" fill-opacity="0.7"><title>{_title(op)}</title></circle>')
    for _, _, _, op, names in marks:
        if op.type == "ok" and op.complete_time is not None:
            ms = (op.complete_time - op.invoke_time) / 1e6
            add(f'<circle cx="{x(op.complete_time):.1f}" cy="{y_lat(ms):.1f}" r="5" '
                f'fill="none" stroke="{FAIL}" stroke-width="1.5"><title>'
                f'{html.escape(", ".join(sorted(names)))} - {_title(op)}</title></circle>')
    add(f'<rect x="{left}" y="{lat_top}" width="{plot_w}" height="{lat_h}" fill="none" '
        f'stroke="#999"/>')
    add(f'<text x="{left}" y="{lat_top - 8}" font-weight="bold">latency of ok operations '
        f'(log scale) by completion time</text>')
    add(f'<text x="{left}" y="14" font-weight="bold">operations by client lane '
        f'(bar = invoke to completion; a lane is one client slot, continuing under a new '
        f'process id after an info op; thin cyan = a watch stream, ticks = responses)</text>')
    add("</svg>")
    legend = " ".join(
        f'<span class="sw" style="background:{c}"></span>{html.escape(n)}'
        for n, c in (("ok", OK), ("fail", FAIL), ("info (unknown)", INFO)))
    legend += " &nbsp; latency: " + " ".join(
        f'<span class="dot" style="background:{c}"></span>{n}'
        for n, c in WORKLOAD_COLOURS.items())
    legend += (f' &nbsp; <span style="color:{FAIL}">&#9660;</span> an op named by an '
               f'anomaly (outlined)' if marks else "")
    legend += " &nbsp; faults: " + (" ".join(
        f'<span class="sw" style="background:{c}"></span>{html.escape(n)}'
        for n, c in colour_of.items()) or "none")
    checks = "".join(
        f'<li class="{"pass" if c["valid"] else "fail"}">'
        f'<b>{"PASS" if c["valid"] else "FAIL"}</b> {html.escape(n)}: '
        f'{html.escape(str(c["details"].get("summary", "")))}</li>'
        for n, c in result.checks.items())
    title = "VALID" if result.valid else "INVALID"
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>kvd fault run: {title}</title>
<style>
body {{ font-family: sans-serif; margin: 16px; color: #222; }}
h1 {{ font-size: 20px; margin: 0 0 8px; }}
h1 .v {{ color: {OK}; }} h1 .i {{ color: {FAIL}; }}
ul {{ margin: 4px 0 10px; padding-left: 18px; font-size: 13px; }}
li.fail b {{ color: {FAIL}; }} li.pass b {{ color: {OK}; }}
.sw {{ display: inline-block; width: 14px; height: 10px; margin: 0 4px 0 8px; }}
.dot {{ display: inline-block; width: 8px; height: 8px; border-radius: 4px;
        margin: 0 4px 0 8px; }}
.legend {{ font-size: 12px; margin: 6px 0; }}
pre {{ font-size: 12px; white-space: pre-wrap; }}
</style></head><body>
<h1>kvd fault run: <span class="{'v' if result.valid else 'i'}">{title}</span>
{html.escape(str(h.run_dir or ""))}</h1>
<ul>{checks}</ul>
<div class="legend">{legend}</div>
{''.join(out)}
<details{' open' if not result.valid else ''}><summary>summary.txt (anomalies with their ops,
fault windows, operation counts)</summary><pre>{html.escape(summary_text(result))}</pre>
</details>
</body></html>
"""


def _ms(v):
    return f"{v / 1000:g} s" if v >= 1000 else f"{v:g} ms"


def _nice_step(total_s):
    for s in (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60,
              120, 300, 600):
        if total_s / s <= 15:
            return s
    return 1200


def write_report(run_dir, result):
    """Write summary.txt and timeline.html into run_dir; returns their paths."""
    if result.history is None:
        result.history = opslib.load(run_dir)
    summary = os.path.join(run_dir, "summary.txt")
    with open(summary, "w", encoding="utf-8") as f:
        f.write(summary_text(result))
    timeline = os.path.join(run_dir, "timeline.html")
    with open(timeline, "w", encoding="utf-8") as f:
        f.write(timeline_html(result))
    return summary, timeline
