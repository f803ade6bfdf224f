"""Disk nemeses of the fault harness: a full disk, fsync errors, lost un-fsynced writes,
a torn or bit-flipped log tail. kvd only (kinds = ("kvd",)).

Faults go through faultfs (tools/faultfs), an LD_PRELOAD shim over libc's file calls,
switched on and off at run time through a control file. Go's etcd makes system calls
without libc, so the shim cannot reach it. A full disk is the shim's ENOSPC (every write
under the data dir fails, statvfs reports no free space), not a small loop-mounted
filesystem: it reaches one member, goes on and off at once in a running process, and
needs no mount under a data dir the cluster created before the nemesis existed (filling
and emptying a real filesystem is slow, and frees nothing kvd could use any faster).

  disk-full     ENOSPC on one member until stop(). kvd stops (fail-stop, exit 1, "no
                space left on device"); stop() clears the fault and restarts it.
  fsync-error   fsync/fdatasync fail with EIO on one member (the leader half of the time)
                until stop(). kvd stops at the first failed sync, acknowledging nothing
                that was not synced. stop() drops what was never synced (after a failed
                fsync the kernel may have thrown the dirty pages away: the fsyncgate
                lesson) and restarts it; it recovers from its log.
  lost-writes   kill -9 of one member, or of every member at once, then everything they
                had not fsynced is dropped, as a power loss would (tools/faultfs/control.py:
                un-fsynced tails cut, files and renames whose directory was not fsynced
                undone). stop() restarts them; nothing acknowledged may be missing.
  torn-tail     kill -9 of one member, then its newest RocksDB WAL ends in a torn record:
                cut in the middle of a record past the last fsync, or a partial copy of
                the last record appended (a write cut short). It must recover.
  bitflip-tail  kill -9 of one member, one bit flipped in the payload of one of the last
                complete records of its newest WAL, restart: it must refuse to start,
                naming the corruption, while the others serve; stop() brings it back with
                wipe_and_rejoin (member remove, wipe, member add).

Call prepare(cluster) before cluster.start() so that every member runs under the shim
from its first start; otherwise a nemesis preloads it into a member when it first needs
it (kill -9, sync, restart: described as "shim_installed" in the result).
"""

import os
import shutil
import signal
import struct
import time
from pathlib import Path

from tools.faultfs import control
from tools.jepsen.cluster import REPO_ROOT
from tools.jepsen.nemesis import Nemesis

WAL_BLOCK = 32768
WAL_HEADER = 7  # crc32c (4), length (2), type (1); RocksDB's non-recyclable records
WAL_TYPES = (1, 2, 3, 4)  # full, first, middle, last
REFUSE_TIMEOUT_S = 15.0  # bitflip-tail: a member that refuses to start exits within this
FAILSTOP_TIMEOUT_S = 1.0  # disk-full/fsync-error: stop() waits this for a dying member


def faultfs_lib(cluster=None):
    """The shim: $FAULTFS_LIB, else lib/libfaultfs.so beside the server's bin/, else the
    default build's."""
    if os.environ.get("FAULTFS_LIB"):
        return os.environ["FAULTFS_LIB"]
    if cluster is not None:
        beside = Path(cluster.binary).resolve().parents[1] / "lib" / "libfaultfs.so"
        if beside.exists():
            return str(beside)
    return str(REPO_ROOT / "build" / "lib" / "libfaultfs.so")


def store_dir(member):
    """kvd's RocksDB directory (its WAL files are NNNNNN.log)."""
    return Path(member.data_dir) / "member" / "kvd"


def state_dir(member):
    return control.state_dir(member.data_dir)


def _set_env(member, lib):
    env = control.shim_env(lib, member.data_dir, member.extra_env.get("LD_PRELOAD", ""))
    member.extra_env.update(env)


def prepare(cluster):
    """Preload the shim into every kvd member from its next start (call before start())."""
    if cluster.kind != "kvd":
        return
    lib = faultfs_lib(cluster)
    if not os.path.exists(lib):
        raise RuntimeError(f"faultfs shim not built: {lib} (cmake --build ... --target faultfs)")
    for m in cluster.members:
        _set_env(m, lib)
        cluster.add_cleanup(lambda m=m: shutil.rmtree(state_dir(m), True))


def shim_loaded(member):
    if not member.alive():
        return False
    try:
        return "libfaultfs" in Path(f"/proc/{member.proc.pid}/maps").read_text()
    except OSError:
        return False


def ensure_shim(member):
    """Make sure `member` runs under the shim with a journal that describes its files.
    Returns True if it had to restart it (kill -9, sync, restart under the shim)."""
    if shim_loaded(member):
        return False
    lib = faultfs_lib(member.cluster)
    if not os.path.exists(lib):
        raise RuntimeError(f"faultfs shim not built: {lib}")
    member.kill(signal.SIGKILL)
    os.sync()  # everything on disk is durable now: the journal starts from here
    control.reset(state_dir(member))
    _set_env(member, lib)
    member.cluster.add_cleanup(lambda: shutil.rmtree(state_dir(member), True))
    member.start()
    member.wait_ready()
    return True


def wal_files(member):
    """The member's WAL files, newest first."""
    d = store_dir(member)
    files = [p for p in d.glob("*.log") if p.stem.isdigit()] if d.exists() else []
    return sorted(files, key=lambda p: int(p.stem), reverse=True)


def wal_records(path):
    """Complete physical records of a RocksDB WAL file: [(offset, length, type)], up to the
    first incomplete or unknown one. length is the payload's."""
    data = Path(path).read_bytes()
    out = []
    pos = 0
    while pos + WAL_HEADER <= len(data):
        block_left = WAL_BLOCK - pos % WAL_BLOCK
        if block_left < WAL_HEADER:  # the writer pads the block's tail with zeros
            pos += block_left
            continue
        length, rtype = struct.unpack_from("<HB", data, pos + 4)
        if rtype == 0 and length == 0:
            break  # zeros: preallocated, never written
        if rtype not in WAL_TYPES or pos + WAL_HEADER + length > len(data):
            break
        out.append((pos, length, rtype))
        pos += WAL_HEADER + length
    return out


def newest_wal_with_records(member):
    for path in wal_files(member):
        records = wal_records(path)
        if records:
            return path, records
    return None, []


def _exit_reason(member):
    """The last 'kvd:' line of the member's log (why it stopped or refused to start)."""
    lines = [ln for ln in member.log_tail(60).splitlines() if ln.startswith("kvd:")]
    return lines[-1] if lines else None


class DiskNemesis(Nemesis):
    kinds = ("kvd",)

    def _heal_own(self):
        for m in self.cluster.members:
            if os.path.exists(os.path.join(state_dir(m), "ctl")):
                control.set_faults(state_dir(m))


class FaultWhileRunning(DiskNemesis):
    """Base of disk-full and fsync-error: a fault switched on in one running member."""
    FAULT = None
    DROP_UNSYNCED = False  # when it stopped: drop what it never synced before the restart

    def choose(self):
        return self._pick(self.cluster.live_members())

    def start(self):
        self.target = self.choose()
        installed = ensure_shim(self.target)
        control.set_faults(state_dir(self.target), self.FAULT)
        self.active = True
        return {"targets": [self.target.name], "fault": self.FAULT, "shim_installed": installed}

    def stop(self):
        t = self.target
        deadline = time.monotonic() + FAILSTOP_TIMEOUT_S
        while t.alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        out = {"targets": [t.name], "stopped": not t.alive()}
        if not t.alive():
            out["exit_code"] = t.returncode()
            out["reason"] = _exit_reason(t)
        control.set_faults(state_dir(t))
        if not t.alive() and self.DROP_UNSYNCED:
            r = control.drop_unsynced(t.data_dir, state_dir(t))
            out["bytes_dropped"] = sum(r["truncated"].values())
        if not t.alive():
            t.start()
        self.active = False
        return {**out, **self._recover([t])}


class DiskFull(FaultWhileRunning):
    name = "disk-full"
    FAULT = "enospc"


class FsyncError(FaultWhileRunning):
    name = "fsync-error"
    FAULT = "fsync-eio"
    DROP_UNSYNCED = True

    def choose(self):
        if self.rng.random() < 0.5:
            return self._leader_or_random()
        return super().choose()


class LostWrites(DiskNemesis):
    """kill -9 one member or all at once, then drop what they had not fsynced."""
    name = "lost-writes"
    ALL_PROBABILITY = 0.3

    def start(self):
        live = sorted(self.cluster.live_members(), key=lambda m: m.name)
        every = self.rng.random() < self.ALL_PROBABILITY
        self.targets = live if every else [self._pick(live)]
        installed = [m.name for m in self.targets if ensure_shim(m)]
        for m in self.targets:
            m.kill(signal.SIGKILL)
        dropped = {}
        for m in self.targets:
            r = control.drop_unsynced(m.data_dir, state_dir(m))
            dropped[m.name] = {"bytes_truncated": sum(r["truncated"].values()),
                               "files_truncated": len(r["truncated"]),
                               "files_removed": len(r["removed"]),
                               "renames_undone": len(r["renames_undone"])}
        self.active = True
        return {"targets": [m.name for m in self.targets], "all": every, "dropped": dropped,
                "shim_installed": installed}

    def stop(self):
        for m in self.targets:
            if not m.alive():
                m.start()
        self.active = False
        return {"targets": [m.name for m in self.targets], **self._recover(self.targets)}


def tear_tail(member, rng, mode=None):
    """Make the member's newest WAL end in a torn record (member stopped). mode "cut": cut
    in the middle of a record written after the last fsync (when there is none: "append");
    "append": append a partial copy of the last record; None: either, at random. Returns
    a description, or None when it has no WAL record."""
    path, records = newest_wal_with_records(member)
    if path is None:
        return None
    size = path.stat().st_size
    files, _ = control.durable_state(state_dir(member))
    synced = files.get(str(path), {}).get("synced")
    unsynced = [r for r in records if synced is not None and r[0] >= synced]
    if mode is None:
        mode = rng.choice(["cut", "append"])
    if unsynced and mode == "cut":
        off, length, _ = rng.choice(unsynced)
        cut = off + rng.randint(1, WAL_HEADER + length - 1)
        os.truncate(path, cut)
        return {"wal": path.name, "mode": "cut", "at": cut, "size_was": size,
                "synced": synced}
    # A write of one more record cut short: a prefix of the last record, within the
    # block it would have been written to (a record never crosses a 32 KiB block).
    off, length, _ = records[-1]
    end = records[-1][0] + WAL_HEADER + length
    data = path.read_bytes()
    os.truncate(path, end)  # drop a trailing partial record if there is one
    block_left = WAL_BLOCK - end % WAL_BLOCK
    pad = b""
    if block_left < WAL_HEADER:  # the writer pads this block and starts the next one
        pad, block_left = b"\0" * block_left, WAL_BLOCK
    keep = rng.randint(1, min(WAL_HEADER + length, block_left) - 1)
    with open(path, "ab") as f:
        f.write(pad + data[off:off + keep])
    return {"wal": path.name, "mode": "append-partial", "bytes": keep, "at": end,
            "size_was": size}


def flip_bit(member, rng, last=3):
    """Flip one bit in the payload of one of the `last` complete records of the member's
    newest WAL (member stopped). Returns a description, or None without a record."""
    path, records = newest_wal_with_records(member)
    if path is None:
        return None
    candidates = [r for r in records if r[1] > 0][-last:]
    if not candidates:
        return None
    off, length, _ = rng.choice(candidates)
    pos = off + WAL_HEADER + rng.randrange(length)
    bit = rng.randrange(8)
    with open(path, "r+b") as f:
        f.seek(pos)
        byte = f.read(1)[0]
        f.seek(pos)
        f.write(bytes([byte ^ (1 << bit)]))
    return {"wal": path.name, "offset": pos, "bit": bit, "record_at": off}


class TornTail(DiskNemesis):
    name = "torn-tail"

    def start(self):
        self.target = self._pick(self.cluster.live_members())
        self.target.kill(signal.SIGKILL)
        torn = tear_tail(self.target, self.rng)
        self.active = True
        return {"targets": [self.target.name], "torn": torn}

    def stop(self):
        if not self.target.alive():
            self.target.start()
        self.active = False
        return {"targets": [self.target.name], **self._recover([self.target])}


class BitflipTail(DiskNemesis):
    name = "bitflip-tail"

    def start(self):
        t = self.target = self._pick(self.cluster.live_members())
        t.kill(signal.SIGKILL)
        self.flip = flip_bit(t, self.rng)
        t.start()
        deadline = time.monotonic() + REFUSE_TIMEOUT_S
        while t.alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        out = {"targets": [t.name], "flip": self.flip, "refused": not t.alive()}
        if not t.alive():
            out["exit_code"] = t.returncode()
            out["reason"] = _exit_reason(t)
        self.active = True
        return out

    def _repair(self):
        t = getattr(self, "target", None)
        if t is None or not (self.flip is not None or not t.alive()):
            return False
        t.wipe_and_rejoin(self.cluster)
        self.flip = None
        return True

    def _heal_own(self):
        super()._heal_own()
        self._repair()

    def stop(self):
        repaired = self._repair()
        self.active = False
        return {"targets": [self.target.name], "wiped_and_rejoined": repaired,
                **self._recover([self.target])}


NEMESES = {cls.name: cls for cls in (DiskFull, FsyncError, LostWrites, TornTail, BitflipTail)}
