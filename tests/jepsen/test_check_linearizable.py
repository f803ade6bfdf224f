"""Tests of the linearizability checker (tools/jepsen/check/linearizable.py) on
hand-written register histories and a large generated one. No server needed."""

import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent / "histories"))
import hist  # noqa: E402

K = "jepsen/r/1"
ONLY = ["linearizable"]


def lin(b, tmp_path, final=None, **options):
    r = hist.check(b, tmp_path, final=final, only=ONLY, **options)
    return r.checks["linearizable"]


def test_nothing_to_check_is_valid(tmp_path):
    b = hist.Builder()
    b.op(0, 1, 0, "append", "txn", None, [["r", "a/1", None]], done={"value": [["r", "a/1", []]]})
    c = lin(b, tmp_path)
    assert c["valid"]
    assert "nothing to check" in c["details"]["summary"]


def test_sequential_and_concurrent_valid(tmp_path):
    b = hist.Builder()
    b.read(0, 5, 0, K, None)
    b.write(10, 20, 0, K, 1)
    b.read(15, 40, 1, K, None)     # concurrent with the write: may see before it
    b.write(30, 50, 2, K, 2)
    b.read(45, 60, 1, K, 1)        # concurrent with write 2: may see 1
    b.cas(70, 80, 0, K, 2, 3)
    b.read(90, 95, 1, K, 3)
    b.cas(100, 110, 2, K, 1, 9, type_="fail")   # fail: did not happen
    b.read(120, 130, 2, K, 3)
    c = lin(b, tmp_path)
    assert c["valid"], c


def test_stale_read_fails_with_window(tmp_path):
    b = hist.Builder()
    b.write(0, 10, 0, K, 1)
    b.write(20, 30, 0, K, 2)
    b.read(40, 50, 1, K, 1)        # 2 was acknowledged before this read began
    b.read(60, 70, 2, K, 2)
    c = lin(b, tmp_path)
    assert not c["valid"]
    an = c["details"]["anomalies"][0]
    assert an["type"] == "nonlinearizable"
    assert an["op"]["f"] == "read" and an["op"]["result"] == 1
    assert an["possible_states"] == [2]
    # The smallest window that fails from any starting state: write 2, then the read.
    assert [(o["f"], o["value"]) for o in an["ops"]] == [("write", 2), ("read", None)]
    assert an["window_s"] == [0.02, 0.05]
    assert "from any starting state" in an["explanation"]


def test_lost_write_fails(tmp_path):
    b = hist.Builder()
    b.write(0, 10, 0, K, 1)
    b.write(20, 30, 1, K, 2)
    b.read(40, 50, 2, K, 2)
    b.read(60, 70, 2, K, 1)        # went back to 1: write 2 lost
    c = lin(b, tmp_path)
    assert not c["valid"]
    assert c["details"]["anomalies"][0]["op"]["result"] == 1


def test_read_of_never_written_value_fails(tmp_path):
    b = hist.Builder()
    b.write(0, 10, 0, K, 1)
    b.read(20, 30, 1, K, 7)
    assert not lin(b, tmp_path)["valid"]


def test_info_write_taking_effect_late_is_valid(tmp_path):
    b = hist.Builder()
    b.write(0, 10, 0, K, 1, type_="info")          # timed out...
    b.write(20, 30, 1, K, 2)
    b.read(40, 50, 2, K, 2)
    b.read(1000, 1010, 2, K, 1)                     # ...and took effect much later
    b.read(1020, 1030, 3, K, 1)
    c = lin(b, tmp_path)
    assert c["valid"], c


def test_info_write_never_taking_effect_is_valid(tmp_path):
    b = hist.Builder()
    b.write(0, 10, 0, K, 1)
    b.write(20, 30, 1, K, 2, type_="info")
    b.read(40, 50, 2, K, 1)
    b.read(60, 70, 2, K, 1)
    b.cas(80, 90, 3, K, 5, 6, type_="info")         # no one has 5: can never apply
    c = lin(b, tmp_path)
    assert c["valid"], c


def test_info_write_cannot_take_effect_before_its_invoke(tmp_path):
    b = hist.Builder()
    b.write(0, 10, 0, K, 1)
    b.read(20, 30, 1, K, 2)                         # 2 is only written later
    b.write(40, 50, 2, K, 2, type_="info")
    assert not lin(b, tmp_path)["valid"]


def test_info_write_applies_once(tmp_path):
    b = hist.Builder()
    b.write(0, 10, 0, K, 1, type_="info")
    b.read(20, 30, 1, K, 1)
    b.write(40, 50, 2, K, 2)
    b.read(60, 70, 1, K, 1)                         # 1 cannot come back
    assert not lin(b, tmp_path)["valid"]


def test_never_completed_op_is_info(tmp_path):
    b = hist.Builder()
    b.write(0, None, 0, K, 1, type_=None)           # the run ended first
    b.read(20, 30, 1, K, 1)
    assert lin(b, tmp_path)["valid"]


def test_cas_semantics(tmp_path):
    b = hist.Builder()
    b.write(0, 10, 0, K, 1)
    b.cas(20, 30, 1, K, 2, 3)                       # the register holds 1, not 2
    assert not lin(b, tmp_path)["valid"]


def test_keys_are_independent(tmp_path):
    b = hist.Builder()
    b.write(0, 10, 0, "jepsen/r/1", 1)
    b.write(0, 10, 1, "jepsen/r/2", 2)
    b.read(20, 30, 2, "jepsen/r/1", 1)
    b.read(20, 30, 3, "jepsen/r/2", None)           # stale on key 2 only
    c = lin(b, tmp_path)
    assert not c["valid"]
    assert c["details"]["keys"]["jepsen/r/1"]["result"] == "linearizable"
    assert c["details"]["keys"]["jepsen/r/2"]["result"] == "NOT linearizable"


def test_search_that_gives_up_is_invalid(tmp_path):
    b = hist.register_history(seed=5, keys=1, ops_per_key=300)
    ok = lin(b, tmp_path)
    assert ok["valid"], ok
    c = lin(b, tmp_path, linearizable_step_budget=50)
    assert not c["valid"]
    assert c["details"]["anomaly_counts"] == {"gave-up": 1}
    assert c["details"]["keys"]["jepsen/r/0"]["result"] == "gave up"


def test_large_generated_history_with_info_ops_is_valid_and_fast(tmp_path):
    b = hist.register_history(seed=7, keys=3, ops_per_key=3000, concurrency=10, p_info=0.05)
    n_info = sum(1 for e in b.events if e["type"] == "info")
    t0 = time.monotonic()
    c = lin(b, tmp_path)
    elapsed = time.monotonic() - t0
    print(f"\nlinearizable: {len(b.events) // 2} register ops ({n_info} info), 3 keys, "
          f"concurrency 10: {elapsed:.2f} s; per key {c['details']['keys']}")
    assert n_info > 100
    assert c["valid"], c["details"]["summary"]


def test_large_generated_history_with_a_planted_stale_read_fails(tmp_path):
    b = hist.register_history(seed=8, keys=1, ops_per_key=3000, concurrency=10, p_info=0.05)
    # A read long after everything, returning the very first value written: stale.
    first = next(e["value"] for e in b.events if e["f"] == "write" and e["type"] == "ok")
    end = max(e["time"] for e in b.events) / hist.MS
    b.write(end + 10, end + 20, 999, "jepsen/r/0", 10 ** 8)
    b.read(end + 30, end + 40, 999, "jepsen/r/0", first)
    t0 = time.monotonic()
    c = lin(b, tmp_path)
    print(f"\nstale read in 3000 ops found in {time.monotonic() - t0:.2f} s")
    assert not c["valid"]
    an = c["details"]["anomalies"][0]
    assert an["type"] == "nonlinearizable"
    assert an["op"]["result"] == first


def brute_force(ops):
    """Linearizable? by trying every order of every subset of the info ops (small n)."""
    import itertools
    ok = [o for o in ops if o.type == "ok"]
    info = [o for o in ops if o.type == "info" and o.f != "read"]
    for k in range(len(info) + 1):
        for chosen in itertools.combinations(info, k):
            group = ok + list(chosen)
            for perm in itertools.permutations(group):
                if _legal(perm):
                    return True
    return False


def _legal(perm):
    state = None
    for i, a in enumerate(perm):
        for b in perm[i + 1:]:       # b after a: b must not have completed before a began
            if b.type == "ok" and b.complete_time < a.invoke_time:
                return False
        if a.f == "read":
            if state != a.result:
                return False
        elif a.f == "write":
            state = a.value
        else:
            if state != a.value[0]:
                return False
            state = a.value[1]
    return True


def random_small_history(rng, unique):
    b = hist.Builder()
    n = rng.randint(2, 7)
    written = [None]
    for i in range(n):
        t0 = rng.randint(0, 60)
        t1 = t0 + rng.randint(1, 40)
        f = rng.choice(["read", "read", "write", "write", "cas"])
        type_ = rng.choice(["ok", "ok", "ok", "info", "fail"])
        if f == "read":
            b.read(t0, t1, i, K, rng.choice(written + [None, 99]), type_=type_)
        elif f == "write":
            v = 10 + i if unique else rng.randint(1, 3)
            written.append(v)
            b.write(t0, t1, i, K, v, type_=type_)
        else:
            v = 10 + i if unique else rng.randint(1, 3)
            b.cas(t0, t1, i, K, rng.choice(written), v, type_=type_)
            written.append(v)
    return b


@pytest.mark.parametrize("unique", [True, False], ids=["unique-values", "repeated-values"])
def test_agrees_with_brute_force_on_small_random_histories(unique):
    import random
    from tools.jepsen.check import linearizable, ops as opslib
    rng = random.Random(42)
    counts = {True: 0, False: 0}
    windows_found = [0]
    for _ in range(3000):
        b = random_small_history(rng, unique)
        h = opslib.History(sorted(b.events, key=lambda e: e["time"]))
        want = brute_force([o for o in h.ops if o.type != "fail"])
        kept, windows = linearizable.prune(h.ops)
        got, failure, _ = linearizable.check_key(kept, windows)
        assert got == want, [o.describe() for o in h.ops]
        counts[want] += 1
        # A window reported as failing from every starting state proves the history is
        # not linearizable: none may be found in a linearizable one, whatever the anchor.
        if want:
            for anchor in (o for o in kept if o.type == "ok"):
                small = linearizable.smallest_window(kept, windows, anchor)
                assert small is None, [o.describe() for o in h.ops]
        elif linearizable.find_window(kept, windows, failure["stuck"]):
            windows_found[0] += 1
    print(f"\nbrute force agrees on 3000 random histories: {counts}; a smallest failing "
          f"window found for {windows_found[0]} of the {counts[False]} failures")
    assert counts[True] > 300 and counts[False] > 300
    assert windows_found[0] > counts[False] // 2


def test_final_state_is_a_last_read(tmp_path):
    b = hist.Builder()
    b.write(0, 10, 0, K, 1)
    b.write(20, 30, 1, K, 2)
    b.write(40, 50, 0, K, 3, type_="info")
    good = {"kv": [{"key": K, "value": "3"}], "after_kill_all": {"kv": [{"key": K,
                                                                         "value": "3"}]}}
    c = lin(b, tmp_path, final=good)
    assert c["valid"], c
    assert "2 final reads" in c["details"]["summary"]
    # Every member killed at once, and the acknowledged write of 2 rolled back to 1.
    bad = dict(good, after_kill_all={"kv": [{"key": K, "value": "1"}]})
    c = lin(b, tmp_path, final=bad)
    assert not c["valid"]
    an = c["details"]["anomalies"][0]
    assert an["op"]["process"] == "after_kill_all" and an["op"]["result"] == 1


def test_a_failing_window_proves_it_even_when_the_search_gives_up(tmp_path):
    b = hist.register_history(seed=9, keys=1, ops_per_key=1000, concurrency=10, p_info=0.05)
    first = next(e["value"] for e in b.events if e["f"] == "write" and e["type"] == "ok")
    end = max(e["time"] for e in b.events) / hist.MS
    b.write(end + 10, end + 20, 999, "jepsen/r/0", 10 ** 8)
    b.read(end + 30, end + 40, 999, "jepsen/r/0", first)
    # Enough budget to reach the stale read at the end, not to exhaust the search.
    c = lin(b, tmp_path, linearizable_step_budget=100_000)
    assert c["details"]["anomaly_counts"] == {"nonlinearizable": 1}, c["details"]["summary"]
    an = c["details"]["anomalies"][0]
    assert "gave up" in an["explanation"]
    assert [(o["f"], o.get("result")) for o in an["ops"]][-1] == ("read", first)
