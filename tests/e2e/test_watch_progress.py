"""Periodic watch progress notifications (--experimental-watch-progress-notify-interval).

The server runs with a short interval. A watcher created with progress_notify gets, while
it has no events to deliver, empty responses whose header carries the current revision;
a watcher without progress_notify gets none. Against a writer, every notification reports
a revision whose events were all delivered before it: no event at or below a notified
revision comes after the notification (etcd #15220 broke this and Kubernetes' consistent
reads with it).

Waits are bounded by counts of responses and WAIT_S, never by "quiet for N seconds".
"""

import random
import threading
import time

import pytest
from etcd3 import etcdrpc

import harness

INTERVAL = "500ms"
WAIT_S = 10.0
NOTIFICATIONS_MIN = 5


def is_progress(resp):
    return not resp.events and not resp.created and not resp.canceled


def test_notifications_carry_the_current_revision(server):
    kv = server.client().kvstub
    stream = harness.WatchStream(server.members[0].endpoint)
    quiet = harness.WatchStream(server.members[0].endpoint)
    try:
        stream.create(key=b"p/", range_end=b"p0", progress_notify=True)
        quiet.create(key=b"p/", range_end=b"p0")
        assert stream.next(WAIT_S).created and quiet.next(WAIT_S).created
        last = 0
        for i in range(3):
            last = kv.Put(etcdrpc.PutRequest(key=b"p/%d" % i, value=b"v"),
                          timeout=WAIT_S).header.revision
        # A write outside the watched range moves the store's revision on: notifications
        # report the store's revision, not the watcher's last event.
        outside = kv.Put(etcdrpc.PutRequest(key=b"q", value=b"v"),
                         timeout=WAIT_S).header.revision
        seen_rev, notified_rev = 0, 0
        deadline = time.monotonic() + WAIT_S
        while notified_rev < outside:
            assert time.monotonic() < deadline, f"no notification of {outside} in {WAIT_S}s"
            resp = stream.next(WAIT_S)
            if is_progress(resp):
                assert resp.header.revision >= max(seen_rev, notified_rev)
                notified_rev = resp.header.revision
            for ev in resp.events:
                assert notified_rev < ev.kv.mod_revision, "event after its revision's notification"
                seen_rev = ev.kv.mod_revision
        assert seen_rev == last
        assert notified_rev == outside
        # The watcher without progress_notify got its events and nothing else.
        events = []
        while len(events) < 3:
            resp = quiet.next(WAIT_S)
            assert resp.events, f"unexpected response without events: {resp}"
            events += resp.events
        kv.Put(etcdrpc.PutRequest(key=b"p/end", value=b"v"), timeout=WAIT_S)
        resp = quiet.next(WAIT_S)
        assert [ev.kv.key for ev in resp.events] == [b"p/end"]
    finally:
        stream.close()
        quiet.close()


def test_no_notification_overtakes_its_events(server):
    """A writer puts without pause while a progress watcher reads; every event that arrives
    after a notification of revision R has a revision above R."""
    endpoint = server.members[0].endpoint
    stream = harness.WatchStream(endpoint)
    stop = threading.Event()
    errors = []

    def writer():
        # Bursts with pauses: a notification goes only to a watcher that had no events
        # since the last tick.
        c = server.client()
        rng = random.Random(7)
        i = 0
        try:
            while not stop.is_set():
                for _ in range(rng.randrange(1, 20)):
                    c.kvstub.Put(etcdrpc.PutRequest(key=b"w/%d" % (i % 50), value=b"%d" % i),
                                 timeout=WAIT_S)
                    i += 1
                stop.wait(rng.uniform(0, 1.2))
        except Exception as e:  # reported by the test
            errors.append(e)

    try:
        stream.create(key=b"w/", range_end=b"w0", progress_notify=True)
        assert stream.next(WAIT_S).created
        t = threading.Thread(target=writer, daemon=True)
        t.start()
        notified_rev, last_event_rev, notifications = 0, 0, 0
        deadline = time.monotonic() + 3 * WAIT_S
        try:
            while notifications < NOTIFICATIONS_MIN or last_event_rev == 0:
                assert time.monotonic() < deadline, f"{notifications} notifications"
                resp = stream.next(WAIT_S)
                if is_progress(resp):
                    assert resp.header.revision >= last_event_rev
                    notified_rev = resp.header.revision
                    notifications += 1
                for ev in resp.events:
                    assert ev.kv.mod_revision > notified_rev, (
                        f"event at {ev.kv.mod_revision} after a notification of {notified_rev}")
                    assert ev.kv.mod_revision > last_event_rev
                    last_event_rev = ev.kv.mod_revision
        finally:
            stop.set()
            t.join(timeout=WAIT_S)
        assert not errors, errors
    finally:
        stream.close()


pytestmark = pytest.mark.server_flags("--experimental-watch-progress-notify-interval", INTERVAL)
