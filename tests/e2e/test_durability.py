"""Case 3 - durability: acknowledged writes survive kill -9 and clean restarts.

Crash: writer threads put distinct keys and record every ACKNOWLEDGED put (key, value,
revision of the answer). The server is SIGKILLed while they write, restarted on the same
data dir, and then
  - every acknowledged put is present with its value and its acknowledged mod_revision;
  - a put that was in flight at the kill may be present or not, but only with the value
    its writer sent;
  - revisions continue: the next put gets head+1, head >= every acknowledged revision,
    and no two keys share a mod_revision (no revision was reused).
Mixed crash: one writer runs a fixed sequence of puts, deletes, 3-key txns and
compactions over 40 keys; after kill -9 the store must equal a model of the sequence
after all acknowledged operations (or those plus the one in flight) - values, create and
mod revisions, versions, head revision - and acknowledged compactions stay compacted.
Clean restart (SIGTERM): the whole key space, the head revision and the compaction point
are unchanged.

Bounded: at most WRITERS * PUTS_PER_WRITER_MAX puts and WRITE_SECONDS_MAX seconds.
"""

import signal
import threading
import time

import etcd3
import grpc
import pytest
from etcd3 import etcdrpc

WRITERS = 4
PUTS_PER_WRITER_MAX = 5000
WRITE_SECONDS_MAX = 15.0
KILL_AFTER_ACKS = 1500       # kill once this many puts are acknowledged...
KILL_AFTER_SECONDS = 5.0     # ...or after this long, whichever comes first
ACKS_MIN = 20                # below this the test proves nothing
PUT_TIMEOUT_S = 2.0
PREFIX = b"dur/"


class Writers:
    def __init__(self, member, round_no):
        self.member = member
        self.round_no = round_no
        self.lock = threading.Lock()
        self.acked = {}          # key -> (value, revision)
        self.sent = {}           # key -> value, for every put attempted
        self.ended_by_error = [False] * WRITERS
        self.threads = [threading.Thread(target=self.run, args=(w,), daemon=True)
                        for w in range(WRITERS)]
        self.deadline = time.monotonic() + WRITE_SECONDS_MAX

    def run(self, w):
        client = etcd3.client(host="127.0.0.1", port=self.member.client_port,
                              timeout=PUT_TIMEOUT_S)
        try:
            for i in range(PUTS_PER_WRITER_MAX):
                if time.monotonic() > self.deadline:
                    return
                key = PREFIX + b"r%d/w%d/%06d" % (self.round_no, w, i)
                value = b"value-%d-%d-" % (w, i) + b"x" * (i % 97)
                with self.lock:
                    self.sent[key] = value
                try:
                    answer = client.put(key, value)
                except Exception:  # the server is gone: this writer is done
                    self.ended_by_error[w] = True
                    return
                with self.lock:
                    self.acked[key] = (value, answer.header.revision)
        finally:
            client.close()

    def start(self):
        for t in self.threads:
            t.start()

    def ack_count(self):
        with self.lock:
            return len(self.acked)

    def join(self):
        for t in self.threads:
            t.join(timeout=WRITE_SECONDS_MAX + 2 * PUT_TIMEOUT_S)
            assert not t.is_alive(), "a writer did not stop"


def all_kvs(kv, prefix=PREFIX):
    end = prefix[:-1] + bytes([prefix[-1] + 1])
    answer = kv.Range(etcdrpc.RangeRequest(key=prefix, range_end=end))
    return answer.header.revision, {x.key: x for x in answer.kvs}


def write_then_kill9(member, round_no):
    """Writers put until KILL_AFTER_ACKS acks (or KILL_AFTER_SECONDS), then SIGKILL."""
    writers = Writers(member, round_no)
    writers.start()
    started = time.monotonic()
    while (writers.ack_count() < KILL_AFTER_ACKS
           and time.monotonic() - started < KILL_AFTER_SECONDS):
        time.sleep(0.01)
    member.kill9()
    writers.join()
    assert len(writers.acked) >= ACKS_MIN, \
        f"only {len(writers.acked)} puts acknowledged before the kill"
    assert all(writers.ended_by_error), "the kill did not land mid-stream for every writer"
    return writers


@pytest.mark.parametrize("crashes", [1, 3])
def test_acknowledged_writes_survive_kill9(server, crashes):
    member = server.members[0]
    acked, sent = {}, {}
    for round_no in range(crashes):
        writers = write_then_kill9(member, round_no)
        acked.update(writers.acked)
        sent.update(writers.sent)
        server.restart_member(member)

    revisions = sorted(rev for _, rev in acked.values())
    assert len(set(revisions)) == len(revisions), "two acknowledged puts share a revision"
    kv = server.client().kvstub
    head, present = all_kvs(kv)
    missing = [k for k in acked if k not in present]
    assert not missing, f"{len(missing)} acknowledged puts lost, e.g. {missing[:5]}"
    for key, (value, rev) in acked.items():
        got = present[key]
        assert (got.value, got.mod_revision, got.create_revision, got.version) == \
            (value, rev, rev, 1), f"{key}: wrong after restart"
    for key, got in present.items():
        assert key in sent, f"{key} was never written"
        assert got.value == sent[key], f"{key}: in-flight put has a foreign value"

    mod_revisions = [x.mod_revision for x in present.values()]
    assert len(set(mod_revisions)) == len(mod_revisions), "a revision was reused"
    assert head >= revisions[-1] and head >= max(mod_revisions)
    # Each put is exactly one revision on a fresh store: nothing else was written.
    assert head == 1 + len(present)
    after = kv.Put(etcdrpc.PutRequest(key=b"after-restart", value=b"1"))
    assert after.header.revision == head + 1


def test_clean_restart_keeps_data_and_revision(server):
    member = server.members[0]
    kv = server.client().kvstub
    for i in range(20):
        kv.Put(etcdrpc.PutRequest(key=PREFIX + b"k%02d" % i, value=b"v%d" % i))
    for i in range(0, 20, 3):
        kv.Put(etcdrpc.PutRequest(key=PREFIX + b"k%02d" % i, value=b"second"))
    kv.DeleteRange(etcdrpc.DeleteRangeRequest(key=PREFIX + b"k05", range_end=PREFIX + b"k08"))
    compact_rev = kv.Range(etcdrpc.RangeRequest(key=b"x")).header.revision - 3
    kv.Compact(etcdrpc.CompactionRequest(revision=compact_rev, physical=True))
    head_before, kvs_before = all_kvs(kv)
    history_before = kv.Range(etcdrpc.RangeRequest(key=PREFIX, range_end=PREFIX + b"\xff",
                                                   revision=compact_rev))

    code = member.stop()
    assert code in (0, -signal.SIGTERM), f"unclean exit on SIGTERM: {code}"
    server.restart_member(member)
    kv = server.client().kvstub

    head_after, kvs_after = all_kvs(kv)
    assert head_after == head_before
    assert kvs_after == kvs_before
    history_after = kv.Range(etcdrpc.RangeRequest(key=PREFIX, range_end=PREFIX + b"\xff",
                                                  revision=compact_rev))
    assert list(history_after.kvs) == list(history_before.kvs)
    with pytest.raises(grpc.RpcError) as err:
        kv.Range(etcdrpc.RangeRequest(key=PREFIX, revision=compact_rev - 1))
    assert err.value.code() == grpc.StatusCode.OUT_OF_RANGE
    assert err.value.details() == "etcdserver: mvcc: required revision has been compacted"
    after = kv.Put(etcdrpc.PutRequest(key=b"after-restart", value=b"1"))
    assert after.header.revision == head_before + 1


# --- kill -9 during a mix of puts, deletes, txns and compactions ----------------------

MIX_KEYS = 40
MIX_OPS_MAX = 5000
MIX_KILL_AFTER_OPS = 600
MIX_KEY_PREFIX = b"mix/"


def mix_op(i):
    """The i-th operation of a fixed sequence over a small key space (so keys get
    overwritten, deleted and re-created)."""
    key = lambda n: MIX_KEY_PREFIX + b"%02d" % (n % MIX_KEYS)
    if i % 50 == 49:
        return ("compact",)
    if i % 7 == 3:
        return ("txn", [key(i), key(i + 13), key(i + 27)], b"t%d" % i)
    if i % 5 == 4:
        return ("delete", key(i * 7))
    return ("put", key(i * 11), b"v%d" % i)


class Model:
    """What the store must hold after a prefix of the sequence: key -> (value,
    create_revision, mod_revision, version), and the head revision."""

    def __init__(self, head):
        self.head = head
        self.kvs = {}

    def copy(self):
        m = Model(self.head)
        m.kvs = dict(self.kvs)
        return m

    def _put(self, key, value, rev):
        old = self.kvs.get(key)
        self.kvs[key] = (value, old[1] if old else rev, rev, old[3] + 1 if old else 1)

    def apply(self, op):
        kind = op[0]
        if kind == "put":
            self.head += 1
            self._put(op[1], op[2], self.head)
        elif kind == "txn":
            self.head += 1
            for k in op[1]:
                self._put(k, op[2], self.head)
        elif kind == "delete" and op[1] in self.kvs:
            self.head += 1
            del self.kvs[op[1]]


def test_kill9_during_mixed_writes_keeps_a_prefix_of_them(server):
    """Single writer, sequential: after kill -9 and restart the store equals the model
    after all acknowledged operations, or after those plus the one in flight."""
    member = server.members[0]
    client = etcd3.client(host="127.0.0.1", port=member.client_port, timeout=PUT_TIMEOUT_S)
    kv = client.kvstub
    model = Model(kv.Range(etcdrpc.RangeRequest(key=b"x")).header.revision)
    compacted = 0
    state = {"acked_ops": 0, "inflight": None, "compacted": 0, "error": None}

    def writer():
        nonlocal compacted
        deadline = time.monotonic() + WRITE_SECONDS_MAX
        try:
            for i in range(MIX_OPS_MAX):
                if time.monotonic() > deadline:
                    return
                op = mix_op(i)
                if op[0] == "compact":
                    target = model.head - 10
                    if target <= compacted:
                        continue
                    state["inflight"] = ("compact", target)
                    kv.Compact(etcdrpc.CompactionRequest(revision=target))
                    compacted = state["compacted"] = target
                    state["inflight"] = None
                    continue
                state["inflight"] = op
                if op[0] == "put":
                    answer = kv.Put(etcdrpc.PutRequest(key=op[1], value=op[2]))
                elif op[0] == "delete":
                    answer = kv.DeleteRange(etcdrpc.DeleteRangeRequest(key=op[1]))
                else:
                    answer = kv.Txn(etcdrpc.TxnRequest(success=[
                        etcdrpc.RequestOp(request_put=etcdrpc.PutRequest(key=k, value=op[2]))
                        for k in op[1]]))
                model.apply(op)
                state["inflight"] = None
                state["acked_ops"] += 1
                assert answer.header.revision == model.head, \
                    f"op {i} {op}: answered revision {answer.header.revision}, " \
                    f"model {model.head}"
        except AssertionError as e:
            state["error"] = str(e)
        except Exception:  # the kill: the writer is done
            return

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    started = time.monotonic()
    while (state["acked_ops"] < MIX_KILL_AFTER_OPS and thread.is_alive()
           and time.monotonic() - started < KILL_AFTER_SECONDS):
        time.sleep(0.01)
    member.kill9()
    thread.join(timeout=WRITE_SECONDS_MAX + 2 * PUT_TIMEOUT_S)
    assert not thread.is_alive()
    client.close()
    assert state["error"] is None, state["error"]
    assert state["acked_ops"] >= ACKS_MIN, f"only {state['acked_ops']} ops before the kill"

    server.restart_member(member)
    kv = server.client().kvstub
    head, present = all_kvs(kv, MIX_KEY_PREFIX)
    actual = {k: (x.value, x.create_revision, x.mod_revision, x.version)
              for k, x in present.items()}
    candidates = [model]
    inflight = state["inflight"]
    print(f"acked {state['acked_ops']} ops, head {model.head}, compacted at "
          f"{state['compacted']}, in flight at the kill: {inflight}")
    if inflight is not None and inflight[0] != "compact":
        with_inflight = model.copy()
        with_inflight.apply(inflight)
        candidates.append(with_inflight)
    assert any((head, actual) == (m.head, m.kvs) for m in candidates), (
        f"after restart: head {head}, {len(actual)} keys; expected head "
        f"{[m.head for m in candidates]} (in flight: {inflight}); first differences: "
        f"{sorted(set(actual.items()) ^ set(model.kvs.items()))[:6]}")
    if state["compacted"]:
        with pytest.raises(grpc.RpcError) as err:
            kv.Range(etcdrpc.RangeRequest(key=MIX_KEY_PREFIX, revision=state["compacted"] - 1))
        assert err.value.details() == "etcdserver: mvcc: required revision has been compacted"
    after = kv.Put(etcdrpc.PutRequest(key=b"after-restart", value=b"1"))
    assert after.header.revision == head + 1


@pytest.mark.parametrize("compact", [False, True], ids=["tombstone", "tombstone-compacted"])
@pytest.mark.parametrize("how", ["sigterm", "kill9"])
def test_head_revision_survives_when_it_is_a_delete(server, compact, how):
    """When the newest revision is a delete (and even when compaction has removed that
    tombstone), a restart must not fall back to an older revision: the next write gets
    head+1, never a reused number."""
    kv = server.client().kvstub
    for i in range(3):
        kv.Put(etcdrpc.PutRequest(key=b"a", value=b"%d" % i))
    head = kv.DeleteRange(etcdrpc.DeleteRangeRequest(key=b"a")).header.revision
    if compact:
        kv.Compact(etcdrpc.CompactionRequest(revision=head, physical=True))
    member = server.members[0]
    member.stop() if how == "sigterm" else member.kill9()
    server.restart_member(member)
    kv = server.client().kvstub
    assert kv.Range(etcdrpc.RangeRequest(key=b"a")).header.revision == head
    assert kv.Put(etcdrpc.PutRequest(key=b"b", value=b"1")).header.revision == head + 1
