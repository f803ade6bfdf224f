"""Cluster runner of the fault harness: N real kvd or etcd processes with etcd's flags.

Two network modes:
  loopback (netns=False)  every member on 127.0.0.1, ports picked at run time.
  netns    (netns=True)   one network namespace per member, each with a veth to a Linux
                          bridge this cluster creates in the root namespace (the bridge has
                          the .1 address of a private /24 picked so it collides with no
                          existing route). Members listen on their namespace address;
                          clients (the harness) reach them from the root namespace through
                          the bridge, as Jepsen's control node does. Partitions are nftables
                          rules inside the member namespaces (see Cluster.partition).

Every process started here runs under `setpriv --pdeathsig KILL`, spawned from one
long-lived thread (the death signal follows the spawning thread, not the process), so
members die with the harness even when it is SIGKILLed. close() kills them and deletes
namespaces, veths and the bridge; it runs at exit too, and a new Cluster sweeps leftovers
of harness processes that died without closing (names carry the owner's pid).

Every wait is bounded.
"""

import atexit
import concurrent.futures
import fcntl
import ipaddress
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import weakref
from pathlib import Path

import grpc
from etcd3 import etcdrpc

REPO_ROOT = Path(__file__).resolve().parents[2]
ETCD_BIN = "/usr/bin/etcd"

READY_TIMEOUT_S = 20.0  # a member serves a linearizable read within this after start
STOP_TIMEOUT_S = 10.0  # SIGTERM -> exit; then SIGKILL
RPC_TIMEOUT_S = 2.0
CMD_TIMEOUT_S = 20.0  # one ip/nft command
MEMBER_CHANGE_TIMEOUT_S = 30.0  # MemberAdd/Remove retried (etcd: "unhealthy cluster")
LOG_TAIL_LINES = 40

# Names: namespaces "kvdj-<pid>-<seq>-n<i>", links "kj<pid>-<seq>[-<i>]" (<= 15 chars).
NETNS_RE = re.compile(r"^kvdj-(\d+)-")
LINK_RE = re.compile(r"^kj(\d+)-")
NFT_TABLE = "kvdjepsen"
# Private /24s are picked from 10.100.0.0 - 10.199.255.0, under this lock (parallel runs).
SUBNET_LOCK = "/run/kvd-jepsen.lock"
RESERVED_PORTS = {2379, 2380}

_seq = 0
_seq_lock = threading.Lock()
_open_clusters = weakref.WeakSet()


def _next_seq():
    global _seq
    with _seq_lock:
        _seq += 1
        return _seq


# --- process spawning ------------------------------------------------------------------

# PR_SET_PDEATHSIG fires when the THREAD that forked the child exits. A nemesis or driver
# thread may start members and then end; spawning from this one idle-forever worker keeps
# members alive exactly as long as the harness process.
_spawner = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="spawner")


def spawn(argv, **popen_kwargs):
    """subprocess.Popen(setpriv --pdeathsig KILL -- argv) from the long-lived spawner."""
    prefix = ["setpriv", "--pdeathsig", "KILL", "--"]
    return _spawner.submit(subprocess.Popen, prefix + list(argv), **popen_kwargs).result()


def run(argv, check=True, timeout=CMD_TIMEOUT_S, input=None):
    """Run a short command (ip, nft); returns CompletedProcess; raises with its stderr."""
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, input=input)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({r.returncode}): {r.stderr.strip()}")
    return r


def free_ports(count, rng=random.SystemRandom()):
    """`count` distinct loopback ports that are free now, picked at random BELOW the
    kernel's ephemeral range: a member's port, free while it is down, is then never taken
    by some outgoing connection before the member restarts."""
    low, high = 10000, 32768
    try:
        eph_low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
        high = min(high, eph_low)
    except (OSError, ValueError, IndexError):
        pass
    ports = []
    for _ in range(1000 * count):
        if len(ports) == count:
            return ports
        port = rng.randrange(low, high)
        if port in RESERVED_PORTS or port in ports:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        ports.append(port)
    raise RuntimeError("no free ports")


def tail(path, lines=LOG_TAIL_LINES):
    try:
        text = Path(path).read_text(errors="replace")
    except OSError as e:
        return f"<no log: {e}>"
    return "\n".join(text.splitlines()[-lines:])


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_leftovers(log=None):
    """Delete namespaces and links named after harness processes that no longer run
    (a harness SIGKILLed before close()). Returns the names it deleted."""
    deleted = []
    for ns in list_netns():
        m = NETNS_RE.match(ns)
        if m and not _pid_alive(int(m.group(1))):
            _delete_netns(ns)
            deleted.append(ns)
    for link in list_links():
        m = LINK_RE.match(link)
        if m and not _pid_alive(int(m.group(1))):
            run(["ip", "link", "del", link], check=False)
            deleted.append(link)
    if deleted and log:
        log(f"swept leftovers of dead harness runs: {' '.join(deleted)}")
    return deleted


def list_netns():
    r = run(["ip", "-j", "netns", "list"], check=False)
    if r.returncode != 0 or not r.stdout.strip():
        return []
    return [e["name"] for e in json.loads(r.stdout)]


def list_links():
    r = run(["ip", "-j", "link", "show"], check=False)
    if r.returncode != 0 or not r.stdout.strip():
        return []
    return [e["ifname"] for e in json.loads(r.stdout)]


def _delete_netns(ns):
    """Kill whatever still runs in the namespace, then delete it."""
    r = run(["ip", "netns", "pids", ns], check=False)
    for pid in r.stdout.split():
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass
    run(["ip", "netns", "del", ns], check=False)


def _used_networks():
    """Every IPv4 network of a route or an address on this host."""
    nets = []
    r = run(["ip", "-j", "-4", "route", "show", "table", "all"], check=False)
    for e in json.loads(r.stdout or "[]"):
        dst = e.get("dst", "")
        if dst == "default":
            continue
        try:
            nets.append(ipaddress.ip_network(dst, strict=False))
        except ValueError:
            pass
    r = run(["ip", "-j", "-4", "addr", "show"], check=False)
    for link in json.loads(r.stdout or "[]"):
        for a in link.get("addr_info", []):
            nets.append(ipaddress.ip_network(f"{a['local']}/{a['prefixlen']}", strict=False))
    return nets


def _pick_subnet(seed):
    used = _used_networks()
    for k in range(100 * 256):
        n = (seed + k) % (100 * 256)
        net = ipaddress.ip_network(f"10.{100 + n // 256}.{n % 256}.0/24")
        if not any(net.overlaps(u) for u in used):
            return net
    raise RuntimeError("no free private /24 in 10.100.0.0/9")


@atexit.register
def _close_all():
    for c in list(_open_clusters):
        try:
            c.close()
        except Exception:  # at exit: clean up what can be cleaned
            pass


# --- member ----------------------------------------------------------------------------


class Member:
    """One server process: its addresses, data dir, log file, environment and lifecycle."""

    def __init__(self, cluster, index, ip, client_port, peer_port, netns=None):
        self.cluster = cluster
        self.index = index
        self.name = f"n{index + 1}"
        self.id = None  # raft member id, known once it answered a Status
        self.ip = ip
        self.client_port = client_port
        self.peer_port = peer_port
        self.netns = netns
        self.data_dir = str(Path(cluster.workdir) / f"{self.name}.data")
        self.log_path = str(Path(cluster.workdir) / f"{self.name}.log")
        self.extra_env = {}
        self.extra_flags = []
        self.proc = None
        self.paused = False
        self.starts = 0
        self.joining = False  # next start joins an existing cluster (after MemberAdd)
        self.removed = False  # MemberRemove'd, not added back yet

    def __repr__(self):
        return f"Member({self.name} {self.client_endpoint})"

    @property
    def client_endpoint(self):
        return f"{self.ip}:{self.client_port}"

    @property
    def client_url(self):
        return f"http://{self.ip}:{self.client_port}"

    @property
    def peer_url(self):
        return f"http://{self.ip}:{self.peer_port}"

    def argv(self):
        state = "new" if self.starts == 0 and not self.joining else "existing"
        c = self.cluster
        return [
            c.binary,
            "--name", self.name,
            "--data-dir", self.data_dir,
            "--listen-client-urls", self.client_url,
            "--advertise-client-urls", self.client_url,
            "--listen-peer-urls", self.peer_url,
            "--initial-advertise-peer-urls", self.peer_url,
            "--initial-cluster", c.initial_cluster(),
            "--initial-cluster-state", state,
            "--initial-cluster-token", c.token,
            "--heartbeat-interval", "100",
            "--election-timeout", "1000",
            *c.extra_flags,
            *self.extra_flags,
        ]  # yapf: disable

    def start(self):
        """(Re)start with the same flags; returns once the process runs (not yet serving:
        see wait_ready). extra_env and extra_flags apply to this start."""
        if self.alive():
            raise RuntimeError(f"{self.name} is already running")
        argv = self.argv()
        env_args = [f"{k}={v}" for k, v in self.extra_env.items()]
        # The environment is applied by env(1) right before the server so that LD_PRELOAD
        # reaches only the server, not setpriv or ip.
        full = (["ip", "netns", "exec", self.netns] if self.netns else []) + (
            ["env", *env_args] if env_args else []) + argv
        with open(self.log_path, "ab") as log:
            log.write(f"\n=== {time.strftime('%H:%M:%S')} start #{self.starts + 1}: "
                      f"{' '.join(env_args + argv)}\n".encode())
            log.flush()
            self.proc = spawn(full, stdin=subprocess.DEVNULL, stdout=log,
                              stderr=subprocess.STDOUT, cwd=self.cluster.workdir)
        self.starts += 1
        self.joining = False
        self.paused = False
        self.cluster.log(f"started {self.name} pid {self.proc.pid}")

    def alive(self):
        """True while the process exists (also when paused)."""
        return self.proc is not None and self.proc.poll() is None

    def returncode(self):
        return None if self.proc is None else self.proc.poll()

    def kill(self, sig=signal.SIGKILL):
        """Send `sig`; for SIGKILL and SIGTERM wait until the process is gone (SIGTERM that
        does not end it within STOP_TIMEOUT_S is followed by SIGKILL)."""
        if not self.alive():
            return
        if self.paused and sig != signal.SIGKILL:
            self.resume()  # a stopped process handles no SIGTERM
        self.proc.send_signal(sig)
        if sig in (signal.SIGKILL, signal.SIGTERM):
            try:
                self.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=STOP_TIMEOUT_S)
            self.paused = False
            self.cluster.log(f"{self.name} exited ({self.proc.returncode}) after signal {sig}")

    def pause(self):
        """SIGSTOP; returns once the process is stopped."""
        if self.alive():
            self.proc.send_signal(signal.SIGSTOP)
            self.paused = True
            self._wait_state(lambda state: state == "T")

    def resume(self):
        """SIGCONT; returns once the process runs again."""
        if self.alive():
            self.proc.send_signal(signal.SIGCONT)
            self._wait_state(lambda state: state != "T")
        self.paused = False

    def proc_state(self):
        """The state letter of /proc/<pid>/stat ("T": stopped), None when gone."""
        try:
            stat = Path(f"/proc/{self.proc.pid}/stat").read_text()
        except (OSError, AttributeError):
            return None
        return stat.rsplit(")", 1)[1].split()[0]

    def _wait_state(self, pred, timeout=STOP_TIMEOUT_S):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.proc_state()
            if state is None or pred(state):
                return
            time.sleep(0.005)
        raise RuntimeError(f"{self.name}: process state still {self.proc_state()}")

    def restart(self, sig=signal.SIGKILL, wait=True):
        self.kill(sig)
        self.start()
        if wait:
            self.wait_ready()

    def channel(self):
        return grpc.insecure_channel(self.client_endpoint)

    def status(self, timeout=RPC_TIMEOUT_S):
        """Maintenance.Status of this member (raises grpc.RpcError); records its id."""
        with self.channel() as ch:
            s = etcdrpc.MaintenanceStub(ch).Status(etcdrpc.StatusRequest(), timeout=timeout)
        self.id = s.header.member_id
        return s

    def serves(self, serializable=False, timeout=RPC_TIMEOUT_S):
        """Whether a (linearizable by default) Range succeeds now."""
        with self.channel() as ch:
            try:
                etcdrpc.KVStub(ch).Range(
                    etcdrpc.RangeRequest(key=b"jepsen-health", serializable=serializable),
                    timeout=timeout)
                return True
            except grpc.RpcError:
                return False

    def wait_ready(self, timeout=READY_TIMEOUT_S):
        """Until a linearizable Range succeeds (what `etcdctl endpoint health` checks)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.cluster.kind} {self.name} exited with code "
                                   f"{self.returncode()} before it was ready\n{self.log_tail()}")
            # A fresh channel per attempt: one that saw "connection refused" backs off.
            if self.serves(timeout=1.0):
                try:
                    self.status()
                except grpc.RpcError:
                    pass
                return
            time.sleep(0.1)
        raise RuntimeError(f"{self.cluster.kind} {self.name} not ready after {timeout}s\n"
                           f"{self.log_tail()}")

    def log_tail(self, lines=LOG_TAIL_LINES):
        return f"--- {self.name} log ({self.log_path}) ---\n{tail(self.log_path, lines)}"

    # membership: leave() removes this member (killed first), rejoin() adds it back wiped.
    def listed(self, cluster=None):
        """This member's entry in MemberList (found by peer URL), or None."""
        c = cluster or self.cluster
        return next((m for m in c.member_list() if self.peer_url in m.peerURLs), None)

    def leave(self, cluster=None):
        """Kill, then MemberRemove (asked of the other members). Idempotent."""
        c = cluster or self.cluster
        self.kill()
        entry = self.listed(c)
        if entry is not None:
            c.member_remove(entry.ID, exclude=self)
        self.removed = True
        self.id = None

    def rejoin(self, cluster=None, wait=True):
        """Wipe the data dir, MemberAdd (unless added and not started yet: a retry), start
        with --initial-cluster-state existing. A member still in the cluster with its
        data is removed first: a wiped member must come back under a new id."""
        c = cluster or self.cluster
        self.kill()
        entry = None if self.removed else self.listed(c)
        if entry is not None and entry.name:  # started before: it has state elsewhere
            self.leave(c)
            entry = None
        shutil.rmtree(self.data_dir, ignore_errors=True)
        self.id = entry.ID if entry is not None else c.member_add(self.peer_url, exclude=self)
        self.removed = False
        self.joining = True
        self.start()
        if wait:
            self.wait_ready()

    def wipe_and_rejoin(self, cluster=None):
        """MemberRemove, wipe the data dir, MemberAdd, start with
        --initial-cluster-state existing, wait until it serves."""
        self.leave(cluster)
        self.rejoin(cluster)


# --- cluster ---------------------------------------------------------------------------


class Cluster:
    """N members of one kind ("kvd" or "etcd"); see the module docstring."""

    def __init__(self, kind, size=3, workdir=None, netns=False, binary=None, extra_flags=(),
                 log=print):
        if kind not in ("kvd", "etcd"):
            raise ValueError(f"unknown server kind {kind!r}")
        self.kind = kind
        self.size = size
        self.netns = netns
        self.binary = str(binary or self.default_binary(kind))
        self.extra_flags = list(extra_flags)
        self.log = log or (lambda msg: None)
        self._own_workdir = workdir is None
        self.workdir = str(workdir or tempfile.mkdtemp(prefix=f"kvd-jepsen-{kind}-"))
        os.makedirs(self.workdir, exist_ok=True)
        self.seq = _next_seq()
        self.tag = f"{os.getpid()}-{self.seq}"
        self.token = f"kvdj-{self.tag}"
        self.closed = False
        self._cleanups = []  # callables run by close(), newest first (e.g. unmounts)
        self.bridge = None
        self.subnet = None
        self.namespaces = []
        self._blocked = {}  # member name -> set of IPs it drops
        self._net_lock = threading.RLock()
        _open_clusters.add(self)
        try:
            ports = free_ports(2 * size)
            if netns:
                sweep_leftovers(self.log)
                self._setup_netns()
                ips = [str(self.subnet.network_address + 10 + i) for i in range(size)]
                nss = self.namespaces
            else:
                ips, nss = ["127.0.0.1"] * size, [None] * size
            self.members = [
                Member(self, i, ips[i], ports[2 * i], ports[2 * i + 1], nss[i])
                for i in range(size)
            ]
        except BaseException:
            self.close()
            raise

    @staticmethod
    def default_binary(kind):
        if kind == "etcd":
            return os.environ.get("ETCD_BIN", ETCD_BIN)
        return os.environ.get("KVD_BIN", str(REPO_ROOT / "build" / "bin" / "kvd"))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __repr__(self):
        return f"Cluster({self.kind} x{self.size} {'netns' if self.netns else 'loopback'})"

    # --- lifecycle ---

    def initial_cluster(self):
        return ",".join(f"{m.name}={m.peer_url}" for m in self.members if not m.removed)

    def start(self, timeout=READY_TIMEOUT_S, attempts=3):
        """Start every member, wait until each serves a linearizable read. In loopback
        mode another process may bind a picked port first: a first start that fails with
        "address already in use" is retried on fresh ports."""
        for attempt in range(attempts):
            for m in self.members:
                m.start()
            try:
                self.wait_healthy(timeout)
                return self
            except RuntimeError:
                clash = any(not m.alive() and "already in use" in tail(m.log_path, 10).lower()
                            for m in self.members)
                if self.netns or not clash or attempt + 1 == attempts:
                    raise
                self.log("a port was taken: starting again on fresh ports")
                ports = free_ports(2 * self.size)
                for m in self.members:
                    m.kill()
                    shutil.rmtree(m.data_dir, ignore_errors=True)
                    m.client_port, m.peer_port = ports[2 * m.index], ports[2 * m.index + 1]
                    m.starts = 0
        raise AssertionError("unreachable")

    def endpoints(self):
        return [m.client_endpoint for m in self.members]

    def member(self, name):
        return next(m for m in self.members if m.name == name)

    def live_members(self):
        return [m for m in self.members if m.alive() and not m.paused and not m.removed]

    def statuses(self, timeout=RPC_TIMEOUT_S):
        """{member name: StatusResponse} of the members that answer."""
        out = {}
        for m in self.live_members():
            try:
                out[m.name] = m.status(timeout=timeout)
            except grpc.RpcError:
                pass
        return out

    def leader(self, timeout=RPC_TIMEOUT_S):
        """The member that calls itself leader at the highest raft term, or None. (A
        deposed leader cut off from the others may still believe it leads, at an older
        term; a cut-off follower campaigning alone has a higher term but no leader.)"""
        statuses = self.statuses(timeout)
        claims = [(s.raftTerm, m) for m in self.members
                  if (s := statuses.get(m.name)) is not None and s.leader == m.id]
        return max(claims, key=lambda c: c[0])[1] if claims else None

    def wait_leader(self, timeout=READY_TIMEOUT_S):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = self.leader()
            if m is not None:
                return m
            time.sleep(0.1)
        raise RuntimeError(f"no leader after {timeout}s\n{self.log_tails()}")

    def followers(self):
        lead = self.leader()
        return [m for m in self.live_members() if m is not lead]

    def wait_healthy(self, timeout=READY_TIMEOUT_S):
        """Until every member (not removed) runs and serves a linearizable read."""
        deadline = time.monotonic() + timeout
        for m in self.members:
            if not m.removed:
                m.wait_ready(max(0.1, deadline - time.monotonic()))
        self.wait_leader(max(0.1, deadline - time.monotonic()))

    def add_cleanup(self, fn):
        """Run fn() at close() (before the namespaces go), e.g. to unmount a filesystem."""
        self._cleanups.append(fn)

    def close(self):
        """Kill every member, run cleanups, delete namespaces/veths/bridge (their nft
        tables go with them), remove data dirs. Safe to call twice; never raises for a
        part that is already gone."""
        if self.closed:
            return
        self.closed = True
        for m in getattr(self, "members", []):
            try:
                if m.alive():
                    m.proc.kill()  # SIGKILL also ends a stopped process
                    m.proc.wait(timeout=STOP_TIMEOUT_S)
            except Exception as e:
                self.log(f"close: kill {m.name}: {e}")
        for fn in reversed(self._cleanups):
            try:
                fn()
            except Exception as e:
                self.log(f"close: cleanup {fn}: {e}")
        self._teardown_netns()
        keep = os.environ.get("KVD_JEPSEN_KEEP") == "1"
        if self._own_workdir and not keep:
            shutil.rmtree(self.workdir, ignore_errors=True)
        elif not keep:
            for m in getattr(self, "members", []):
                shutil.rmtree(m.data_dir, ignore_errors=True)  # logs stay in the workdir
        _open_clusters.discard(self)

    def log_tails(self, lines=LOG_TAIL_LINES):
        return "\n".join(m.log_tail(lines) for m in self.members)

    # --- membership (Cluster service, retried while the cluster refuses) ---

    def _member_rpc(self, call, exclude=None, timeout=MEMBER_CHANGE_TIMEOUT_S):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            lead = self.leader()
            order = ([lead] if lead else []) + self.live_members()
            for m in order:
                if m is exclude:
                    continue
                try:
                    with m.channel() as ch:
                        return call(etcdrpc.ClusterStub(ch))
                except grpc.RpcError as e:
                    last = f"{m.name}: {e.code()}: {e.details()}"
            time.sleep(0.5)
        raise RuntimeError(f"membership call failed for {timeout}s: {last}")

    def member_list(self):
        return self._member_rpc(
            lambda stub: stub.MemberList(etcdrpc.MemberListRequest(), timeout=RPC_TIMEOUT_S)
        ).members

    def member_remove(self, member_id, exclude=None):
        def call(stub):
            try:
                return stub.MemberRemove(etcdrpc.MemberRemoveRequest(ID=member_id),
                                         timeout=5.0)
            except grpc.RpcError as e:
                # A retry after a lost response: already gone is done.
                if e.code() == grpc.StatusCode.NOT_FOUND:
                    return None
                raise

        self._member_rpc(call, exclude)
        self.log(f"removed member {member_id:x}")

    def member_add(self, peer_url, exclude=None):
        """MemberAdd (retried; a retry after a lost response finds the URL already added
        and returns that member's id). Returns the new member id."""

        def call(stub):
            try:
                r = stub.MemberAdd(etcdrpc.MemberAddRequest(peerURLs=[peer_url]), timeout=5.0)
                return r.member.ID
            except grpc.RpcError as e:
                if "already exists" in (e.details() or "") or "exist" in (e.details() or ""):
                    lst = stub.MemberList(etcdrpc.MemberListRequest(), timeout=RPC_TIMEOUT_S)
                    for mem in lst.members:
                        if peer_url in mem.peerURLs:
                            return mem.ID
                raise

        member_id = self._member_rpc(call, exclude)
        self.log(f"added member {member_id:x} at {peer_url}")
        return member_id

    # --- network namespaces and partitions ---

    def _setup_netns(self):
        pid, seq = os.getpid(), self.seq
        self.bridge = f"kj{pid}-{seq}"
        assert len(self.bridge) + 3 <= 15, self.bridge
        with open(SUBNET_LOCK, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self.subnet = _pick_subnet(pid * 7 + seq)
            gw = f"{self.subnet.network_address + 1}/24"
            run(["ip", "link", "add", self.bridge, "type", "bridge"])
            run(["ip", "addr", "add", gw, "dev", self.bridge])
            run(["ip", "link", "set", self.bridge, "up"])
        for i in range(self.size):
            ns = f"kvdj-{self.tag}-n{i + 1}"
            veth = f"{self.bridge}-{i + 1}"
            ip = f"{self.subnet.network_address + 10 + i}/24"
            run(["ip", "netns", "add", ns])
            self.namespaces.append(ns)
            run(["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns])
            run(["ip", "link", "set", veth, "master", self.bridge, "up"])
            run(["ip", "-n", ns, "addr", "add", ip, "dev", "eth0"])
            run(["ip", "-n", ns, "link", "set", "eth0", "up"])
            run(["ip", "-n", ns, "link", "set", "lo", "up"])
            # A named set of peer addresses dropped both ways; a partition only edits it.
            self._nft(ns, f"""
                add table inet {NFT_TABLE}
                add set inet {NFT_TABLE} blocked {{ type ipv4_addr; }}
                add chain inet {NFT_TABLE} input {{ type filter hook input priority 0; }}
                add chain inet {NFT_TABLE} output {{ type filter hook output priority 0; }}
                add rule inet {NFT_TABLE} input ip saddr @blocked drop
                add rule inet {NFT_TABLE} output ip daddr @blocked drop
                """)
        self.log(f"netns: bridge {self.bridge} {self.subnet}, namespaces "
                 f"{' '.join(self.namespaces)}")

    def _nft(self, ns, script):
        run(["ip", "netns", "exec", ns, "nft", "-f", "-"], input=script)

    def _teardown_netns(self):
        for ns in self.namespaces:
            _delete_netns(ns)  # its veth end, and so the pair, and its nft tables go too
        if self.bridge:
            for i in range(self.size):
                veth = f"{self.bridge}-{i + 1}"
                if veth in list_links():
                    run(["ip", "link", "del", veth], check=False)
            run(["ip", "link", "del", self.bridge], check=False)
        self.namespaces = []
        self.bridge = None

    def _require_netns(self):
        if not self.netns:
            raise RuntimeError("network partitions need Cluster(netns=True)")

    def block(self, pairs):
        """Cut the links of `pairs` [(a, b), ...] both ways (added to the current cuts)."""
        self._require_netns()
        with self._net_lock:
            for a, b in pairs:
                self._blocked.setdefault(a.name, set()).add(b.ip)
                self._blocked.setdefault(b.name, set()).add(a.ip)
            self._apply()

    def partition(self, groups):
        """Replace the current cuts: members of different groups cannot talk. Members in
        no group keep every link."""
        self._require_netns()
        pairs = [(a, b) for i, g in enumerate(groups) for h in groups[i + 1:] for a in g
                 for b in h]
        with self._net_lock:
            self._blocked = {}
            for a, b in pairs:
                self._blocked.setdefault(a.name, set()).add(b.ip)
                self._blocked.setdefault(b.name, set()).add(a.ip)
            self._apply()

    def heal(self):
        """Remove every cut (no-op in loopback mode)."""
        if not self.netns:
            return
        with self._net_lock:
            self._blocked = {}
            self._apply()

    def reset_connections(self, member, peers=None):
        """Destroy `member`'s TCP connections to `peers` (default: every other member)
        inside its namespace (ss -K), as a middlebox losing its state would: data the
        peers sent into a cut link is then lost, not delivered late after healing."""
        self._require_netns()
        for p in peers or [m for m in self.members if m is not member]:
            run(["ip", "netns", "exec", member.netns, "ss", "-K", "-tn", "dst", p.ip])

    def blocked(self):
        """{member name: sorted IPs it drops}: the cuts in force."""
        with self._net_lock:
            return {k: sorted(v) for k, v in self._blocked.items() if v}

    def _apply(self):
        for m in self.members:
            ips = self._blocked.get(m.name, set())
            script = f"flush set inet {NFT_TABLE} blocked\n"
            if ips:
                script += f"add element inet {NFT_TABLE} blocked {{ {', '.join(sorted(ips))} }}\n"
            self._nft(m.netns, script)
        self.log(f"network cuts: {self.blocked() if self._blocked else 'none'}")
