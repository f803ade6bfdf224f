#!/usr/bin/python3
"""kvd and etcd side by side (issue 7): the same kvbench workloads against a 3-member kvd
cluster and a 3-member etcd cluster, both on 127.0.0.1 with their data dirs on one disk.

Both clusters run for the whole comparison (each idles while the other is measured). The
workloads run alternately on kvd and etcd, for --rounds rounds (the order flips every
round), and the table gives, per workload, the median over rounds of:

  throughput (ops/s) and p99 latency as kvbench reports them (--json),
  server CPU-seconds per 10,000 operations: utime + stime of every member, from
    /proc/<pid>/stat before and after the run, summed over members,

and kvd/etcd ratios (throughput: higher is better for kvd; p99 and CPU: lower is). After
the rounds: peak RSS of each member (VmHWM, over the whole comparison), data-dir bytes,
memory per idle watcher (RSS growth of the members while kvbench holds --idle-watchers
watchers, divided by their number), and the floor of a one-client put: one fdatasync of a
4 KiB append on this disk plus two loopback round trips (client -> member -> peer).

Separate measurements (their own clusters, kvd by default, see --help):
  --startup 100000,1000000   time for a member holding N keys (a one-member cluster) to
                             serve a serializable read again after a restart (SIGKILL)
  --compaction 1000000       put p99 during the background compaction of N old revisions
                             (N puts over 10,000 keys, one-member cluster), against put p99
                             without compaction

Usage (from the repository root):
  /usr/bin/python3 bench/compare/compare.py --rounds 3 --json out.json --readme
Needs build/bin/kvd and build/bin/kvbench (or --kvd, --kvbench) and /usr/bin/etcd.
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
from tools.jepsen.cluster import Cluster  # noqa: E402

import grpc  # noqa: E402
from etcd3 import etcdrpc  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
KVBENCH_TIMEOUT_S = 600

# name -> (kvbench arguments, what the target says)
WORKLOADS = {
    "put-64": (["put", "--clients=64", "--conns=8", "--val_size=256"],
               "throughput >= 2x etcd, p99 <= etcd"),
    "put-1": (["put", "--clients=1", "--conns=1", "--val_size=256"], "latency <= etcd"),
    "range-l-64": (["range", "--clients=64", "--conns=8", "--consistency=l"], ">= 2x etcd"),
    "range-s-64": (["range", "--clients=64", "--conns=8", "--consistency=s"], ">= 2x etcd"),
    "txn-16": (["txn", "--clients=16", "--conns=4", "--hot_keys=64"], "-"),
    "watch-1000": (["watch", "--watchers=1000", "--watch_streams=10", "--watch_keys=10",
                    "--clients=8", "--rate=1000"], "- (events/s; latency put->event)"),
    "lease": (["lease", "--clients=16", "--conns=4"], "-"),
}
DEFAULT_WORKLOADS = "put-64,put-1,range-l-64,range-s-64,txn-16,watch-1000,lease"


# --- process and disk measurements ------------------------------------------------------


def cpu_seconds(pid):
    """utime + stime of a process, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def status_kb(pid, field):
    """A "kB" field of /proc/<pid>/status (VmRSS, VmHWM)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def dir_bytes(path):
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except FileNotFoundError:
                pass
    return total


def fdatasync_floor(directory, count=300):
    """Median and p99 (ms) of a 4 KiB append + fdatasync in directory."""
    path = os.path.join(directory, "fsync-probe")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    block = b"x" * 4096
    times = []
    try:
        for _ in range(count):
            start = time.perf_counter()
            os.write(fd, block)
            os.fdatasync(fd)
            times.append((time.perf_counter() - start) * 1e3)
    finally:
        os.close(fd)
        os.unlink(path)
    return quantiles(times)


def _echo_server(sock):
    conn, _ = sock.accept()
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while True:
        data = conn.recv(64)
        if not data:
            return
        conn.sendall(data)


def loopback_rtt(count=2000):
    """Median and p99 (ms) of a 1-byte TCP round trip on 127.0.0.1 between two processes
    (python on both ends: an upper bound of the kernel's own round trip)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    addr = server.getsockname()
    pid = os.fork()
    if pid == 0:
        try:
            _echo_server(server)
        finally:
            os._exit(0)
    server.close()
    client = socket.create_connection(addr)
    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    times = []
    for _ in range(count):
        start = time.perf_counter()
        client.sendall(b"x")
        client.recv(64)
        times.append((time.perf_counter() - start) * 1e3)
    client.close()
    os.waitpid(pid, 0)
    return quantiles(times)


def quantiles(values):
    values = sorted(values)
    return {"p50": values[len(values) // 2], "p99": values[min(len(values) - 1,
                                                              int(len(values) * 0.99))]}


# --- clusters ------------------------------------------------------------------------


def pids(cluster):
    return [m.proc.pid for m in cluster.members]


def cluster_cpu(cluster):
    return sum(cpu_seconds(p) for p in pids(cluster))


def cluster_rss_kb(cluster):
    return sum(status_kb(p, "VmRSS") for p in pids(cluster))


def start_cluster(kind, args, workdir, size=3):
    binary = args.kvd if kind == "kvd" else args.etcd
    c = Cluster(kind, size=size, workdir=os.path.join(workdir, kind), binary=binary,
                log=lambda msg: None)
    try:
        c.start()
    except BaseException:
        c.close()
        raise
    return c


def kvbench(args, endpoints, argv, extra=()):
    cmd = [args.kvbench, *argv, f"--endpoints={','.join(endpoints)}", "--json", *extra]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=KVBENCH_TIMEOUT_S)
    if r.returncode not in (0, 1) or not r.stdout.strip():
        raise RuntimeError(f"{' '.join(cmd)} exited {r.returncode}: {r.stderr.strip()[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def leader_first(cluster):
    """The endpoints with the leader's first: a one-connection workload (put-1) then talks
    to the leader on both servers, not to whichever member happened to be listed first (a
    put through a follower costs one more round trip)."""
    endpoints = cluster.endpoints()
    leader = cluster.leader()
    if leader is not None and leader.client_endpoint in endpoints:
        endpoints.remove(leader.client_endpoint)
        endpoints.insert(0, leader.client_endpoint)
    return endpoints


def measure(args, cluster, name):
    """One run of workload name on cluster: kvbench's figures plus server CPU."""
    argv, _ = WORKLOADS[name]
    before = cluster_cpu(cluster)
    out = kvbench(args, leader_first(cluster), argv, [f"--duration={args.duration}s"])
    cpu = cluster_cpu(cluster) - before
    ops = max(1, out.get("ops_total") or out["ops"])
    return {
        "ops_per_s": out["ops_per_s"],
        "p50_ms": out["latency_ms"]["p50"],
        "p99_ms": out["latency_ms"]["p99"],
        "errors": out.get("errors", 0),
        "server_cpu_s": cpu,
        "cpu_s_per_10k": cpu * 10000 / ops,
        "generator_cpu_us_per_op": out.get("generator_cpu_us_per_op"),
        "raw": out,
    }


def idle_watcher_bytes(args, cluster, count):
    """RSS growth of the members (summed) per watcher while kvbench holds count idle
    watchers."""
    with tempfile.TemporaryDirectory() as tmp:
        ready = os.path.join(tmp, "ready")
        before = cluster_rss_kb(cluster)
        cmd = [args.kvbench, "watch", f"--endpoints={','.join(cluster.endpoints())}",
               "--json", "--watchers=0", "--watch_streams=10", "--rate=0",
               f"--idle_watchers={count}", f"--ready_file={ready}", "--duration=60s"]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                text=True)
        try:
            deadline = time.monotonic() + 50
            while not os.path.exists(ready):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"idle watchers never became ready: "
                                       f"{proc.stderr.read()[-1000:] if proc.stderr else ''}")
                time.sleep(0.1)
            time.sleep(2)  # let the servers settle
            after = cluster_rss_kb(cluster)
        finally:
            proc.kill()
            proc.wait()
    return (after - before) * 1024 / count


# --- the comparison --------------------------------------------------------------------


def ratio(a, b):
    return a / b if b else float("nan")


def compare(args):
    names = [n for n in args.workloads.split(",") if n]
    for n in names:
        if n not in WORKLOADS:
            raise SystemExit(f"unknown workload {n}; known: {', '.join(WORKLOADS)}")
    root = args.workdir or tempfile.mkdtemp(prefix="kvd-compare-")
    os.makedirs(root, exist_ok=True)
    result = {"command": " ".join(sys.argv), "rounds": args.rounds, "duration_s": args.duration,
              "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "runs": {}}
    result["fdatasync_4k_ms"] = fdatasync_floor(root)
    result["loopback_rtt_ms"] = loopback_rtt()
    clusters = {}
    try:
        for kind in ("kvd", "etcd"):
            clusters[kind] = start_cluster(kind, args, root)
        # Populate the range key space (kvbench writes it once), outside the measurements.
        for c in clusters.values():
            kvbench(args, c.endpoints(), ["range", "--clients=16", "--conns=4", "--total=100"])
        runs = {n: {"kvd": [], "etcd": []} for n in names}
        for r in range(args.rounds):
            order = ("kvd", "etcd") if r % 2 == 0 else ("etcd", "kvd")
            for n in names:
                for kind in order:
                    m = measure(args, clusters[kind], n)
                    runs[n][kind].append(m)
                    print(f"round {r + 1} {n:11} {kind:4}: {m['ops_per_s']:9.0f} ops/s, "
                          f"p99 {m['p99_ms']:8.2f} ms, {m['cpu_s_per_10k']:6.2f} CPU-s/10k",
                          file=sys.stderr, flush=True)
        if args.idle_watchers > 0:
            result["idle_watcher_bytes"] = {
                k: idle_watcher_bytes(args, c, args.idle_watchers) for k, c in clusters.items()}
        result["peak_rss_kb"] = {
            k: [status_kb(p, "VmHWM") for p in pids(c)] for k, c in clusters.items()}
        result["data_dir_bytes"] = {
            k: [dir_bytes(m.data_dir) for m in c.members] for k, c in clusters.items()}
    finally:
        for c in clusters.values():
            c.close()
    summary = {}
    for n in names:
        row = {}
        for kind in ("kvd", "etcd"):
            ms = runs[n][kind]
            row[kind] = {key: statistics.median(m[key] for m in ms)
                         for key in ("ops_per_s", "p50_ms", "p99_ms", "cpu_s_per_10k")}
            row[kind]["errors"] = sum(m["errors"] for m in ms)
        row["ratio"] = {
            "ops_per_s": ratio(row["kvd"]["ops_per_s"], row["etcd"]["ops_per_s"]),
            "p50_ms": ratio(row["kvd"]["p50_ms"], row["etcd"]["p50_ms"]),
            "p99_ms": ratio(row["kvd"]["p99_ms"], row["etcd"]["p99_ms"]),
            "cpu_s_per_10k": ratio(row["kvd"]["cpu_s_per_10k"], row["etcd"]["cpu_s_per_10k"]),
        }
        row["target"] = WORKLOADS[n][1]
        summary[n] = row
    result["summary"] = summary
    result["runs"] = {n: {k: [{kk: vv for kk, vv in m.items() if kk != "raw"} for m in v]
                          for k, v in runs[n].items()} for n in names}
    return result


def table(result):
    lines = []
    s = result["summary"]
    lines.append("| workload | kvd ops/s | etcd ops/s | ratio | kvd p99 ms | etcd p99 ms | ratio "
                 "| kvd CPU-s/10k | etcd CPU-s/10k | ratio | target |")
    lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for n, row in s.items():
        k, e, r = row["kvd"], row["etcd"], row["ratio"]
        lines.append(f"| {n} | {k['ops_per_s']:.0f} | {e['ops_per_s']:.0f} | "
                     f"{r['ops_per_s']:.2f} | {k['p99_ms']:.2f} | {e['p99_ms']:.2f} | "
                     f"{r['p99_ms']:.2f} | {k['cpu_s_per_10k']:.2f} | "
                     f"{e['cpu_s_per_10k']:.2f} | {r['cpu_s_per_10k']:.2f} | {row['target']} |")
    lines.append("")
    if "put-1" in s:
        f, rtt = result["fdatasync_4k_ms"], result["loopback_rtt_ms"]
        floor = f["p50"] + 2 * rtt["p50"]
        lines.append(f"put-1 floor: fdatasync 4 KiB p50 {f['p50']:.3f} ms (p99 {f['p99']:.3f}) "
                     f"+ 2 x loopback RTT p50 {rtt['p50']:.3f} ms = {floor:.3f} ms; "
                     f"put-1 p50: kvd {s['put-1']['kvd']['p50_ms']:.3f} ms "
                     f"({s['put-1']['kvd']['p50_ms'] / floor:.1f}x floor), etcd "
                     f"{s['put-1']['etcd']['p50_ms']:.3f} ms "
                     f"({s['put-1']['etcd']['p50_ms'] / floor:.1f}x floor)")
    if "watch-1000" in s:
        w = s["watch-1000"]
        lines.append(f"watch fan-out (1,000 watchers): events/s kvd {w['kvd']['ops_per_s']:.0f}, "
                     f"etcd {w['etcd']['ops_per_s']:.0f}; put->event p50/p99 ms kvd "
                     f"{w['kvd']['p50_ms']:.2f}/{w['kvd']['p99_ms']:.2f}, etcd "
                     f"{w['etcd']['p50_ms']:.2f}/{w['etcd']['p99_ms']:.2f}")
    if "idle_watcher_bytes" in result:
        iw = result["idle_watcher_bytes"]
        lines.append(f"memory per idle watcher (RSS growth of all members / watchers): kvd "
                     f"{iw['kvd']:.0f} B, etcd {iw['etcd']:.0f} B")
    rss, dd = result["peak_rss_kb"], result["data_dir_bytes"]
    lines.append("peak RSS per member (VmHWM, MiB): kvd " +
                 ", ".join(f"{v / 1024:.0f}" for v in rss["kvd"]) + "; etcd " +
                 ", ".join(f"{v / 1024:.0f}" for v in rss["etcd"]) +
                 f"; ratio of the largest {max(rss['kvd']) / max(rss['etcd']):.2f}")
    lines.append("data dir per member after the run (MiB): kvd " +
                 ", ".join(f"{v / 2**20:.1f}" for v in dd["kvd"]) + "; etcd " +
                 ", ".join(f"{v / 2**20:.1f}" for v in dd["etcd"]))
    return "\n".join(lines)


# --- start-up and compaction -------------------------------------------------------------


def load_keys(args, cluster, keys):
    """Writes keys distinct keys (kvbench range's populate: 100 puts per transaction)."""
    kvbench(args, cluster.endpoints(),
            ["range", "--clients=8", "--conns=2", "--val_size=256", f"--key_space={keys}",
             "--total=1", "--timeout=60s"])


def startup_time(args, kind, keys, root):
    """Seconds from restarting a one-member cluster holding keys keys until it serves a
    serializable read."""
    c = start_cluster(kind, args, os.path.join(root, f"startup-{kind}-{keys}"), size=1)
    try:
        load_keys(args, c, keys)
        for m in c.members:
            m.kill()
        start = time.monotonic()
        for m in c.members:
            m.start()
        first = None
        pending = set(range(len(c.members)))
        deadline = start + 300
        while pending and time.monotonic() < deadline:
            for i in list(pending):
                if c.members[i].serves(serializable=True, timeout=0.5):
                    pending.discard(i)
                    if first is None:
                        first = time.monotonic() - start
            time.sleep(0.01)
        return {"keys": keys, "first_serving_s": first,
                "all_serving_s": None if pending else time.monotonic() - start,
                "data_dir_bytes": dir_bytes(c.members[0].data_dir)}
    finally:
        c.close()


def compaction_effect(args, kind, revisions, root):
    """put p99 (16 clients) without compaction, then while a one-member cluster compacts
    away revisions old revisions (physical compaction, timed)."""
    keys = 10000
    c = start_cluster(kind, args, os.path.join(root, f"compaction-{kind}"), size=1)
    try:
        kvbench(args, c.endpoints(),
                ["put", "--clients=64", "--conns=8", "--val_size=256", f"--key_space={keys}",
                 f"--total={revisions}", "--timeout=30s"])
        put = ["put", "--clients=16", "--conns=4", "--val_size=256", f"--key_space={keys}",
               f"--duration={args.duration}s"]
        quiet = kvbench(args, c.endpoints(), put)
        channel = grpc.insecure_channel(c.endpoints()[0])
        kv = etcdrpc.KVStub(channel)
        rev = kv.Range(etcdrpc.RangeRequest(key=b"x"), timeout=5).header.revision
        took = {}

        def compact():
            start = time.monotonic()
            kv.Compact(etcdrpc.CompactionRequest(revision=rev, physical=True), timeout=600)
            took["s"] = time.monotonic() - start

        t = threading.Thread(target=compact)
        t.start()
        time.sleep(0.2)
        during = kvbench(args, c.endpoints(), put)
        t.join(timeout=600)
        channel.close()
        return {"revisions": revisions, "compaction_s": took.get("s"),
                "p99_without_ms": quiet["latency_ms"]["p99"],
                "p99_during_ms": during["latency_ms"]["p99"],
                "ops_per_s_without": quiet["ops_per_s"], "ops_per_s_during": during["ops_per_s"],
                "ratio": during["latency_ms"]["p99"] / quiet["latency_ms"]["p99"]}
    finally:
        c.close()


# --- main -----------------------------------------------------------------------------


def write_readme(text, command):
    path = REPO / "bench" / "README.md"
    begin, end = "<!-- compare:begin -->", "<!-- compare:end -->"
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True).stdout.strip()
    load = os.getloadavg()[0]
    block = (f"{begin}\nLatest run ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
             f"tree at {head}, load average {load:.0f} at the end), command:\n\n"
             f"    {command}\n\n{text}\n{end}")
    readme = path.read_text()
    if begin in readme and end in readme:
        readme = readme[:readme.index(begin)] + block + readme[readme.index(end) + len(end):]
    else:
        readme = readme.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(readme)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--kvd", default=str(REPO / "build" / "bin" / "kvd"))
    p.add_argument("--etcd", default="/usr/bin/etcd")
    p.add_argument("--kvbench", default=str(REPO / "build" / "bin" / "kvbench"))
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=int, default=10, help="seconds per run")
    p.add_argument("--workloads", default=DEFAULT_WORKLOADS,
                   help=f"comma-separated, of: {', '.join(WORKLOADS)}")
    p.add_argument("--idle-watchers", type=int, default=10000,
                   help="idle watchers for the memory-per-watcher figure (0: skip)")
    p.add_argument("--workdir", help="data dirs go here (default: a new temp dir)")
    p.add_argument("--json", help="write the full result here")
    p.add_argument("--readme", action="store_true",
                   help="write the table into bench/README.md (between compare markers)")
    p.add_argument("--startup", help="comma-separated key counts: measure start-up instead")
    p.add_argument("--compaction", type=int,
                   help="old revisions: measure put p99 during compaction instead")
    p.add_argument("--kinds", default="kvd",
                   help="servers for --startup/--compaction (kvd,etcd)")
    args = p.parse_args()
    # Members run in their own directories: give them absolute paths.
    args.kvd, args.etcd, args.kvbench = (os.path.abspath(x) for x in (args.kvd, args.etcd,
                                                                     args.kvbench))

    if args.startup or args.compaction:
        root = args.workdir or tempfile.mkdtemp(prefix="kvd-compare-")
        out = {"command": " ".join(sys.argv)}
        for kind in args.kinds.split(","):
            if args.startup:
                out.setdefault("startup", {})[kind] = [
                    startup_time(args, kind, int(n), root) for n in args.startup.split(",")]
            if args.compaction:
                out.setdefault("compaction", {})[kind] = compaction_effect(
                    args, kind, args.compaction, root)
        print(json.dumps(out, indent=1))
        if args.json:
            Path(args.json).write_text(json.dumps(out, indent=1))
        return

    result = compare(args)
    text = table(result)
    print(text)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    if args.readme:
        write_readme(text, result["command"])


if __name__ == "__main__":
    main()
