"""The run's history: a thread-safe writer of `history.jsonl` (one JSON object a line).

Every event gets `index` (its line number) and `time` (ns since the run started, monotonic
clock). A client operation is an `invoke` and one completion (`ok`, `fail` or `info`)
sharing an `op` id. A process whose operation ended `info` (outcome unknown) never issues
another operation: it continues under a fresh process id, as in Jepsen. See
tools/jepsen/README.md for the fields of each workload.
"""

import itertools
import json
import threading
import time

COMPLETIONS = ("ok", "fail", "info")


class History:
    """Appends events to a JSONL file, flushed line by line (a crash keeps what was seen)."""

    def __init__(self, path):
        self.path = path
        self._file = open(path, "w", encoding="utf-8")
        self._lock = threading.Lock()
        self._index = 0
        self._ops = itertools.count()
        self._processes = itertools.count()
        self._t0 = time.monotonic_ns()

    def now(self):
        """ns since the run started (the `time` of an event logged now)."""
        return time.monotonic_ns() - self._t0

    def new_process(self):
        """A process id never used before in this run."""
        with self._lock:
            return next(self._processes)

    def log(self, event):
        """Append one event (a dict; `index` and `time` are set here). Returns it."""
        with self._lock:
            event = {"index": self._index, "time": self.now(), **event}
            self._index += 1
            if not self._file.closed:
                self._file.write(json.dumps(event, separators=(",", ":")) + "\n")
                self._file.flush()
            return event

    def invoke(self, process, workload, f, **fields):
        """Log the invocation of an operation; returns it (pass it to complete())."""
        op = next(self._ops)
        return self.log({"process": process, "type": "invoke", "f": f,
                         "workload": workload, **fields, "op": op})

    def complete(self, invocation, type_, **fields):
        """Log the completion of `invocation` as ok | fail | info; fields override its own
        (e.g. the value a read returned)."""
        assert type_ in COMPLETIONS, type_
        event = {k: v for k, v in invocation.items() if k not in ("index", "time")}
        event.update(fields)
        event["type"] = type_
        return self.log(event)

    def nemesis(self, f, value):
        """A fault-window event: f is start | stop | converged | ..."""
        return self.log({"process": "nemesis", "type": "info", "f": f, "value": value})

    def close(self):
        with self._lock:
            self._file.close()


def read(path):
    """The events of a history file, in order."""
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
