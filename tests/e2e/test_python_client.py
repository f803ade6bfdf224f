"""python etcd3 0.12's high-level API, unchanged, as an application uses it: status,
members, locks (with a competing client), watch iterators and callbacks, alarms,
defragment, hash, snapshot. Logical assertions only; bounded waits.
"""

import io
import threading

import etcd3
import pytest

WAIT_S = 10.0

# etcd3's watch thread outlives cancel() and raises "Channel closed" when the fixture
# closes the client at teardown: a library artifact, not a server behaviour.
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")


def new_client(server):
    m = server.members[0]
    return etcd3.client(host="127.0.0.1", port=m.client_port, timeout=5)


def test_status_and_members(server):
    c = server.client()
    m = server.members[0]
    members = list(c.members)
    assert [(x.name, list(x.peer_urls), list(x.client_urls)) for x in members] == \
        [(m.name, [m.peer_url], [m.client_url])]
    status = c.status()
    assert status.leader is not None and status.leader.id == members[0].id
    assert status.raft_term >= 1 and status.raft_index >= 1 and status.db_size > 0
    assert isinstance(status.version, str) and status.version.count(".") == 2


def test_lock_excludes_a_second_client(server):
    """etcd3.Lock: a txn "create_revision(key) == 0 -> put key with a lease". (The
    library's own retry loop for a contended lock is broken with Debian's tenacity, a
    client-side bug, so the rival's single attempt is made with the same txn.)"""
    first, second = server.client(), new_client(server)
    try:
        lock = first.lock("job", ttl=30)
        assert lock.acquire(timeout=5)
        assert lock.is_acquired()
        tx = second.transactions
        took, _ = second.transaction(compare=[tx.create(lock.key) == 0],
                                     success=[tx.put(lock.key, "rival")], failure=[])
        assert took is False, "a second client took a held lock"
        lock.release()
        assert not lock.is_acquired()
        rival = second.lock("job", ttl=30)
        assert rival.acquire(timeout=5)
        rival.release()
        with first.lock("job", ttl=30) as held:
            assert held.is_acquired()
    finally:
        second.close()


def test_watch_iterator_and_cancel(server):
    c = server.client()
    events, cancel = c.watch_prefix("w/")
    got = []

    def consume():
        for ev in events:
            got.append((type(ev).__name__, ev.key, ev.value))
            if len(got) == 2:
                break

    reader = threading.Thread(target=consume, daemon=True)
    reader.start()
    # The iterator registers the watch before returning, so these cannot be missed.
    c.put("w/a", "1")
    c.delete("w/a")
    reader.join(timeout=WAIT_S)
    cancel()
    assert got == [("PutEvent", b"w/a", b"1"), ("DeleteEvent", b"w/a", b"")]


def test_watch_once_and_callback(server):
    c = server.client()
    seen = threading.Event()
    received = []

    def callback(response):
        received.extend((ev.key, ev.value) for ev in response.events)
        seen.set()

    watch_id = c.add_watch_callback("cb", callback)
    head = c.put("cb", "x").header.revision
    assert seen.wait(WAIT_S), "callback not called"
    c.cancel_watch(watch_id)
    assert received == [(b"cb", b"x")]
    event = c.watch_once("cb", timeout=WAIT_S, start_revision=head)
    assert (event.key, event.value, event.mod_revision) == (b"cb", b"x", head)
    with pytest.raises(etcd3.exceptions.WatchTimedOut):
        c.watch_once("never-written", timeout=1)


def test_alarms_defragment_hash_snapshot(server):
    c = server.client()
    c.put("k", "v")
    assert c.list_alarms() == [] or list(c.list_alarms()) == []
    c.defragment()
    h1, h2 = c.hash(), c.hash()
    assert h1 == h2
    c.put("k", "v2")
    assert c.hash() != h1
    buffer = io.BytesIO()
    c.snapshot(buffer)
    assert len(buffer.getvalue()) > 0
