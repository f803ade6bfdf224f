"""Watch workload: watchers on several members over the whole run prefix, and a writer.

One watcher per member (to begin with) watches every key of the run (all workloads' writes
are its events), one more only the writer's keys `<prefix>/w/`; all from revision 1 with
progress notifications on, logging what they receive. When a watcher's stream breaks it
re-watches from the last event revision seen + 1, on another member. Each stream is its
own process id; `watcher` names the watcher across its streams. Logged (all `type: "ok"`,
workload "watch"):
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
        self._prefixes = []         # watcher -> the key prefix it watches
        self._newest = {}           # prefix -> newest event revision any watcher saw in it
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
        # One watcher of the whole run per member, and one of the writer's keys only.
        whole = self.ctx.prefix + "/"
        specs = [(name, whole) for name, _ in self.ctx.members]
        specs.append((self.rng.choice(self.ctx.members)[0], self.ctx.key("w") + "/"))
        self._prefixes = [prefix for _, prefix in specs]
        for i, (name, prefix) in enumerate(specs):
            t = threading.Thread(target=self._watcher,
                                 args=(i, name, prefix.encode(), self.rng.random()),
                                 name=f"watcher-{i}", daemon=True)
            t.start()
            self._threads.append(t)

    def finish(self, target_revision, timeout):
        """Let every watcher reach target_revision (bounded), then close the streams. A
        watcher of part of the keys is done at the newest event of its part that the
        watchers of every key saw up to target_revision."""
        deadline = time.monotonic() + timeout
        whole = self.ctx.prefix + "/"

        def done(i):
            prefix = self._prefixes[i]
            target = target_revision if prefix == whole else self._newest.get(prefix, 0)
            return self._last.get(i, 0) >= target
        while time.monotonic() < deadline:
            with self._lock:
                wholes = [i for i, p in enumerate(self._prefixes) if p == whole]
                if all(done(i) for i in wholes) and all(
                        done(i) for i in range(len(self._prefixes))):
                    break
            time.sleep(0.1)
        self._stopping.set()
        with self._lock:
            for call, q in self._streams.values():
                q.put(None)
                call.cancel()
        for t in self._threads:
            t.join(timeout=10)

    def _watcher(self, index, node, key, seed):
        import random
        rng = random.Random(seed)
        history = self.ctx.history
        cl = clientlib.Client(self.ctx.members, rng, self.ctx.timeout)
        cl.use(node)
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
                                for e in events:
                                    for p in self._prefixes:
                                        if e["key"].startswith(p) and \
                                                e["revision"] > self._newest.get(p, 0):
                                            self._newest[p] = e["revision"]
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
