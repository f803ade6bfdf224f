"""The driver of the fault harness: one run from start to verdict.

A run starts a cluster (tools/jepsen/cluster.py), runs the chosen workloads from
--concurrency client threads for --time-limit seconds while a nemesis thread opens a fault
window every few seconds (each window's start, stop and the convergence time after the
heal go into the history), then heals everything, quiesces, and writes final.json: the
state of the run's keys, every event since revision 1, HashKV of every member, the TTL of
every granted lease, and the same state again after every member was killed at once and
restarted ("after_kill_all"). Then it runs the checkers (tools/jepsen/check) and writes
the report (tools/jepsen/report.py). Every random choice comes from --seed.
"""

import argparse
import json
import os
import random
import shlex
import shutil
import signal
import tempfile
import sys
import threading
import time
import traceback
from pathlib import Path

import grpc
from etcd3 import etcdrpc

from . import client as clientlib
from . import history as historylib
from . import workloads as workloadlib

QUIET_S = (2.0, 4.0)           # between fault windows
FAULT_S = (3.0, 6.0)           # length of a fault window
CONVERGE_TIMEOUT_S = 30.0      # after a heal, how long to wait for every member to catch up
HEAL_TIMEOUT_S = 60.0          # at the end: every member healthy again
WATCH_CATCHUP_S = 30.0         # at the end: watchers reach the final revision
FINAL_RPC_TIMEOUT_S = 10.0
LEASE_DRAIN_S = 20.0           # at the end: the run's leases expire (TTLs are 2-4 s)
PLANT_BUGS = ("local-reads", "no-fsync")
OUTPUTS = ("run.json", "driver.log", "history.jsonl", "final.json", "summary.txt",
           "timeline.html", "result.json", "cluster")


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python3 -m tools.jepsen",
                                description="Jepsen-style fault run against kvd or etcd.")
    p.add_argument("--server", choices=("kvd", "etcd"), default="kvd")
    p.add_argument("--binary", help="server binary (default: $KVD_BIN or build/bin/kvd; "
                   "/usr/bin/etcd)")
    p.add_argument("--nodes", type=int, default=3)
    p.add_argument("--time-limit", type=float, default=60.0, help="seconds of load")
    p.add_argument("--seed", type=int, help="default: random (printed)")
    p.add_argument("--workload", default="all",
                   help="comma-separated: register,append,watch,lease,lock | all")
    p.add_argument("--nemesis", default="all",
                   help="comma-separated nemesis names | all (those that apply) | none; "
                   "-name leaves one out: all,-snapshot-catchup")
    p.add_argument("--netns", action=argparse.BooleanOptionalAction, default=True,
                   help="one network namespace per member (needed for partitions)")
    p.add_argument("--concurrency", type=int, default=10, help="client threads")
    p.add_argument("--out", help="run directory (default: a new /tmp/kvd-jepsen-run-*)")
    p.add_argument("--plant-bug", choices=PLANT_BUGS,
                   help="kvd only, test-only: start every member with --kvd-plant-bug")
    p.add_argument("--op-timeout", type=float, default=clientlib.DEFAULT_TIMEOUT_S,
                   help="deadline of one client call, seconds")
    p.add_argument("--no-check", action="store_true", help="write the run, skip checkers")
    args = p.parse_args(argv)
    if args.seed is None:
        args.seed = int.from_bytes(os.urandom(4), "little")
    if args.plant_bug and args.server != "kvd":
        p.error("--plant-bug needs --server kvd")
    args.concurrency = max(1, args.concurrency)
    if args.binary:  # members start in their own directory
        args.binary = os.path.abspath(args.binary)
    if args.out:
        args.out = os.path.abspath(args.out)
    return args


def reproduce_command(args):
    cmd = ["/usr/bin/python3", "-m", "tools.jepsen", "--server", args.server,
           "--nodes", str(args.nodes), "--time-limit", f"{args.time_limit:g}",
           "--seed", str(args.seed), "--workload", args.workload, "--nemesis", args.nemesis,
           "--concurrency", str(args.concurrency), "--netns" if args.netns else "--no-netns"]
    if args.binary:
        cmd += ["--binary", args.binary]
    if args.plant_bug:
        cmd += ["--plant-bug", args.plant_bug]
    return shlex.join(cmd)


def select_workloads(spec):
    reg = workloadlib.registry()
    names = list(reg) if spec == "all" else [n.strip() for n in spec.split(",") if n.strip()]
    unknown = [n for n in names if n not in reg]
    if unknown or not names:
        raise SystemExit(f"unknown workload(s) {unknown}; known: {', '.join(reg)}")
    return [(n, reg[n]) for n in names]


def select_nemeses(spec, kind, netns):
    """[(name, class)] of the nemeses asked for; `all` = every one that applies to this
    server kind and network mode, `-name` leaves one out (`all,-kill-all`). Naming one
    that does not apply is an error."""
    if spec in ("none", ""):
        return []
    from . import nemesis as nemesislib
    reg = nemesislib.registry()

    def applies(cls):
        return kind in getattr(cls, "kinds", ("kvd", "etcd")) and (
            netns or not getattr(cls, "needs_netns", False))
    tokens = [n.strip() for n in spec.split(",") if n.strip()]
    excluded = {t[1:] for t in tokens if t.startswith("-")}
    unknown = sorted(excluded - set(reg))
    if unknown:
        raise SystemExit(f"unknown nemesis {unknown}; known: {', '.join(sorted(reg))}")
    names = [t for t in tokens if not t.startswith("-")]
    if "all" in names:
        return [(n, c) for n, c in reg.items() if applies(c) and n not in excluded]
    out = []
    for n in names:
        if n not in reg:
            raise SystemExit(f"unknown nemesis {n!r}; known: {', '.join(sorted(reg))}")
        if not applies(reg[n]):
            raise SystemExit(f"nemesis {n!r} does not apply to {kind}"
                             f"{'' if netns else ' without --netns'}")
        out.append((n, reg[n]))
    return out


class Logger:
    """Driver log: stdout and <out>/driver.log, with seconds since start."""

    def __init__(self, path):
        self._file = open(path, "a", encoding="utf-8")
        self._t0 = time.monotonic()
        self._lock = threading.Lock()

    def __call__(self, msg):
        line = f"[{time.monotonic() - self._t0:8.2f}] {msg}"
        with self._lock:
            print(line, flush=True)
            self._file.write(line + "\n")
            self._file.flush()

    def close(self):
        self._file.close()


class Run:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.out = Path(args.out) if args.out else Path(
            tempfile.mkdtemp(prefix=f"kvd-jepsen-run-{args.server}-"))
        self.out.mkdir(parents=True, exist_ok=True)
        for name in OUTPUTS:  # a reused --out holds only this run's files
            path = self.out / name
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            elif path.exists():
                path.unlink()
        self.log = Logger(self.out / "driver.log")
        self.prefix = f"jepsen-{args.seed}"
        self.workload_classes = select_workloads(args.workload)
        self.nemesis_classes = select_nemeses(args.nemesis, args.server, args.netns)
        self.cluster = None
        self.history = None
        self.nemeses = {}
        self.unrecovered = {}  # member -> why it did not serve again after the final heal

    # --- the whole run ------------------------------------------------------------------

    def execute(self):
        args = self.args
        from .cluster import Cluster
        extra = [f"--kvd-plant-bug={args.plant_bug}"] if args.plant_bug else []
        for _, cls in self.nemesis_classes:  # flags a nemesis needs to bite
            extra += list(getattr(cls, "cluster_flags", ()))
        (self.out / "run.json").write_text(json.dumps({
            "seed": args.seed, "server": args.server, "nodes": args.nodes,
            "time_limit": args.time_limit, "workloads": [n for n, _ in self.workload_classes],
            "nemeses": [n for n, _ in self.nemesis_classes], "netns": args.netns,
            "concurrency": args.concurrency, "plant_bug": args.plant_bug,
            "prefix": self.prefix, "command": reproduce_command(args)}, indent=1))
        self.log(f"seed {args.seed}; reproduce: {reproduce_command(args)}")
        self.log(f"run dir {self.out}; workloads {[n for n, _ in self.workload_classes]}; "
                 f"nemeses {[n for n, _ in self.nemesis_classes]}")
        with Cluster(args.server, size=args.nodes, workdir=self.out / "cluster",
                     netns=args.netns, binary=args.binary, extra_flags=extra,
                     log=self.log) as cluster:
            self.cluster = cluster
            if self.uses_disk_faults():
                from . import disk_nemesis
                disk_nemesis.prepare(cluster)  # every member under faultfs from the start
                self.log("members run under the faultfs shim (un-fsynced data is dropped "
                         "at every kill of a disk nemesis and at the final kill-all)")
            cluster.start()
            self.log(f"cluster up: {cluster.endpoints()}")
            self.history = historylib.History(self.out / "history.jsonl")
            try:
                self.load_phase()
                final = self.final_phase()
            finally:
                self.history.close()
            (self.out / "final.json").write_text(json.dumps(final, indent=1))
        return self.verdict()

    def uses_disk_faults(self):
        """kvd with a disk nemesis or the no-fsync bug: members run under faultfs, so a
        kill can drop what was not fsynced, as a power loss would."""
        if self.args.server != "kvd":
            return False
        return self.args.plant_bug == "no-fsync" or any(
            cls.__module__.endswith("disk_nemesis") for _, cls in self.nemesis_classes)

    def members(self):
        return [(m.name, m.client_endpoint) for m in self.cluster.members]

    def sub_rng(self):
        return random.Random(self.rng.getrandbits(64))

    # --- load and faults ----------------------------------------------------------------

    def load_phase(self):
        args = self.args
        clients_stop = threading.Event()
        nemesis_stop = threading.Event()
        ctx = workloadlib.Context(self.history, self.prefix, self.members(), clients_stop,
                                  timeout=args.op_timeout)
        workloads = [cls(ctx, self.sub_rng()) for _, cls in self.workload_classes]
        n_threads = max(args.concurrency, len(workloads))
        workers = [workloadlib.Worker(ctx, workloads[i % len(workloads)].name,
                                      self.sub_rng()) for i in range(n_threads)]
        nemesis_rng = self.sub_rng()
        self.nemeses = {name: cls(self.cluster, random.Random(nemesis_rng.getrandbits(64)))
                        for name, cls in self.nemesis_classes}
        for wl in workloads:
            wl.start()
        threads = []
        for i, w in enumerate(workers):
            wl = workloads[i % len(workloads)]
            t = threading.Thread(target=self.client_loop, args=(wl, w, clients_stop),
                                 name=f"client-{i}", daemon=True)
            t.start()
            threads.append(t)
        nem = threading.Thread(target=self.nemesis_loop, args=(nemesis_rng, nemesis_stop),
                               name="nemesis", daemon=True)
        nem.start()
        self.log(f"load: {n_threads} clients for {args.time_limit:g}s")
        time.sleep(args.time_limit)
        nemesis_stop.set()
        nem.join(timeout=FAULT_S[1] + 4 * CONVERGE_TIMEOUT_S + HEAL_TIMEOUT_S)
        if nem.is_alive():
            self.log("WARNING: nemesis thread did not finish its last heal in time")
        self.heal_everything()
        clients_stop.set()
        for t in threads:
            t.join(timeout=30)
        for w in workers:
            w.close()
        self.workloads = workloads
        self.log("load done")

    def client_loop(self, wl, worker, stop):
        while not stop.is_set():
            try:
                wl.step(worker)
            except Exception:
                self.log(f"client {worker.process} {wl.name}: {traceback.format_exc()}")
                stop.wait(0.5)
            # After an error back off a little (a member that refuses connections answers
            # at once: without this the history fills with failures during an outage).
            pause = (0, 0.01) if worker.last_type == "ok" else (0.05, 0.15)
            stop.wait(worker.rng.uniform(*pause))

    def nemesis_loop(self, rng, stop):
        if not self.nemeses:
            return
        order = []
        first_round = True
        while not stop.wait(rng.uniform(*QUIET_S)):
            if not order:  # every nemesis once, in a random order, then again
                order = sorted(self.nemeses)
                rng.shuffle(order)
                if first_round and "kill-leader" in order:
                    # every run measures the availability after a leader kill
                    order.remove("kill-leader")
                    order.append("kill-leader")
                first_round = False
            name = order.pop()
            nemesis = self.nemeses[name]
            invoked = self.history.now()  # start() can take seconds (kills, restarts)
            try:
                desc = nemesis.start() or {}
                self.history.nemesis("start", {"nemesis": name, "invoked": invoked, **desc})
                self.log(f"nemesis {name} start {desc}")
            except Exception as e:
                self.log(f"nemesis {name} start failed: {traceback.format_exc()}")
                self.history.nemesis("start", {"nemesis": name, "invoked": invoked,
                                               "error": repr(e)})
            stop.wait(rng.uniform(*FAULT_S))
            heal_time = time.monotonic()  # convergence counts from the start of the heal
            try:
                desc = nemesis.stop() or {}
            except Exception as e:
                self.log(f"nemesis {name} stop failed: {traceback.format_exc()}")
                desc = {"error": repr(e)}
                self.safe_heal(nemesis)
            self.history.nemesis("stop", {"nemesis": name, **desc})
            self.log(f"nemesis {name} stop {desc}")
            self.converge(heal_time)

    def safe_heal(self, nemesis):
        try:
            nemesis.heal_all()
        except Exception:
            self.log(f"heal_all failed: {traceback.format_exc()}")

    def heal_everything(self):
        """Heal every nemesis, the network, and start/resume every member; wait healthy."""
        for nemesis in self.nemeses.values():
            self.safe_heal(nemesis)
        c = self.cluster
        try:
            c.heal()
        except Exception:
            self.log(f"network heal failed: {traceback.format_exc()}")
        for m in c.members:
            if m.removed:
                try:
                    m.rejoin(c)
                except Exception:
                    self.log(f"rejoin {m.name} failed: {traceback.format_exc()}")
            elif m.paused:
                m.resume()
            elif not m.alive():
                m.start()
        self.unrecovered.update(self.wait_members("after the final heal"))

    def wait_members(self, when, timeout=HEAL_TIMEOUT_S):
        """Wait (bounded) until every member serves. A member that does not (it crashed
        on restart, say) is a finding, not a reason to stop: returns {name: error}, and
        the run goes on with the others as long as they have a leader."""
        c = self.cluster
        deadline = time.monotonic() + timeout
        errors = {}
        for m in c.members:
            if m.removed:
                continue
            try:
                m.wait_ready(max(0.5, deadline - time.monotonic()))
            except RuntimeError as e:
                errors[m.name] = str(e).splitlines()[0]
        if errors:
            self.log(f"NOT RECOVERED {when}: {errors}")
            self.history.nemesis("unrecovered", {"when": when, "members": errors})
        c.wait_leader(max(5.0, deadline - time.monotonic()))
        self.log("cluster healthy" if not errors else "cluster has a leader")
        return errors

    def converge(self, heal_time):
        """After a heal: a marker write, then every member must serve a serializable read
        at a revision >= the marker's. Logs `converged` with the seconds since the heal."""
        marker = self.ctx_key("marker")
        cl = clientlib.Client(self.members(), self.sub_rng(), timeout=1.0)
        deadline = heal_time + CONVERGE_TIMEOUT_S
        rev = None
        try:
            while time.monotonic() < deadline and rev is None:
                try:
                    rev = cl.put(marker.encode(), str(time.time_ns()).encode()).header.revision
                except clientlib.OpError:
                    time.sleep(0.05)
            pending = {name for name, _ in self.members()} if rev else set()
            while pending and time.monotonic() < deadline:
                for name in sorted(pending):
                    cl.use(name)
                    try:
                        r = cl.range(marker.encode(), serializable=True, timeout=0.5)
                        if r.header.revision >= rev:
                            pending.discard(name)
                    except clientlib.OpError:
                        pass
                if pending:
                    time.sleep(0.05)
        finally:
            cl.close()
        seconds = round(time.monotonic() - heal_time, 3)
        if rev is not None and not pending:
            value = {"seconds": seconds, "revision": rev}
        else:
            value = {"seconds": None, "timeout": CONVERGE_TIMEOUT_S, "revision": rev,
                     "lagging": sorted(pending) if rev else "no marker write succeeded"}
        self.history.nemesis("converged", value)
        self.log(f"converged {value}")

    def ctx_key(self, *parts):
        return "/".join((self.prefix,) + parts)

    # --- the end state ------------------------------------------------------------------

    def final_phase(self):
        cl = clientlib.Client(self.members(), self.sub_rng(), timeout=FINAL_RPC_TIMEOUT_S)
        try:
            rev = self.retry(lambda: cl.range(self.prefix.encode() + b"/",
                                              clientlib.prefix_end(self.prefix.encode() + b"/"),
                                              ).header.revision)
            t0 = time.monotonic()
            for wl in self.workloads:
                wl.finish(rev, WATCH_CATCHUP_S)
            t1 = time.monotonic()
            final = {"prefix": self.prefix, "kind": self.args.server}
            self.drain_leases(cl)
            self.log(f"watchers caught up to revision {rev} in {t1 - t0:.1f}s, leases "
                     f"expired in {time.monotonic() - t1:.1f}s")
            # TTLs before the kv snapshot: a lease found dead here must have no key there.
            leases = self.lease_ttls(cl)
            final.update(self.snapshot(cl))
            final["leases"] = leases
            self.log(f"final: revision {final['revision']}, {len(final['kv'])} keys, "
                     f"{len(final['events'])} events, {len(final['leases'])} leases")
            final["after_kill_all"] = self.after_kill_all()
            final["unrecovered"] = self.unrecovered
            return final
        finally:
            cl.close()

    def retry(self, fn, timeout=HEAL_TIMEOUT_S):
        deadline = time.monotonic() + timeout
        while True:
            try:
                return fn()
            except clientlib.OpError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def snapshot(self, cl):
        """kv (linearizable range of the prefix), events from revision 1 to that range's
        revision, and each member's revision and HashKV at a revision all have applied."""
        key = self.prefix.encode() + b"/"
        end = clientlib.prefix_end(key)
        resp = self.retry(lambda: cl.range(key, end))
        revision = resp.header.revision
        kv = [clientlib.kv_json(x) for x in resp.kvs]
        events, complete = self.events(cl, revision)
        events = [e for e in events if e["key"].startswith(self.prefix + "/")]
        members = {}
        for m in self.cluster.members:
            name, endpoint = m.name, m.client_endpoint
            info = {"endpoint": endpoint}
            if not m.alive() or m.removed:
                info["error"] = "not running"
                members[name] = info
                continue
            cl.use(name)
            deadline = time.monotonic() + HEAL_TIMEOUT_S
            while time.monotonic() < deadline:  # until it applied `revision`
                try:
                    r = cl.range(key, end, serializable=True)
                    if r.header.revision >= revision:
                        break
                except clientlib.OpError:
                    pass
                time.sleep(0.1)
            try:
                h = self.retry(lambda: cl.hashkv(revision), timeout=10)
                info["hashkv"] = {"hash": h.hash, "revision": revision,
                                  "compact_revision": h.compact_revision}
                info["revision"] = self.retry(lambda: cl.status(), timeout=10).header.revision
            except clientlib.OpError as e:
                info["error"] = e.error
            members[name] = info
        return {"revision": revision, "members": members, "kv": kv, "events": events,
                "events_complete": complete}

    def events(self, cl, revision):
        """Every event from revision 1 through `revision`: a watch of the whole key space,
        where every revision has an event (nemeses write outside the run's prefix)."""
        events = []

        def requests(done):
            yield etcdrpc.WatchRequest(create_request=etcdrpc.WatchCreateRequest(
                key=b"\0", range_end=b"\0", start_revision=1))
            done.wait(FINAL_RPC_TIMEOUT_S * 3)

        for attempt in range(3):
            events = []
            done = threading.Event()
            # Done at the first event of `revision` or later. (Not a progress request:
            # etcd 3.4 answers one before the replay is done.)
            call = etcdrpc.WatchStub(cl.channel()).Watch(requests(done),
                                                         timeout=FINAL_RPC_TIMEOUT_S * 3)
            try:
                for resp in call:
                    events += [clientlib.event_json(e) for e in resp.events]
                    if (events and events[-1]["revision"] >= revision) or revision <= 1:
                        return [e for e in events if e["revision"] <= revision], True
            except grpc.RpcError as e:
                self.log(f"final watch: {clientlib.describe(e)}")
                cl.switch()
            finally:
                done.set()
                call.cancel()
        self.log(f"WARNING: final watch incomplete ({len(events)} events, want revision "
                 f"{revision})")
        return events, False

    def granted_leases(self):
        """Ids of every lease granted ok in the history (only `grant` lines are parsed:
        a long run's history is large)."""
        ids = set()
        with open(self.history.path, encoding="utf-8") as f:
            for line in f:
                if '"f":"grant"' in line and '"type":"ok"' in line:
                    e = json.loads(line)
                    if e.get("f") == "grant" and e.get("type") == "ok":
                        ids.add(e["value"])
        return ids

    def drain_leases(self, cl, timeout=LEASE_DRAIN_S):
        """Wait (bounded) until no lease of the run is alive: nobody keeps them alive any
        more, so they expire, and the final state stops changing."""
        granted = self.granted_leases()
        deadline = time.monotonic() + timeout
        alive = set()
        while time.monotonic() < deadline:
            try:
                alive = {l.ID for l in cl.lease_leases().leases} & granted
            except clientlib.OpError:
                alive = {"unknown"}
            if not alive:
                return
            time.sleep(0.5)
        self.log(f"{len(alive)} leases still alive after {timeout}s")

    def lease_ttls(self, cl):
        ids = self.granted_leases()
        try:
            ids |= {l.ID for l in self.retry(lambda: cl.lease_leases()).leases}
        except clientlib.OpError as e:
            self.log(f"LeaseLeases: {e.error}")
        out = {}
        for i in sorted(ids):
            try:
                r = self.retry(lambda: cl.lease_ttl(i), timeout=10)
                out[str(i)] = {"ttl": r.TTL}
            except clientlib.OpError as e:
                out[str(i)] = {"ttl": None, "error": e.error}
        return out

    def after_kill_all(self):
        """SIGKILL every member at once (members under faultfs also lose everything they
        had not fsynced), restart them all, and snapshot again."""
        c = self.cluster
        shimmed = []
        if self.uses_disk_faults():
            from . import disk_nemesis
            shimmed = [m for m in c.members if disk_nemesis.shim_loaded(m)]
        for m in c.members:
            if m.alive():
                m.proc.send_signal(signal.SIGKILL)
        for m in c.members:
            m.kill()  # waits for the death
        dropped = {}
        if shimmed:
            from tools.faultfs import control
            for m in shimmed:
                r = control.drop_unsynced(m.data_dir, disk_nemesis.state_dir(m))
                dropped[m.name] = {"bytes_truncated": sum(r["truncated"].values()),
                                   "files_removed": len(r["removed"]),
                                   "renames_undone": len(r["renames_undone"])}
        self.log(f"killed every member at once; dropped un-fsynced data: {dropped or 'no'}; "
                 "restarting")
        for m in c.members:
            if not m.removed:
                m.start()
        unrecovered = self.wait_members("after the final kill-all")
        self.unrecovered.update({f"{k} (after kill-all)": v for k, v in unrecovered.items()})
        cl = clientlib.Client(self.members(), self.sub_rng(), timeout=FINAL_RPC_TIMEOUT_S)
        try:
            snap = self.snapshot(cl)
        finally:
            cl.close()
        snap["dropped_unsynced"] = dropped
        snap["unrecovered"] = unrecovered
        self.log(f"after kill-all: revision {snap['revision']}, {len(snap['kv'])} keys, "
                 f"{len(snap['events'])} events")
        return snap

    # --- verdict ------------------------------------------------------------------------

    def verdict(self):
        if self.args.no_check:
            self.log("checkers skipped (--no-check)")
            return None
        from . import check, report
        result = check.check_run(str(self.out))
        report.write_report(str(self.out), result)
        return result


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    # SIGTERM (a test timeout, kill) unwinds like Ctrl-C, so the cluster is torn down.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    run = Run(args)
    try:
        result = run.execute()
    except BaseException:
        run.log(f"run failed: {traceback.format_exc()}")
        run.log(f"seed {args.seed}; reproduce: {reproduce_command(args)}")
        raise
    if result is None:
        return 0
    summary = run.out / "summary.txt"
    if summary.exists():
        print(summary.read_text())
    valid = bool(getattr(result, "valid", False))
    if run.unrecovered:  # a member that never served again fails the run by itself
        run.log(f"INVALID: members did not recover: {run.unrecovered}")
        valid = False
    run.log(f"{'VALID' if valid else 'INVALID'}: {run.out}")
    run.log(f"seed {args.seed}; reproduce: {reproduce_command(args)}")
    return 0 if valid else 1
