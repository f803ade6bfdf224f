"""A thin etcd v3 client for the fault harness: raw gRPC stubs, per-call deadlines, and
errors sorted into "did not happen" and "may have happened".

KV, Watch, Lease and Maintenance use python-etcd3's generated stubs (`etcd3.etcdrpc`),
so every response comes whole, header included. The Lock service's stubs are generated
from kvd's api/v3lockpb/v3lock.proto at first use, into a cache directory (see
lock_modules()).

Error rule (what makes a history checkable): a call raises `Fail` only when the error
proves the request had no effect: a read (nothing to undo), a request the server rejects
deterministically (invalid argument, lease not found), or one that never left this
process (no connection to the member at all). Anything else on a write - a deadline, a
connection broken mid-call, "leader changed", "request timed out" - raises `Unknown`: the
write may take effect at any later time (Jepsen's `info`).

Each Client talks to one member at a time and moves to another after an error that
suggests the member is unreachable or cut off.
"""

import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import grpc
from etcd3 import etcdrpc

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_TIMEOUT_S = 1.5
CHANNEL_OPTIONS = [
    # Reconnect quickly after a kill or a partition heals (the default backs off to 2 min).
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
    ("grpc.enable_retries", 0),
    ("grpc.max_receive_message_length", 64 << 20),
]

# Codes whose meaning is "rejected before anything was applied", for any request.
_REJECTED = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND,
             grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.PERMISSION_DENIED,
             grpc.StatusCode.UNAUTHENTICATED}
# The channel had no connection at all: the request was never written to a socket.
_NOT_SENT = ("failed to connect to all addresses",)
# Errors after which the next call should go to another member.
_SWITCH = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
           grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL,
           grpc.StatusCode.CANCELLED, grpc.StatusCode.RESOURCE_EXHAUSTED}


class OpError(Exception):
    """An operation did not succeed; `type` is the history completion type."""
    type = "info"

    def __init__(self, error, code=None):
        super().__init__(error)
        self.error = error
        self.code = code


class Fail(OpError):
    """The operation certainly had no effect."""
    type = "fail"


class Unknown(OpError):
    """The operation may or may not have taken effect (now or later)."""
    type = "info"


def describe(e):
    """"CODE: details" of a gRPC error."""
    try:
        return f"{e.code().name}: {e.details()}"
    except Exception:  # not a call error (e.g. a local exception)
        return repr(e)


def classify(e, write):
    """The OpError for gRPC error `e` of a read (write=False) or a write."""
    code = e.code() if hasattr(e, "code") else None
    text = describe(e)
    if not write or code in _REJECTED:
        return Fail(text, code)
    if code == grpc.StatusCode.UNAVAILABLE and any(s in text for s in _NOT_SENT):
        return Fail(text, code)
    return Unknown(text, code)


_lock_lock = threading.Lock()
_lock_mods = None


def lock_modules():
    """(v3lock_pb2, v3lock_pb2_grpc) generated from api/v3lockpb/v3lock.proto.

    protoc runs once per proto content into ~/.cache/kvd-jepsen/<digest>/. The proto is
    compiled against copies of its imports renamed to python-etcd3's file names
    ("rpc.proto", "kv.proto", "auth.proto"), so the generated module builds on the
    etcdserverpb messages etcd3 already registered instead of defining them twice.
    """
    global _lock_mods
    with _lock_lock:
        if _lock_mods is None:
            _lock_mods = _load_lock_modules()
        return _lock_mods


def _load_lock_modules():
    api = REPO_ROOT / "api"
    renames = {'"api/etcdserverpb/rpc.proto"': '"rpc.proto"',
               '"api/mvccpb/kv.proto"': '"kv.proto"',
               '"api/authpb/auth.proto"': '"auth.proto"'}
    sources = {"v3lock.proto": api / "v3lockpb" / "v3lock.proto",
               "rpc.proto": api / "etcdserverpb" / "rpc.proto",
               "kv.proto": api / "mvccpb" / "kv.proto",
               "auth.proto": api / "authpb" / "auth.proto"}
    texts = {}
    for name, path in sources.items():
        text = path.read_text()
        for old, new in renames.items():
            text = text.replace(old, new)
        texts[name] = text
    digest = hashlib.sha256(texts["v3lock.proto"].encode()).hexdigest()[:16]
    cache_root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "kvd-jepsen"
    out = cache_root / f"v3lock-{digest}"
    if not (out / "v3lock_pb2_grpc.py").exists():
        cache_root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=cache_root, prefix="tmp-"))
        try:
            src = tmp / "src"
            src.mkdir()
            for name, text in texts.items():
                (src / name).write_text(text)
            plugin = shutil.which("grpc_python_plugin") or "/usr/bin/grpc_python_plugin"
            subprocess.run(["protoc", f"--proto_path={src}", f"--python_out={tmp}",
                            f"--grpc_python_out={tmp}",
                            f"--plugin=protoc-gen-grpc_python={plugin}",
                            str(src / "v3lock.proto")],
                           check=True, capture_output=True, timeout=60)
            # Import the messages from etcd3's modules / our own generated module.
            pb2 = tmp / "v3lock_pb2.py"
            pb2.write_text(pb2.read_text().replace(
                "import rpc_pb2 as rpc__pb2", "from etcd3.etcdrpc import rpc_pb2 as rpc__pb2"))
            shutil.rmtree(src)
            try:
                tmp.rename(out)
            except OSError:  # another process made it first
                pass
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    pb2 = _import_file("kvd_jepsen_v3lock_pb2", out / "v3lock_pb2.py")
    sys.modules.setdefault("v3lock_pb2", pb2)  # what v3lock_pb2_grpc imports
    grpc_mod = _import_file("kvd_jepsen_v3lock_pb2_grpc", out / "v3lock_pb2_grpc.py")
    return pb2, grpc_mod


def _import_file(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def prefix_end(prefix):
    """range_end covering every key that starts with `prefix` (bytes)."""
    return prefix[:-1] + bytes([prefix[-1] + 1])


class Client:
    """Calls to one member at a time of `members` ([(name, "host:port")])."""

    def __init__(self, members, rng, timeout=DEFAULT_TIMEOUT_S):
        self.members = list(members)
        self.rng = rng
        self.timeout = timeout
        self._i = rng.randrange(len(self.members))
        self._channels = {}

    @property
    def node(self):
        """Name of the member the next call goes to."""
        return self.members[self._i][0]

    def use(self, name):
        """Send the next calls to the member called `name`."""
        self._i = [n for n, _ in self.members].index(name)

    def switch(self):
        """Move to another member (random among the others)."""
        if len(self.members) > 1:
            others = [i for i in range(len(self.members)) if i != self._i]
            self._i = self.rng.choice(others)

    def channel(self, i=None):
        i = self._i if i is None else i
        ch = self._channels.get(i)
        if ch is None:
            ch = grpc.insecure_channel(self.members[i][1], options=CHANNEL_OPTIONS)
            self._channels[i] = ch
        return ch

    def close(self):
        for ch in self._channels.values():
            ch.close()
        self._channels = {}

    def call(self, stub, method, request, write, timeout=None):
        """One unary call on the current member; raises Fail / Unknown."""
        fn = getattr(stub(self.channel()), method)
        try:
            return fn(request, timeout=timeout or self.timeout)
        except grpc.RpcError as e:
            if e.code() in _SWITCH:
                self.switch()
            raise classify(e, write) from None

    # --- KV ---------------------------------------------------------------------------

    def range(self, key, range_end=b"", serializable=False, revision=0, timeout=None):
        return self.call(etcdrpc.KVStub, "Range",
                         etcdrpc.RangeRequest(key=key, range_end=range_end,
                                              serializable=serializable, revision=revision),
                         write=False, timeout=timeout)

    def put(self, key, value, lease=0, timeout=None):
        return self.call(etcdrpc.KVStub, "Put",
                         etcdrpc.PutRequest(key=key, value=value, lease=lease),
                         write=True, timeout=timeout)

    def delete(self, key, range_end=b"", timeout=None):
        return self.call(etcdrpc.KVStub, "DeleteRange",
                         etcdrpc.DeleteRangeRequest(key=key, range_end=range_end),
                         write=True, timeout=timeout)

    def txn(self, compare=(), success=(), failure=(), write=True, timeout=None):
        return self.call(etcdrpc.KVStub, "Txn",
                         etcdrpc.TxnRequest(compare=list(compare), success=list(success),
                                            failure=list(failure)),
                         write=write, timeout=timeout)

    # --- Lease ------------------------------------------------------------------------

    def lease_grant(self, ttl, timeout=None):
        return self.call(etcdrpc.LeaseStub, "LeaseGrant", etcdrpc.LeaseGrantRequest(TTL=ttl),
                         write=True, timeout=timeout)

    def lease_revoke(self, lease_id, timeout=None):
        return self.call(etcdrpc.LeaseStub, "LeaseRevoke",
                         etcdrpc.LeaseRevokeRequest(ID=lease_id), write=True, timeout=timeout)

    def lease_ttl(self, lease_id, timeout=None):
        return self.call(etcdrpc.LeaseStub, "LeaseTimeToLive",
                         etcdrpc.LeaseTimeToLiveRequest(ID=lease_id), write=False,
                         timeout=timeout)

    def lease_leases(self, timeout=None):
        return self.call(etcdrpc.LeaseStub, "LeaseLeases", etcdrpc.LeaseLeasesRequest(),
                         write=False, timeout=timeout)

    def lease_keepalive(self, lease_id, timeout=None):
        """One keep-alive round trip on a fresh stream; the response (TTL 0: no lease)."""
        stub = etcdrpc.LeaseStub(self.channel())
        call = stub.LeaseKeepAlive(iter([etcdrpc.LeaseKeepAliveRequest(ID=lease_id)]),
                                   timeout=timeout or self.timeout)
        try:
            for resp in call:
                return resp
            raise Unknown("keep-alive stream ended without a response")
        except grpc.RpcError as e:
            if e.code() in _SWITCH:
                self.switch()
            raise classify(e, write=True) from None
        finally:
            call.cancel()

    # --- Lock -------------------------------------------------------------------------

    def lock(self, name, lease, timeout=None):
        pb2, pb2_grpc = lock_modules()
        return self.call(pb2_grpc.LockStub, "Lock", pb2.LockRequest(name=name, lease=lease),
                         write=True, timeout=timeout)

    def unlock(self, key, timeout=None):
        pb2, pb2_grpc = lock_modules()
        return self.call(pb2_grpc.LockStub, "Unlock", pb2.UnlockRequest(key=key),
                         write=True, timeout=timeout)

    # --- Maintenance ------------------------------------------------------------------

    def status(self, timeout=None):
        return self.call(etcdrpc.MaintenanceStub, "Status", etcdrpc.StatusRequest(),
                         write=False, timeout=timeout)

    def hashkv(self, revision=0, timeout=None):
        return self.call(etcdrpc.MaintenanceStub, "HashKV",
                         etcdrpc.HashKVRequest(revision=revision), write=False,
                         timeout=timeout)


def kv_json(kv):
    """A mvccpb.KeyValue as the history's JSON shape (value as text)."""
    return {"key": kv.key.decode(errors="backslashreplace"),
            "value": kv.value.decode(errors="backslashreplace"),
            "create_revision": kv.create_revision, "mod_revision": kv.mod_revision,
            "version": kv.version, "lease": kv.lease}


def event_json(ev):
    """A mvccpb.Event as the history's JSON shape."""
    kv = ev.kv
    return {"revision": kv.mod_revision, "type": "DELETE" if ev.type == 1 else "PUT",
            "key": kv.key.decode(errors="backslashreplace"),
            "value": kv.value.decode(errors="backslashreplace"),
            "create_revision": kv.create_revision, "version": kv.version,
            "lease": kv.lease}
