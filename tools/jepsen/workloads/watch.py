"""Watch workload: watchers on several members over the whole run prefix, and a writer.

Each watcher (one per member to begin with) watches every key of the run (all workloads'
writes are its events) from revision 1 with progress notifications on, and logs what it
receives. When its stream breaks it re-watches from the last event revision seen + 1,
on another member. Each stream is its own process id; `watcher` names the watcher across
its streams. Logged (all `type: "ok"`, workload "watch"):
  watch-start    key, range_end, start_revision, node
  watch-events   revision (response header), value: [event...] (client.event_json)
  watch-progress revision (a progress notification)
  watch-end      error (why the stream ended; "stopped" at the end of the run)
The writer's steps put unique ints (`write`) to and delete (`delete`) keys `<prefix>/w/<n>`,
so the watchers also see DELETE events. Checked against final.json's events.
"""

import queue
import threading
import time

import grpc
from etcd3 import etcdrpc

from .. import client as clientlib
from . import Workload

KEYS = 3


class Watch(Workload):
    name = "watch"

    def __init__(self, ctx, rng):
        super().__init__(ctx, rng)
        self._threads = []
        self._streams = {}          # watcher -> (call, request queue) of its open stream
        self._last = {}             # watcher -> last event revision seen
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    # --- the writer ---------------------------------------------------------------------

    def step(self, w):
        key = self.ctx.key("w", w.rng.randrange(KEYS))
        if w.rng.random() < 0.8:
            value = self.ctx.next_value()

            def write():
                resp = w.client.put(key.encode(), str(value).encode())
                return {"revision": resp.header.revision}
            w.op("write", write, key=key, value=value)
        else:
            def delete():
                resp = w.client.delete(key.encode())
                return {"revision": resp.header.revision, "deleted": resp.deleted}
            w.op("delete", delete, key=key, value=None)

    # --- the watchers -------------------------------------------------------------------

    def start(self):
        for i, (name, _) in enumerate(self.ctx.members):
            t = threading.Thread(target=self._watcher, args=(i, name, self.rng.random()),
                                 name=f"watcher-{i}", daemon=True)
            t.start()
            self._threads.append(t)

    def finish(self, target_revision, timeout):
        """Let every watcher reach target_revision (bounded), then close the streams."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if all(self._last.get(i, 0) >= target_revision
                       for i in range(len(self._threads))):
                    break
            time.sleep(0.1)
        self._stopping.set()
        with self._lock:
            for call, q in self._streams.values():
                q.put(None)
                call.cancel()
        for t in self._threads:
            t.join(timeout=10)

    def _watcher(self, index, node, seed):
        import random
        rng = random.Random(seed)
        history = self.ctx.history
        cl = clientlib.Client(self.ctx.members, rng, self.ctx.timeout)
        cl.use(node)
        key = self.ctx.prefix.encode() + b"/"
        range_end = clientlib.prefix_end(key)
        last = 0
        try:
            while not self._stopping.is_set():
                process = history.new_process()
                start = last + 1 if last else 1
                base = {"process": process, "type": "ok", "workload": "watch",
                        "watcher": index}
                q = queue.Queue()
                q.put(etcdrpc.WatchRequest(create_request=etcdrpc.WatchCreateRequest(
                    key=key, range_end=range_end, start_revision=start,
                    progress_notify=True)))

                def requests(q=q):
                    while True:
                        r = q.get()
                        if r is None:
                            return
                        yield r
                call = etcdrpc.WatchStub(cl.channel()).Watch(requests())
                with self._lock:
                    self._streams[index] = (call, q)
                history.log({**base, "f": "watch-start", "key": key.decode(),
                             "range_end": range_end.decode(), "start_revision": start,
                             "node": cl.node})
                error = "stream ended"
                try:
                    for resp in call:
                        if resp.canceled:
                            error = f"canceled: {resp.cancel_reason}"
                            break
                        if resp.events:
                            events = [clientlib.event_json(e) for e in resp.events]
                            last = max(last, max(e["revision"] for e in events))
                            with self._lock:
                                self._last[index] = last
                            history.log({**base, "f": "watch-events",
                                         "revision": resp.header.revision,
                                         "value": events, "node": cl.node})
                        elif not resp.created:
                            with self._lock:
                                self._last[index] = max(last, resp.header.revision)
                            history.log({**base, "f": "watch-progress",
                                         "revision": resp.header.revision,
                                         "node": cl.node})
                except grpc.RpcError as e:
                    error = clientlib.describe(e)
                finally:
                    q.put(None)
                    call.cancel()
                if self._stopping.is_set():
                    error = "stopped"
                history.log({**base, "f": "watch-end", "error": error, "node": cl.node})
                if not self._stopping.is_set():
                    cl.switch()
                    self._stopping.wait(0.2)
        finally:
            cl.close()
