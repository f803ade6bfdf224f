"""Process, network, clock and membership nemeses of the fault harness, and the registry.

A nemesis injects one kind of fault into a running Cluster (tools/jepsen/cluster.py):
start() injects it and returns a JSON-able description ({"targets": [member names], ...}),
stop() heals it (afterwards every member runs, is connected and serves), heal_all() is an
idempotent best-effort heal of everything a nemesis can have done. All random choices come
from the random.Random passed in, so a seed replays the same faults.

Partitions drop packets with nftables inside the member namespaces (Cluster.partition),
not with a proxy on the peer links: the servers keep their real peer connections, TCP
sees real loss (retransmits, stalls, resets after healing), and both etcd and kvd are cut
the same way without knowing about it. They need Cluster(netns=True).

clock-skew preloads Debian's libfaketime into one kvd member (restarted with it): Go's
etcd reads the clock through the vDSO, not libc, so it is "kvd" only.

snapshot-catchup cuts one follower off (partition, or kill without netns) and writes
filler puts (key "jepsen-nemesis/filler", outside any workload prefix) until the leader
must have compacted its log past the follower, so healing needs a snapshot: 2 x the
--snapshot-count of the cluster's flags + the entries the leader keeps for slow followers
(etcd 3.4: 5000; kvd: min(5000, snapshot count)) + 100. start() returns once they are
written. Start the cluster with a small --snapshot-count (SnapshotCatchup.cluster_flags)
or the filler is long. Before the heal the follower's TCP connections are reset: the
appends the leader streamed into them would otherwise arrive late and spare it the
snapshot. (etcd's leader does not compact for 30 s after sending a snapshot, so rounds
closer than that may not need one.)
"""

import importlib
import os
import signal
import threading
import time

import grpc
from etcd3 import etcdrpc

RECOVER_TIMEOUT_S = 30.0  # stop(): a healed member serves again within this
FILLER_KEY = b"jepsen-nemesis/filler"
FILLER_THREADS = 8
FILLER_TIMEOUT_S = 120.0
LIBFAKETIME = os.environ.get("LIBFAKETIME",
                             "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1")


class Nemesis:
    name = None
    kinds = ("kvd", "etcd")
    needs_netns = False
    cluster_flags = ()  # server flags the cluster should start with for this nemesis to bite

    def __init__(self, cluster, rng):
        if cluster.kind not in self.kinds:
            raise ValueError(f"nemesis {self.name} does not apply to {cluster.kind}")
        if self.needs_netns and not cluster.netns:
            raise ValueError(f"nemesis {self.name} needs Cluster(netns=True)")
        self.cluster = cluster
        self.rng = rng
        self.active = False

    def __repr__(self):
        return f"<nemesis {self.name}>"

    def start(self):
        raise NotImplementedError

    def stop(self):
        raise NotImplementedError

    def heal_all(self):
        """Idempotent best-effort heal: network, pauses, removed and dead members."""
        c = self.cluster
        self._heal_own()
        if c.closed:
            return {}
        if c.netns:
            c.heal()
        for m in c.members:
            if m.paused:
                m.resume()
        for m in c.members:
            if m.removed:
                m.rejoin(c, wait=False)
            elif not m.alive():
                m.start()
        self.active = False
        return self._recover(c.members)

    def _heal_own(self):
        """Undo this nemesis' own state (threads, environment); subclasses."""

    # helpers
    def _pick(self, members):
        return self.rng.choice(sorted(members, key=lambda m: m.name))

    def _leader_or_random(self):
        try:
            lead = self.cluster.wait_leader(5.0)
        except RuntimeError:
            lead = None
        return lead or self._pick(self.cluster.live_members())

    def _follower(self):
        lead = self._leader_or_random()
        return self._pick([m for m in self.cluster.live_members() if m is not lead])

    def _recover(self, members, timeout=RECOVER_TIMEOUT_S):
        """Wait until `members` serve linearizable reads; a description of the outcome
        (a member that does not come back is a finding, reported, not raised)."""
        deadline = time.monotonic() + timeout
        out = {"ready": True}
        for m in members:
            try:
                m.wait_ready(max(0.5, deadline - time.monotonic()))
            except RuntimeError as e:
                out["ready"] = False
                out.setdefault("errors", {})[m.name] = str(e).splitlines()[0]
                self.cluster.log(f"nemesis {self.name}: {m.name} did not recover: {e}")
        return out


# --- process faults ---------------------------------------------------------------------


class Kill(Nemesis):
    """kill -9 a random member; stop() restarts it."""
    name = "kill"

    def choose(self):
        return [self._pick(self.cluster.live_members())]

    def start(self):
        self.targets = self.choose()
        for m in self.targets:
            m.kill(signal.SIGKILL)
        self.active = True
        return {"targets": [m.name for m in self.targets], "signal": "KILL"}

    def stop(self):
        for m in self.targets:
            if not m.alive():
                m.start()
        self.active = False
        return {"targets": [m.name for m in self.targets], **self._recover(self.targets)}


class KillLeader(Kill):
    name = "kill-leader"

    def choose(self):
        return [self._leader_or_random()]


class KillAll(Kill):
    """Every member killed at once, then all restarted (durability of acknowledged writes)."""
    name = "kill-all"

    def choose(self):
        return list(self.cluster.live_members())


class Pause(Nemesis):
    """SIGSTOP a random member; stop() sends SIGCONT."""
    name = "pause"

    def choose(self):
        return self._pick(self.cluster.live_members())

    def start(self):
        self.target = self.choose()
        self.target.pause()
        self.active = True
        return {"targets": [self.target.name], "signal": "STOP"}

    def stop(self):
        self.target.resume()
        self.active = False
        return {"targets": [self.target.name], **self._recover([self.target])}


class PauseLeader(Pause):
    name = "pause-leader"

    def choose(self):
        return self._leader_or_random()


# --- network partitions -----------------------------------------------------------------


class Partition(Nemesis):
    """Base: start() cuts the cluster into groups, stop() heals."""
    needs_netns = True

    def groups(self):
        raise NotImplementedError

    def start(self):
        self.cut = self.groups()
        self.cluster.partition(self.cut)
        self.active = True
        names = [[m.name for m in g] for g in self.cut]
        return {"targets": self.targets_of(names), "groups": names}

    def targets_of(self, names):
        return min(names, key=len)  # the minority side

    def stop(self):
        self.cluster.heal()
        self.active = False
        return {"healed": True, **self._recover(self.cluster.members)}

    def shuffled(self):
        members = sorted(self.cluster.members, key=lambda m: m.name)
        self.rng.shuffle(members)
        return members


class PartitionHalf(Partition):
    """A random majority and minority."""
    name = "partition-half"

    def groups(self):
        members = self.shuffled()
        k = len(members) // 2 + 1
        return [members[:k], members[k:]]


class PartitionLeader(Partition):
    """The leader alone against the rest."""
    name = "partition-leader"

    def groups(self):
        lead = self._leader_or_random()
        return [[lead], [m for m in self.cluster.members if m is not lead]]


class PartitionBridge(Partition):
    """Two halves that cannot talk to each other, and one member (the bridge) that talks
    to both, as Jepsen's bridge: no side has a majority of direct links."""
    name = "partition-bridge"

    def start(self):
        members = self.shuffled()
        mid = len(members) // 2
        self.bridge_member = members[mid]
        left, right = members[:mid], members[mid + 1:]
        self.cluster.partition([left, right])  # the bridge is in no group: linked to all
        self.active = True
        return {"targets": [self.bridge_member.name],
                "groups": [[m.name for m in left], [m.name for m in right]],
                "bridge": self.bridge_member.name}


class PartitionFlap(Partition):
    """Random majority/minority partitions switched on and off every 0.3-2 s until stop().
    The schedule is drawn from the rng at start(); a thread plays it."""
    name = "partition-flap"
    STEPS = 400

    def start(self):
        schedule = []
        for _ in range(self.STEPS):
            members = self.shuffled()
            k = len(members) // 2 + 1
            schedule.append(([members[:k], members[k:]], self.rng.uniform(0.3, 2.0),
                             self.rng.uniform(0.3, 2.0)))
        self.stop_event = threading.Event()
        self.flaps = []
        self.t0 = time.monotonic()
        self.thread = threading.Thread(target=self._play, args=(schedule,), daemon=True,
                                       name="partition-flap")
        self.thread.start()
        self.active = True
        return {"targets": [], "schedule": [[[m.name for m in g] for g in s[0]]
                                            for s in schedule[:5]] + ["..."]}

    def _play(self, schedule):
        for groups, cut_s, heal_s in schedule:
            if self.stop_event.is_set():
                return
            try:
                self.cluster.partition(groups)
            except Exception as e:  # the cluster is closing
                self.cluster.log(f"partition-flap: {e}")
                return
            self.flaps.append([round(time.monotonic() - self.t0, 3),
                               [[m.name for m in g] for g in groups]])
            if self.stop_event.wait(cut_s):
                return
            self.cluster.heal()
            if self.stop_event.wait(heal_s):
                return

    def _heal_own(self):
        if getattr(self, "thread", None) is not None:
            self.stop_event.set()
            self.thread.join(timeout=10)
            self.thread = None

    def stop(self):
        self._heal_own()
        out = super().stop()
        return {"flaps": self.flaps, **out}


# --- clock ------------------------------------------------------------------------------


class ClockSkew(Nemesis):
    """One member restarted under libfaketime: a clock offset of +-5..300 s, or a clock
    running at 0.5x..2x (timers too); stop() restarts it on the real clock. The library
    is put in front of whatever LD_PRELOAD the member already has (the faultfs shim of
    the disk nemeses), which stop() restores."""
    name = "clock-skew"
    kinds = ("kvd",)

    def start(self):
        self.target = t = self._pick(self.cluster.live_members())
        if self.rng.random() < 0.5:
            faketime = f"{self.rng.choice('+-')}{self.rng.randint(5, 300)}s"
        else:
            faketime = f"+0 x{self.rng.choice([0.5, 0.75, 1.5, 2.0])}"
        self.saved_env = {k: t.extra_env.get(k) for k in ("LD_PRELOAD", "FAKETIME",
                                                          "FAKETIME_NO_CACHE")}
        preload = ":".join(p for p in (LIBFAKETIME, self.saved_env["LD_PRELOAD"]) if p)
        t.extra_env.update(LD_PRELOAD=preload, FAKETIME=faketime, FAKETIME_NO_CACHE="1")
        t.restart(wait=False)
        self.active = True
        return {"targets": [t.name], "faketime": faketime, **self._recover([t])}

    def _heal_own(self):
        t = getattr(self, "target", None)
        saved = getattr(self, "saved_env", None)
        if t is None or saved is None:
            return
        for k, v in saved.items():
            if v is None:
                t.extra_env.pop(k, None)
            else:
                t.extra_env[k] = v
        self.saved_env = None
        if t.alive():
            t.restart(wait=False)

    def stop(self):
        self._heal_own()
        self.active = False
        return {"targets": [self.target.name], **self._recover([self.target])}


# --- snapshots and membership -----------------------------------------------------------


def snapshot_count(flags):
    """--snapshot-count from a flag list ("--snapshot-count N" or "--snapshot-count=N")."""
    flags = list(flags)
    value = 100000  # etcd's and kvd's default
    for i, f in enumerate(flags):
        if f.startswith("--snapshot-count="):
            value = int(f.split("=", 1)[1])
        elif f == "--snapshot-count" and i + 1 < len(flags):
            value = int(flags[i + 1])
    return value


class SnapshotCatchup(Nemesis):
    """A follower cut off (netns: partitioned; loopback: killed) while filler writes push
    the leader's log compaction past it: start() returns when they are written (seconds:
    etcd needs 5000 more than kvd). stop() heals and waits until it serves again, which
    it can only do after installing a snapshot."""
    name = "snapshot-catchup"
    cluster_flags = ("--snapshot-count", "200")

    def filler_writes(self):
        count = snapshot_count(self.cluster.extra_flags)
        keep = 5000 if self.cluster.kind == "etcd" else min(5000, count)
        # A snapshot (and compaction) happens every `count` applies; two periods are
        # always enough to compact past an index `keep` behind.
        return 2 * count + keep + 100

    def start(self):
        c = self.cluster
        self.target = self._follower()
        if c.netns:
            c.partition([[self.target], [m for m in c.members if m is not self.target]])
            how = "partition"
        else:
            self.target.kill()
            how = "kill"
        self.total = self.filler_writes()
        self.done = 0
        self.errors = 0
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        self.threads = [
            threading.Thread(target=self._fill, daemon=True, name=f"filler-{i}")
            for i in range(FILLER_THREADS)
        ]
        t0 = time.monotonic()
        self.deadline = t0 + FILLER_TIMEOUT_S
        for t in self.threads:
            t.start()
        self.active = True
        # The filler is part of the fault: start() returns once it is written, so that
        # stop() heals at once (convergence is measured from the heal).
        for t in self.threads:
            t.join(timeout=max(0.1, self.deadline - time.monotonic()))
        return {"targets": [self.target.name], "how": how, "filler_writes": self.total,
                "filler_written": self.done, "filler_errors": self.errors,
                "filler_seconds": round(time.monotonic() - t0, 3)}

    def _take(self):
        with self.lock:
            if self.done >= self.total:
                return False
            self.done += 1
            return True

    def _fill(self):
        c = self.cluster
        others = [m for m in c.members if m is not self.target]
        i = 0
        while (not self.stop_event.is_set() and not c.closed
               and time.monotonic() < self.deadline):
            if not self._take():
                return
            m = others[i % len(others)]
            i += 1
            try:
                with m.channel() as ch:
                    kv = etcdrpc.KVStub(ch)
                    while True:  # a batch on one channel
                        kv.Put(etcdrpc.PutRequest(key=FILLER_KEY, value=b"x" * 16), timeout=5)
                        if self.stop_event.is_set() or not self._take():
                            return
            except grpc.RpcError:
                with self.lock:
                    self.done -= 1  # that one did not count
                    self.errors += 1
                time.sleep(0.1)

    def _heal_own(self):
        if getattr(self, "threads", None):
            self.stop_event.set()
            for t in self.threads:
                t.join(timeout=10)
            self.threads = []

    def stop(self):
        written = self.done
        self._heal_own()
        c = self.cluster
        if c.netns:
            # The leader streamed appends into the cut TCP connections; delivered late,
            # they would spare the follower the snapshot. Drop them with the connections.
            c.reset_connections(self.target)
        c.heal()
        if not self.target.alive():
            self.target.start()
        self.active = False
        return {"targets": [self.target.name], "filler_written": written,
                "filler_errors": self.errors, **self._recover([self.target])}


class MemberChange(Nemesis):
    """A follower removed (MemberRemove, killed) at start(); at stop() its data dir is
    wiped, it is added back (MemberAdd) and restarted with --initial-cluster-state
    existing."""
    name = "member-change"

    def start(self):
        self.target = self._follower()
        self.target.leave(self.cluster)
        self.active = True
        return {"targets": [self.target.name], "removed": True}

    def stop(self):
        self.target.rejoin(self.cluster, wait=False)
        self.active = False
        return {"targets": [self.target.name], "added": True, "id": f"{self.target.id:x}",
                **self._recover([self.target])}


NEMESES = [
    Kill, KillLeader, KillAll, Pause, PauseLeader, PartitionHalf, PartitionLeader,
    PartitionBridge, PartitionFlap, ClockSkew, SnapshotCatchup, MemberChange
]


def registry():
    """{name: class} of every nemesis: these, and tools/jepsen/disk_nemesis.NEMESES (a
    list of classes or a dict) when that module exists."""
    out = {cls.name: cls for cls in NEMESES}
    try:
        disk = importlib.import_module(f"{__package__}.disk_nemesis")
    except ModuleNotFoundError as e:
        if e.name != f"{__package__}.disk_nemesis":
            raise  # a broken import inside it is an error, not an absent module
        return out
    extra = disk.NEMESES
    out.update(extra if isinstance(extra, dict) else {cls.name: cls for cls in extra})
    return out


def applicable(cluster):
    """Names of the nemeses that apply to this cluster (server kind, network mode)."""
    return sorted(name for name, cls in registry().items()
                  if cluster.kind in cls.kinds and (cluster.netns or not cls.needs_netns))
