"""Workloads of the fault harness: what the clients do, and how each operation is logged.

A workload has `step(worker)` (one operation of one client; the driver calls it in a loop
from each of its client threads) and may run background threads (`start()` / `finish()`,
e.g. the watchers). Every random choice comes from the rng the driver derives from --seed.

`Worker.op()` brackets an operation: it logs the invoke, runs the call, logs ok / fail /
info, and after `info` moves the worker to a fresh process id (an operation of unknown
outcome may still take effect later; its process never issues another one).
"""

import itertools
import threading

from .. import client as clientlib


class Context:
    """What every workload shares: history, key prefix, members, stop flag, unique values."""

    def __init__(self, history, prefix, members, stop, timeout=clientlib.DEFAULT_TIMEOUT_S):
        self.history = history
        self.prefix = prefix          # str, no trailing slash
        self.members = members        # [(name, "host:port")]
        self.stop = stop              # threading.Event: set when the run's time is up
        self.timeout = timeout
        self._values = itertools.count(1)
        self._values_lock = threading.Lock()

    def next_value(self):
        """A value no other operation of this run writes."""
        with self._values_lock:
            return next(self._values)

    def key(self, *parts):
        return "/".join((self.prefix,) + tuple(str(p) for p in parts))


class Worker:
    """One client thread of one workload: a process id, a Client and private state."""

    def __init__(self, ctx, workload, rng):
        self.ctx = ctx
        self.workload = workload
        self.rng = rng
        self.process = ctx.history.new_process()
        self.client = clientlib.Client(ctx.members, rng, ctx.timeout)
        self.state = {}
        self.last_type = "ok"  # how the latest operation ended

    def op(self, f, fn, **fields):
        """Log invoke, run fn() -> dict of completion fields, log its completion.

        fn raises client.Fail (did not happen) or client.Unknown (may have happened).
        Returns the completion event (its "type" says how it ended)."""
        history = self.ctx.history
        inv = history.invoke(self.process, self.workload, f, node=self.client.node, **fields)
        try:
            result = fn()
        except clientlib.OpError as e:
            done = history.complete(inv, e.type, error=e.error)
        except Exception as e:  # a bug of ours or an odd response: outcome unknown
            done = history.complete(inv, "info", error=f"client exception: {e!r}")
        else:
            done = history.complete(inv, "ok", **(result or {}))
        self.last_type = done["type"]
        if done["type"] == "info":
            self.process = history.new_process()
        return done

    def close(self):
        self.client.close()


class Workload:
    name = ""

    def __init__(self, ctx, rng):
        self.ctx = ctx
        self.rng = rng

    def step(self, worker):
        raise NotImplementedError

    def start(self):
        """Start background threads (called once before the clients start)."""

    def finish(self, target_revision, timeout):
        """Stop background threads, after letting them reach target_revision."""


def registry():
    """name -> Workload class."""
    from . import append, lease, lock, register, watch
    return {w.name: w for w in (register.Register, append.Append, watch.Watch,
                                lease.Lease, lock.Lock)}
