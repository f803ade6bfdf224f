"""Record what a server answers to a scripted sequence, in a form two servers can share.

A `Transcript` runs steps against one cluster through etcdctl (`ctl`) or python etcd3 /
raw gRPC stubs (`rpc`), and records each answer normalized:
  - header fields that legitimately differ between servers and runs are dropped:
    cluster_id, member_id, raft_term;
  - etcdctl's base64 keys/values are decoded, so a diff is readable;
  - lease IDs (chosen by the server) become "lease#0", "lease#1"... in grant order;
  - an etcdctl failure is its exit code and its "Error: ..." lines; an RPC failure is
    its gRPC status code name and details.
Everything else - revisions, create/mod revisions, versions, counts, `more`, prev_kv,
order of kvs, succeeded, response shapes - is kept and must match.
"""

import base64
import json
import os
import tempfile

import grpc

import harness

DROPPED_HEADER_FIELDS = {"cluster_id", "member_id", "raft_term"}
BYTES_FIELDS = {"key", "value", "range_end"}


def _decode(s):
    raw = base64.b64decode(s)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return "hex:" + raw.hex()


def proto_to_dict(msg):
    """Set fields only (like etcdctl's JSON, which omits zero values); bytes as text."""
    out = {}
    for field, value in msg.ListFields():
        if field.label == field.LABEL_REPEATED:
            out[field.name] = [_convert(field, v) for v in value]
        else:
            out[field.name] = _convert(field, value)
    return out


def _convert(field, value):
    if field.type == field.TYPE_MESSAGE:
        return proto_to_dict(value)
    if field.type == field.TYPE_BYTES:
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return "hex:" + value.hex()
    if field.type == field.TYPE_ENUM:
        return field.enum_type.values_by_number[value].name
    return value


class Transcript:
    def __init__(self, cluster):
        self.cluster = cluster
        self.steps = []          # [(label, normalized answer)]
        self._leases = {}        # server's lease id -> "lease#N"

    # --- normalization -------------------------------------------------------------

    def lease_name(self, lease_id):
        if lease_id not in self._leases:
            self._leases[lease_id] = f"lease#{len(self._leases)}"
        return self._leases[lease_id]

    def normalize(self, obj, from_ctl):
        if isinstance(obj, list):
            return [self.normalize(v, from_ctl) for v in obj]
        if not isinstance(obj, dict):
            return obj
        out = {}
        for k, v in obj.items():
            if k in DROPPED_HEADER_FIELDS:
                continue
            if from_ctl and k in BYTES_FIELDS and isinstance(v, str):
                out[k] = _decode(v)
            elif k in ("lease", "ID", "lease_id") and isinstance(v, int) and v != 0:
                out[k] = self.lease_name(v)
            elif k in ("lease", "ID") and isinstance(v, str) and v.isdigit() and v != "0":
                out[k] = self.lease_name(int(v))  # the HTTP gateway's int64 form
            else:
                out[k] = self.normalize(v, from_ctl)
        return out

    # --- steps ---------------------------------------------------------------------

    def ctl(self, label, *args, stdin=None):
        """etcdctl -w json ARGS. Returns the parsed JSON (None on failure)."""
        r = self.cluster.etcdctl("-w", "json", *args, stdin=stdin)
        if r.returncode != 0:
            self.steps.append((label, harness.ctl_error(r)))
            return None
        text = r.stdout.strip()
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError:
            parsed = {"text": text}  # e.g. `compaction` prints "compacted revision N"
        self.steps.append((label, self.normalize(parsed, from_ctl=True)))
        return parsed

    def rpc(self, label, fn):
        """Call fn() (a stub call or an etcd3 client call). Returns its result or None."""
        try:
            result = fn()
        except grpc.RpcError as e:
            self.steps.append((label, {"grpc_code": e.code().name, "details": e.details()}))
            return None
        self.steps.append((label, self.normalize(to_plain(result), from_ctl=False)))
        return result

    def http(self, label, path, body=None, keep=None):
        """POST body as JSON (GET without a body) to the first member's client URL.
        Records the HTTP status and the parsed JSON body (or the text). `keep`: only these
        top-level fields of the body (for answers whose other fields are library text)."""
        status, text = http_request(self.cluster.members[0].client_url + path, body)
        try:
            answer = json.loads(text)
        except json.JSONDecodeError:
            answer = {"text": text}
        if keep is not None and isinstance(answer, dict):
            answer = {k: v for k, v in answer.items() if k in keep}
        # The gateway, like etcdctl, writes bytes as base64 (and int64 as strings).
        self.steps.append((label, {"status": status,
                                   "body": self.normalize(answer, from_ctl=True)}))
        return answer

    def note(self, label, value):
        """Record a value computed by the script (e.g. what etcd3.get returned)."""
        self.steps.append((label, self.normalize(to_plain(value), from_ctl=False)))


def http_request(url, body=None, timeout_s=10):
    """(status, body text) of a GET (body None) or a JSON POST; HTTP errors included."""
    import http.client
    import urllib.error
    import urllib.request
    data = None
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method="GET" if data is None else "POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            return resp.status, resp.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")
    except (http.client.HTTPException, OSError) as e:
        # E.g. a server that speaks only HTTP/2 (gRPC) on the port answers with frames.
        return f"no HTTP/1.1 answer ({type(e).__name__})", ""


def to_plain(value):
    """Protobuf messages, etcd3 tuples and metadata objects -> JSON-like data."""
    if hasattr(value, "ListFields"):
        return proto_to_dict(value)
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return "hex:" + value.hex()
    if hasattr(value, "__dict__") and type(value).__module__.startswith("etcd3"):
        # etcd3.client.KVMetadata and friends: their public attributes.
        return {k: to_plain(v) for k, v in vars(value).items()
                if not k.startswith("_") and k not in ("response_header", "etcd_client")}
    if isinstance(value, dict):
        return {k: to_plain(v) for k, v in value.items()}
    return value


def diff(expected, actual):
    """A readable report of the first differing steps (labels included)."""
    lines = []
    n = max(len(expected), len(actual))
    for i in range(n):
        e = expected[i] if i < len(expected) else ("<missing>", None)
        a = actual[i] if i < len(actual) else ("<missing>", None)
        if e != a:
            label = repr(e[0]) if e[0] == a[0] else f"{e[0]!r} / this: {a[0]!r}"
            lines.append(f"step {i} {label}:\n  etcd: {json.dumps(e[1], sort_keys=True)}\n"
                         f"  this: {json.dumps(a[1], sort_keys=True)}")
        if len(lines) >= 8:
            lines.append("...")
            break
    return "\n".join(lines)


# --- golden comparison ---------------------------------------------------------------

_reference_cache = {}   # scenario -> etcd's steps, recorded once per session


def run_scenario(kind, scenarios, name, cluster_factory, reference=False):
    """Run scenarios[name] = (flags, fn) on a fresh single-member cluster of `kind`."""
    flags, fn = scenarios[name]
    cluster = cluster_factory(kind, size=1, extra_flags=flags)
    t = Transcript(cluster)
    try:
        fn(t)
    except Exception as e:
        if reference:
            raise  # the scenario itself is broken
        # The server under test answered something the script could not go on from
        # (e.g. UNIMPLEMENTED where etcd answered): show it as the last step of the diff.
        t.steps.append(("<scenario stopped>", f"{type(e).__name__}: {e}"))
    cluster.kill_all()
    return t.steps


def check_golden(scenarios, name, kind, cluster_factory):
    """The transcript of `kind` must equal etcd's, recorded on a fresh etcd at test time.

    On a mismatch both transcripts are written (one JSON line per step) to a temp dir
    named in the failure, for a full diff."""
    flags, fn = scenarios[name]
    cache_key = (fn.__module__, fn.__qualname__, tuple(flags))
    if cache_key not in _reference_cache:
        _reference_cache[cache_key] = run_scenario("etcd", scenarios, name, cluster_factory,
                                                   reference=True)
    expected = _reference_cache[cache_key]
    actual = run_scenario(kind, scenarios, name, cluster_factory)
    assert len(expected) > 5, "the scenario recorded almost nothing"
    if actual != expected:
        # One dir per scenario, overwritten by the next failing run (atomic renames, so a
        # concurrent run of the other server side cannot leave a torn file).
        out = os.path.join(tempfile.gettempdir(), "kvd-e2e-golden", name)
        os.makedirs(out, exist_ok=True)
        for side, steps in (("reference-etcd", expected), (kind, actual)):
            fd, tmp = tempfile.mkstemp(dir=out)
            with os.fdopen(fd, "w") as f:
                for label, answer in steps:
                    f.write(json.dumps({"step": label, "answer": answer}, sort_keys=True) + "\n")
            os.replace(tmp, f"{out}/{side}.jsonl")
        raise AssertionError(f"transcripts differ (full: diff {out}/reference-etcd.jsonl "
                             f"{out}/{kind}.jsonl):\n{diff(expected, actual)}")
