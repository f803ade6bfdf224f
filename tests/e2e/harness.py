"""Process harness for the end-to-end suite: start real etcd or kvd members, drive them.

A `Cluster` is N members of one kind ("etcd" or "kvd") started with the SAME command
line except for the binary: kvd must accept etcd's flags with etcd's meanings. Members
listen on 127.0.0.1 only, on ports picked by binding port 0 (never 2379/2380), with data
dirs in a private temp dir. Every process this module starts is killed at teardown, even
when a test fails, and dies with the test process (setpriv --pdeathsig) if pytest itself
is killed.

Limits (all bounded; a test never waits forever):
  READY_TIMEOUT_S  a member must serve a linearizable read within this time of start.
  STOP_TIMEOUT_S   SIGTERM -> exit; after that, SIGKILL.
  CTL_TIMEOUT_S    one etcdctl invocation.
"""

import atexit
import base64
import importlib
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import grpc
import etcd3
from etcd3 import etcdrpc

REPO_ROOT = Path(__file__).resolve().parents[2]
ETCD_BIN = os.environ.get("ETCD_BIN", "/usr/bin/etcd")
ETCDCTL_BIN = os.environ.get("ETCDCTL_BIN", "/usr/bin/etcdctl")
KVD_BIN = os.environ.get("KVD_BIN", str(REPO_ROOT / "build" / "bin" / "kvd"))
KVCTL_BIN = os.environ.get("KVCTL_BIN", str(REPO_ROOT / "build" / "bin" / "kvctl"))
KEEP_DATA = os.environ.get("KVD_E2E_KEEP") == "1"

READY_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0
CTL_TIMEOUT_S = 20.0
RPC_TIMEOUT_S = 5.0
LOG_TAIL_LINES = 40
START_ATTEMPTS_MAX = 3

# Ports the user may be running a real cluster on; never ours.
RESERVED_PORTS = {2379, 2380}

# Every live process, so an interpreter exit without fixture teardown still kills them.
_live_procs = set()


@atexit.register
def _kill_leftovers():
    for proc in list(_live_procs):
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=STOP_TIMEOUT_S)


def server_binary(kind):
    if kind == "etcd":
        return ETCD_BIN
    if kind == "kvd":
        return KVD_BIN
    raise ValueError(f"unknown server kind {kind!r}")


def free_ports(count):
    """`count` distinct free loopback ports, all held open at once while picking."""
    socks = []
    try:
        for _ in range(count + 100):
            if len(socks) == count:
                break
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            if s.getsockname()[1] in RESERVED_PORTS:
                s.close()
                continue
            socks.append(s)
        assert len(socks) == count, "could not find free ports"
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def tail(path, lines=LOG_TAIL_LINES):
    try:
        text = Path(path).read_text(errors="replace")
    except OSError as e:
        return f"<no log: {e}>"
    return "\n".join(text.splitlines()[-lines:])


class Member:
    """One server process: its ports, data dir, log file, and lifecycle."""

    def __init__(self, kind, name, workdir, client_port, peer_port):
        self.kind = kind
        self.binary = server_binary(kind)
        self.name = name
        self.client_port, self.peer_port = client_port, peer_port
        self.data_dir = Path(workdir) / f"{name}.data"
        self.log_path = Path(workdir) / f"{name}.log"
        self.proc = None
        self.starts = 0
        self.output_offset = 0

    @property
    def client_url(self):
        return f"http://127.0.0.1:{self.client_port}"

    @property
    def peer_url(self):
        return f"http://127.0.0.1:{self.peer_port}"

    @property
    def endpoint(self):
        return f"127.0.0.1:{self.client_port}"

    def argv(self, initial_cluster, extra_flags):
        return [
            self.binary,
            "--name", self.name,
            "--data-dir", str(self.data_dir),
            "--listen-client-urls", self.client_url,
            "--advertise-client-urls", self.client_url,
            "--listen-peer-urls", self.peer_url,
            "--initial-advertise-peer-urls", self.peer_url,
            "--initial-cluster", initial_cluster,
            "--initial-cluster-state", "new",
            "--initial-cluster-token", "kvd-e2e",
            *extra_flags,
        ]

    def start(self, initial_cluster, extra_flags=()):
        self.start_argv(self.argv(initial_cluster, list(extra_flags)))

    def start_argv(self, argv, env=None):
        """Start with exactly this command line (argv[0] is the binary) and environment."""
        assert self.proc is None or self.proc.poll() is not None, f"{self.name} already running"
        self.starts += 1
        log = open(self.log_path, "ab")
        log.write(f"\n=== start #{self.starts}: {' '.join(argv)}\n".encode())
        log.flush()
        self.output_offset = log.tell()  # where this start's own output begins
        # setpriv --pdeathsig: the server dies with us even if pytest is SIGKILLed.
        prefix = ["setpriv", "--pdeathsig", "KILL", "--"] if shutil.which("setpriv") else []
        self.proc = subprocess.Popen(prefix + argv, stdin=subprocess.DEVNULL, stdout=log,
                                     stderr=subprocess.STDOUT, cwd=self.data_dir.parent,
                                     env=env)
        log.close()
        _live_procs.add(self.proc)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def returncode(self):
        return None if self.proc is None else self.proc.poll()

    def wait_exit(self, timeout_s):
        """Return code, or None if still running after timeout_s."""
        try:
            return self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return None

    def kill9(self):
        """SIGKILL, no chance to flush anything; waits until the process is gone."""
        if self.running():
            self.proc.send_signal(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(timeout=STOP_TIMEOUT_S)
            _live_procs.discard(self.proc)

    def stop(self):
        """SIGTERM (clean shutdown). Returns the exit code, or None if the process did not
        exit within STOP_TIMEOUT_S and had to be SIGKILLed. (etcd re-raises SIGTERM after
        its cleanup, so its code is -15; 0 is the other clean answer.)"""
        assert self.proc is not None
        code = self.proc.poll()
        if code is None:
            self.proc.send_signal(signal.SIGTERM)
            code = self.wait_exit(STOP_TIMEOUT_S)
            if code is None:
                self.proc.kill()
                self.proc.wait(timeout=STOP_TIMEOUT_S)
        _live_procs.discard(self.proc)
        return code

    def last_start_output(self):
        """What the process wrote since its latest start (stdout and stderr)."""
        with open(self.log_path, "rb") as f:
            f.seek(self.output_offset)
            return f.read().decode(errors="replace")

    def log_tail(self):
        return f"--- {self.kind} {self.name} log ({self.log_path}) ---\n{tail(self.log_path)}"

    def wait_ready(self, timeout_s=READY_TIMEOUT_S):
        """Until a linearizable Range succeeds (what `etcdctl endpoint health` checks)."""
        deadline = time.monotonic() + timeout_s
        last_error = None
        while time.monotonic() < deadline:
            if not self.running():
                raise AssertionError(f"{self.kind} {self.name} exited with code "
                                     f"{self.returncode()} before it was ready\n"
                                     f"{self.log_tail()}")
            # A fresh channel per attempt: a channel that saw "connection refused" backs
            # off its reconnects for seconds.
            with grpc.insecure_channel(self.endpoint) as channel:
                try:
                    etcdrpc.KVStub(channel).Range(etcdrpc.RangeRequest(key=b"health"),
                                                  timeout=1.0)
                    return
                except grpc.RpcError as e:
                    last_error = f"{e.code()}: {e.details()}"
            time.sleep(0.1)
        raise AssertionError(f"{self.kind} {self.name} not ready after {timeout_s}s "
                             f"(last error: {last_error})\n{self.log_tail()}")


class Cluster:
    """N members of one kind. Single-node today; the same object starts N later."""

    def __init__(self, kind, size=1, extra_flags=(), workdir=None):
        assert size >= 1
        self.kind = kind
        self.extra_flags = list(extra_flags)
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix=f"kvd-e2e-{kind}-"))
        ports = free_ports(2 * size)  # all at once, so they are distinct
        self.members = [Member(kind, f"m{i}", self.workdir, ports[2 * i], ports[2 * i + 1])
                        for i in range(size)]
        self._clients = []

    @property
    def initial_cluster(self):
        return ",".join(f"{m.name}={m.peer_url}" for m in self.members)

    @property
    def endpoints(self):
        return [m.endpoint for m in self.members]

    def start(self):
        """Start every member and wait until each serves. Ports are picked by binding port 0
        and releasing it, so another process can take one before the server binds it: a
        member that fails with "address already in use" gets fresh ports, a few times."""
        for attempt in range(START_ATTEMPTS_MAX):
            for m in self.members:
                self.start_member(m, wait=False)
            try:
                for m in self.members:
                    m.wait_ready()
                return self
            except AssertionError:
                clash = any(not m.running() and "address already in use" in
                            m.last_start_output() for m in self.members)
                if not clash or attempt + 1 == START_ATTEMPTS_MAX:
                    raise
                self.kill_all()
                ports = free_ports(2 * len(self.members))
                for i, m in enumerate(self.members):
                    shutil.rmtree(m.data_dir, ignore_errors=True)
                    m.client_port, m.peer_port = ports[2 * i], ports[2 * i + 1]
        raise AssertionError("unreachable")

    def start_member(self, member, wait=True):
        member.start(self.initial_cluster, self.extra_flags)
        if wait:
            member.wait_ready()

    def restart_member(self, member):
        """Start again on the same data dir and ports (after kill9 or stop)."""
        self.close_clients()
        self.start_member(member, wait=True)

    def close_clients(self):
        for c in self._clients:
            c.close()
        self._clients = []

    def kill_all(self):
        self.close_clients()
        for m in self.members:
            if m.proc is not None:
                m.kill9()

    def close(self):
        """Kill every member and remove the workdir (data and logs). Idempotent."""
        self.kill_all()
        if not KEEP_DATA:
            # Data dirs are big (etcd preallocates 64 MB WAL files); logs stay in the
            # workdir only when asked.
            shutil.rmtree(self.workdir, ignore_errors=True)

    def log_tails(self):
        return "\n".join(m.log_tail() for m in self.members)

    # --- clients -------------------------------------------------------------------

    def client(self, member=None, timeout=RPC_TIMEOUT_S):
        """python etcd3 client; its raw stubs are .kvstub, .leasestub, .maintenancestub."""
        m = member or self.members[0]
        c = etcd3.client(host="127.0.0.1", port=m.client_port, timeout=timeout)
        self._clients.append(c)
        return c

    def etcdctl(self, *args, stdin=None, member=None):
        """Run etcdctl (API v3) against one member; returns the CompletedProcess."""
        m = member or self.members[0]
        env = dict(os.environ, ETCDCTL_API="3")
        return subprocess.run([ETCDCTL_BIN, "--endpoints", m.endpoint,
                               "--dial-timeout", "3s", "--command-timeout", "10s", *args],
                              input=stdin, capture_output=True, text=True, env=env,
                              timeout=CTL_TIMEOUT_S)


def ctl_error(result):
    """The user-facing error of a failed etcdctl run: its exit code and 'Error:' lines.

    etcdctl also logs a JSON warning with a random client id and a timestamp; only the
    'Error: ...' lines are part of its contract.
    """
    lines = [l for l in result.stderr.splitlines() if l.startswith("Error:")]
    return {"exit": result.returncode, "error": lines}


def b64_decode(s):
    return base64.b64decode(s).decode("utf-8", errors="backslashreplace")


def b64(s):
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()


# --- helpers shared by the cluster, watch and lock tests -------------------------------

TAKEOVER_WAIT_S = 15.0


def rpc(member, stub, method, request, timeout=RPC_TIMEOUT_S):
    """One unary call to member on a fresh channel (a channel that saw a dead member backs
    off its reconnects for seconds)."""
    with grpc.insecure_channel(member.endpoint) as channel:
        return getattr(stub(channel), method)(request, timeout=timeout)


def status(member):
    return rpc(member, etcdrpc.MaintenanceStub, "Status", etcdrpc.StatusRequest())


def leader_of(cluster, members=None, wait_s=TAKEOVER_WAIT_S):
    """The member every running member (or every one of `members`) agrees leads."""
    members = members or [m for m in cluster.members if m.running()]
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        try:
            leaders = {status(m).leader for m in members}
            if len(leaders) == 1 and 0 not in leaders:
                lead = leaders.pop()
                for m in members:
                    if status(m).header.member_id == lead:
                        return m
        except grpc.RpcError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"no agreed leader within {wait_s}s\n{cluster.log_tails()}")


def until_ok(fn, wait_s=TAKEOVER_WAIT_S):
    """fn() retried while it fails with a gRPC error (e.g. an election in progress)."""
    deadline = time.monotonic() + wait_s
    last = None
    while time.monotonic() < deadline:
        try:
            return fn()
        except grpc.RpcError as e:
            last = f"{e.code()}: {e.details()}"
        time.sleep(0.05)
    raise AssertionError(f"no success within {wait_s}s: {last}")


_compiled_protos = {}


def compile_proto(text, module):
    """Python messages for a test-local .proto (compiled once per session with protoc).

    python etcd3's protos predate some of etcd's fields and services, and etcd's own
    .proto files cannot be loaded beside etcd3's (same message names): tests that need
    them declare the messages they use, with etcd's field numbers, under their own
    package, and call methods by path."""
    if module not in _compiled_protos:
        d = tempfile.mkdtemp(prefix=f"{module}-")
        with open(os.path.join(d, f"{module}.proto"), "w") as f:
            f.write(text)
        subprocess.run(["protoc", f"--proto_path={d}", f"--python_out={d}", f"{module}.proto"],
                       check=True, timeout=60)
        sys.path.insert(0, d)
        _compiled_protos[module] = importlib.import_module(f"{module}_pb2")
    return _compiled_protos[module]


class WatchStream:
    """One bidirectional Watch stream (python etcd3's messages): send requests, read
    responses with a deadline. A broken stream is reported by next() as the grpc.RpcError
    it ended with (raised), or, with errors=True, returned."""

    def __init__(self, endpoint, metadata=None):
        self._channel = grpc.insecure_channel(endpoint)
        self._requests = queue.Queue()
        self._responses = queue.Queue()
        stub = etcdrpc.WatchStub(self._channel)
        self._call = stub.Watch(iter(self._requests.get, None), metadata=metadata)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        try:
            for resp in self._call:
                self._responses.put(resp)
        except grpc.RpcError as e:
            self._responses.put(e)

    def send(self, request):
        self._requests.put(request)

    def create(self, **fields):
        self.send(etcdrpc.WatchRequest(create_request=etcdrpc.WatchCreateRequest(**fields)))

    def next(self, timeout=RPC_TIMEOUT_S, errors=False):
        try:
            item = self._responses.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no watch response within {timeout}s") from None
        if isinstance(item, grpc.RpcError) and not errors:
            raise AssertionError(f"watch stream failed: {item.code()} {item.details()}")
        return item

    def poll(self, timeout):
        """The next response, the grpc.RpcError the stream ended with, or None if nothing
        came within timeout."""
        try:
            return self._responses.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self):
        self._requests.put(None)
        self._call.cancel()
        self._channel.close()
        self._reader.join(timeout=RPC_TIMEOUT_S)
