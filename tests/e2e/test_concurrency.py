"""Concurrent clients: atomic compare-and-swap, gapless distinct revisions, and
read-after-write across connections. Assertions are on outcomes only (never on timing).
Bounded by THREADS * ATTEMPTS_MAX operations and DEADLINE_S.
"""

import threading
import time

import etcd3
from etcd3 import etcdrpc

THREADS = 4
INCREMENTS_PER_THREAD = 100
ATTEMPTS_MAX = 3000          # per thread, successful or not
PUTS_PER_THREAD = 250
DEADLINE_S = 30.0
R, P = etcdrpc.RangeRequest, etcdrpc.PutRequest
C, T, Op = etcdrpc.Compare, etcdrpc.TxnRequest, etcdrpc.RequestOp


def run_threads(target):
    errors = []

    def wrapped(i):
        try:
            target(i)
        except Exception as e:  # reported below, with the thread number
            errors.append(f"thread {i}: {e!r}")

    threads = [threading.Thread(target=wrapped, args=(i,), daemon=True) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=DEADLINE_S + 10)
        assert not t.is_alive(), "a client thread did not finish"
    assert not errors, "\n".join(errors)


def client_for(server):
    m = server.members[0]
    return etcd3.client(host="127.0.0.1", port=m.client_port, timeout=5)


def test_compare_and_swap_counter_is_atomic(server):
    kv = server.client().kvstub
    start = kv.Put(P(key=b"counter", value=b"0")).header.revision
    deadline = time.monotonic() + DEADLINE_S
    wins = [[] for _ in range(THREADS)]   # (value written, revision) per thread
    losses = [0] * THREADS

    def incrementer(i):
        c = client_for(server)
        try:
            for _ in range(ATTEMPTS_MAX):
                if len(wins[i]) == INCREMENTS_PER_THREAD or time.monotonic() > deadline:
                    return
                cur = c.kvstub.Range(R(key=b"counter")).kvs[0]
                new = int(cur.value) + 1
                answer = c.kvstub.Txn(T(
                    compare=[C(key=b"counter", target=C.MOD, result=C.EQUAL,
                               mod_revision=cur.mod_revision)],
                    success=[Op(request_put=P(key=b"counter", value=b"%d" % new))]))
                if answer.succeeded:
                    wins[i].append((new, answer.header.revision))
                else:
                    losses[i] += 1
        finally:
            c.close()

    run_threads(incrementer)
    all_wins = sorted(w for per in wins for w in per)
    total = len(all_wins)
    assert total == THREADS * INCREMENTS_PER_THREAD, f"only {total} increments in time"
    # Every value 1..total was written exactly once, each at its own revision, and the
    # revisions grow with the values: the CAS serialized the increments.
    assert [v for v, _ in all_wins] == list(range(1, total + 1))
    revisions = [r for _, r in all_wins]
    assert revisions == sorted(revisions) and len(set(revisions)) == total
    # A failed compare writes nothing: one revision per success, none per failure.
    final = kv.Range(R(key=b"counter"))
    assert final.kvs[0].value == b"%d" % total
    assert final.header.revision == start + total
    assert final.kvs[0].version == total + 1


def test_concurrent_puts_get_gapless_distinct_revisions(server):
    kv = server.client().kvstub
    start = kv.Range(R(key=b"x")).header.revision
    answers = [[] for _ in range(THREADS)]
    deadline = time.monotonic() + DEADLINE_S

    def writer(i):
        writer_client, reader_client = client_for(server), client_for(server)
        try:
            for n in range(PUTS_PER_THREAD):
                assert time.monotonic() < deadline, "out of time"
                key = b"p/%d/%03d" % (i, n)
                rev = writer_client.kvstub.Put(P(key=key, value=b"v")).header.revision
                answers[i].append(rev)
                # Read-after-write through another connection (a linearizable read).
                seen = reader_client.kvstub.Range(R(key=key))
                assert seen.count == 1 and seen.kvs[0].mod_revision == rev, key
                assert seen.header.revision >= rev
        finally:
            writer_client.close()
            reader_client.close()

    run_threads(writer)
    revisions = sorted(r for per in answers for r in per)
    total = THREADS * PUTS_PER_THREAD
    assert revisions == list(range(start + 1, start + total + 1)), \
        "revisions of acknowledged puts are not exactly the next `total` revisions"
    for per in answers:
        assert per == sorted(per), "one client's sequential puts went back in revision"
