"""Tests of the watch checker (tools/jepsen/check/watch.py): each watcher's events against
the store's (final.json events). No server needed."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent / "histories"))
import hist  # noqa: E402

P = "jepsen"
A, B = "jepsen/w/a", "jepsen/w/b"
# The store's history: revision 5 is a transaction that wrote both keys.
STORE = hist.events_of([(2, "PUT", A, 1, 0), (3, "PUT", B, 2, 0), (4, "DELETE", A, None, 0),
                        (5, "PUT", A, 3, 0), (5, "PUT", B, 4, 0), (6, "PUT", B, 5, 0),
                        (7, "PUT", "other/k", 6, 0)])


def ev(rev, key=None):
    """The store's event(s) at rev (of key)."""
    return [e for e in STORE if e["revision"] == rev and (key is None or e["key"] == key)]


class Watcher:
    def __init__(self, b, watcher=0, process=100):
        self.b, self.watcher, self.process = b, watcher, process

    def start(self, t, start_revision, key=P + "/", range_end=P + "0"):
        self.process += 1
        self.single(t, "watch-start", key=key, range_end=range_end,
                    start_revision=start_revision, node="n1")

    def single(self, t, f, **fields):
        self.b.single(t, process=self.process, type="ok", workload="watch",
                      watcher=self.watcher, f=f, **fields)

    def events(self, t, *events, header=None):
        events = [e for group in events for e in group]
        self.single(t, "watch-events", value=events,
                    revision=header or max(e["revision"] for e in events), node="n1")

    def progress(self, t, rev):
        self.single(t, "watch-progress", revision=rev)

    def end(self, t, error="stopped"):
        self.single(t, "watch-end", error=error)


def run(b, tmp_path, events=STORE):
    r = hist.check(b, tmp_path, final={"events": events}, only=["watch"])
    return r.checks["watch"], r.anomaly_types("watch")


def test_valid_watch_with_rewatch(tmp_path):
    b = hist.Builder()
    w = Watcher(b)
    w.start(0, 1)
    w.events(10, ev(2))
    w.events(20, ev(3), ev(4))
    w.end(25, "connection lost")
    w.start(30, 5)                    # re-watch from last seen + 1 on a new stream
    w.events(40, ev(5))
    w.progress(45, 5)
    w.events(50, ev(6))               # revision 7 is outside the range; nothing after
    w.end(60)
    c, types = run(b, tmp_path)
    assert c["valid"], c
    s = c["details"]["streams"]["watcher 0"]
    assert s["received"] == 6 and s["last_revision"] == 6


def test_events_not_yet_received_at_the_end_are_not_a_gap(tmp_path):
    b = hist.Builder()
    w = Watcher(b)
    w.start(0, 1)
    w.events(10, ev(2), ev(3))
    w.end(20)
    c, types = run(b, tmp_path)
    assert c["valid"], c
    assert c["details"]["streams"]["watcher 0"]["not_received_at_end"] == 4


def test_gap(tmp_path):
    b = hist.Builder()
    w = Watcher(b)
    w.start(0, 1)
    w.events(10, ev(2))
    w.events(20, ev(4))               # 3 never arrives
    c, types = run(b, tmp_path)
    assert types == ["gap"], c
    assert c["details"]["anomalies"][0]["first"]["revision"] == 3


def test_gap_before_a_progress_notification(tmp_path):
    b = hist.Builder()
    w = Watcher(b)
    w.start(0, 1)
    w.events(10, ev(2))
    w.progress(20, 4)                 # says everything up to 4 was sent: 3 and 4 were not
    c, types = run(b, tmp_path)
    assert types == ["gap"], c


def test_rewatch_from_a_later_revision_is_a_gap(tmp_path):
    b = hist.Builder()
    w = Watcher(b)
    w.start(0, 1)
    w.events(10, ev(2))
    w.end(15, "broken")
    w.start(20, 4)                    # should have been 3
    w.events(30, ev(4))
    c, types = run(b, tmp_path)
    assert types == ["gap"], c


def test_duplicate(tmp_path):
    b = hist.Builder()
    w = Watcher(b)
    w.start(0, 1)
    w.events(10, ev(2), ev(3))
    w.events(20, ev(3), ev(4))
    c, types = run(b, tmp_path)
    assert types == ["duplicate"], c


def test_reorder(tmp_path):
    b = hist.Builder()
    w = Watcher(b)
    w.start(0, 1)
    w.events(10, ev(2), ev(4))
    w.events(20, ev(3))
    c, types = run(b, tmp_path)
    assert types == ["reorder"], c


def test_torn_revision_split_over_responses(tmp_path):
    b = hist.Builder()
    w = Watcher(b)
    w.start(0, 1)
    w.events(10, ev(2), ev(3), ev(4), ev(5, A))
    w.events(20, ev(5, B), ev(6))
    c, types = run(b, tmp_path)
    assert types == ["torn-revision"], c


def test_torn_revision_partly_received(tmp_path):
    b = hist.Builder()
    w = Watcher(b)
    w.start(0, 1)
    w.events(10, ev(2), ev(3), ev(4), ev(5, B))
    w.events(20, ev(6))
    c, types = run(b, tmp_path)
    assert types == ["torn-revision"], c


def test_mismatch_phantom_and_out_of_range(tmp_path):
    b = hist.Builder()
    w = Watcher(b)
    w.start(0, 3)
    bad = dict(ev(3)[0], value="999")
    w.events(10, [bad], ev(4), ev(2))                 # 2 is below the start revision
    w.events(20, ev(5), [dict(ev(6)[0], revision=8)])  # the store has no revision 8
    c, types = run(b, tmp_path)
    assert types == ["mismatch", "out-of-range", "phantom-event"], c


def test_ahead_of_store(tmp_path):
    b = hist.Builder()
    w = Watcher(b)
    w.start(0, 1)
    w.events(10, ev(2), ev(3), ev(4), ev(5))
    # A linearizable read invoked after the watcher saw revision 5 returns revision 4.
    b.read(12, 20, 0, "jepsen/r/1", None, revision=4)
    b.read(5, 20, 1, "jepsen/r/1", None, revision=3)   # invoked before: fine
    c, types = run(b, tmp_path)
    assert types == ["ahead-of-store"], c


def test_no_watchers_is_nothing_to_check(tmp_path):
    b = hist.Builder()
    b.read(0, 1, 0, "jepsen/r/1", None)
    c, types = run(b, tmp_path)
    assert c["valid"] and "nothing to check" in c["details"]["summary"]
