"""Tests of faultfs (tools/faultfs): the LD_PRELOAD shim and its harness side.

A small Python program writes through libc under the shim (as kvd does): faults switched
on and off while it runs reach its next call, and after kill -9 drop_unsynced() leaves
exactly what a power loss would (un-fsynced tails cut, names whose directory was never
fsynced gone, an un-synced rename undone with the replaced file back).
"""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
from tools.faultfs import control  # noqa: E402
from tools.jepsen import disk_nemesis  # noqa: E402
from tools.jepsen.cluster import Cluster  # noqa: E402

# Runs commands read from stdin, one a line, answering "ok" or the errno name.
CHILD = r"""
import errno, os, sys
root = sys.argv[1]
fds = {}
for line in sys.stdin:
    cmd, *args = line.split()
    try:
        if cmd == "open":
            flags = os.O_CREAT | os.O_WRONLY | os.O_APPEND
            fds[args[0]] = os.open(os.path.join(root, args[0]), flags, 0o644)
        elif cmd == "opendir":
            fds[args[0]] = os.open(os.path.join(root, args[0]), os.O_RDONLY)
        elif cmd == "write":
            os.write(fds[args[0]], args[1].encode())
        elif cmd == "fsync":
            os.fsync(fds[args[0]])
        elif cmd == "rename":
            os.rename(os.path.join(root, args[0]), os.path.join(root, args[1]))
        print("ok", flush=True)
    except OSError as e:
        print(errno.errorcode[e.errno], flush=True)
"""


def shim_lib():
    lib = disk_nemesis.faultfs_lib()
    kvd = os.environ.get("KVD_BIN")
    if kvd and not os.environ.get("FAULTFS_LIB"):
        lib = str(Path(kvd).resolve().parents[1] / "lib" / "libfaultfs.so")
    if not os.path.exists(lib):
        pytest.fail(f"faultfs shim not built: {lib} (set FAULTFS_LIB or KVD_BIN)", pytrace=False)
    return lib


class Child:
    def __init__(self, root):
        env = dict(os.environ, **control.shim_env(shim_lib(), root))
        self.proc = subprocess.Popen(["/usr/bin/python3", "-c", CHILD, root], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def __call__(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)


@pytest.fixture
def child(tmp_path):
    root = tmp_path / "data"
    (root / "d").mkdir(parents=True)
    made = []

    def make():
        c = Child(str(root))
        made.append(c)
        return c

    yield root, make
    for c in made:
        if c.proc.poll() is None:
            c.kill()


def test_faults_switch_on_and_off_while_running(child, tmp_path):
    root, make = child
    c = make()
    state = control.state_dir(root)
    assert c("open d/f") == "ok"
    assert c("write d/f abc") == "ok"
    control.set_faults(state, "fsync-eio")
    assert c("fsync d/f") == "EIO"
    assert c("write d/f abc") == "ok"
    control.set_faults(state, "enospc")
    assert c("write d/f abc") == "ENOSPC"
    assert c("fsync d/f") == "ok"
    control.set_faults(state)
    assert c("write d/f abc") == "ok"
    assert c("fsync d/f") == "ok"
    # Files outside the root are never touched.
    outside = tmp_path / "outside"
    outside.mkdir()
    control.set_faults(state, "enospc", "fsync-eio")
    assert c("open ../outside/g") == "ok"
    assert c("write ../outside/g abc") == "ok"
    assert c("fsync ../outside/g") == "ok"
    assert c("write d/f abc") == "ENOSPC"
    with pytest.raises(ValueError):
        control.set_faults(state, "no-such-fault")


def test_drop_unsynced_is_a_power_loss(child):
    root, make = child
    c = make()
    for line in [
        "opendir d",
        # a: 3 bytes synced, name made durable; then 4 more bytes never synced.
        "open d/a", "write d/a aaa", "fsync d/a", "fsync d",
        "write d/a AAAA",
        # e: durable; then replaced by a rename that its directory never saw synced.
        "open d/e", "write d/e old", "fsync d/e", "fsync d",
        # b: synced content, but its directory was never fsynced after it was created.
        "open d/b", "write d/b bbb", "fsync d/b",
        "open d/e.tmp", "write d/e.tmp new", "fsync d/e.tmp", "rename d/e.tmp d/e",
    ]:
        assert c(line) == "ok", line
    c.kill()
    # Before the power loss the page cache has everything.
    assert (root / "d" / "a").read_bytes() == b"aaaAAAA"
    assert (root / "d" / "e").read_bytes() == b"new"
    report = control.drop_unsynced(str(root))
    assert (root / "d" / "a").read_bytes() == b"aaa"
    assert not (root / "d" / "b").exists()
    assert (root / "d" / "e").read_bytes() == b"old"
    assert not (root / "d" / "e.tmp").exists()
    assert report["truncated"] == {str(root / "d" / "a"): 4}
    assert str(root / "d" / "b") in report["removed"]
    assert report["renames_undone"] == [[str(root / "d" / "e.tmp"), str(root / "d" / "e")]]

    # The journal starts afresh: what is on disk now is durable, a synced rename stays.
    c = make()
    for line in ["opendir d", "open d/c.tmp", "write d/c.tmp ccc", "fsync d/c.tmp",
                 "rename d/c.tmp d/c", "fsync d", "open d/a", "write d/a more"]:
        assert c(line) == "ok", line
    c.kill()
    report = control.drop_unsynced(str(root))
    assert (root / "d" / "c").read_bytes() == b"ccc"
    assert (root / "d" / "a").read_bytes() == b"aaa"
    assert report["removed"] == [] and report["renames_undone"] == []


def test_wal_record_parser_reads_rocksdb_framing(tmp_path):
    import struct
    recs = [b"x" * 10, b"y" * 32741, b"z" * 3]  # the second leaves 3 bytes: padding
    data = b""
    for payload in recs:
        if WAL_BLOCK - len(data) % WAL_BLOCK < 7:
            data += b"\0" * (WAL_BLOCK - len(data) % WAL_BLOCK)
        data += b"\0\0\0\0" + struct.pack("<HB", len(payload), 1) + payload
    path = tmp_path / "000007.log"
    path.write_bytes(data + b"\1\2\3")  # a torn header at the end
    got = disk_nemesis.wal_records(path)
    assert [r[1] for r in got] == [10, 32741, 3]
    assert got[2][0] == WAL_BLOCK  # after the padding


WAL_BLOCK = disk_nemesis.WAL_BLOCK


def test_kvd_under_shim_journals_its_syncs():
    """Sanity of the model on the real thing: kvd's RocksDB fsyncs its WAL and directory."""
    kvd = Cluster.default_binary("kvd")
    if not os.access(kvd, os.X_OK):
        pytest.fail(f"kvd not found: {kvd} (set KVD_BIN)", pytrace=False)
    with Cluster("kvd", 1, binary=kvd, log=lambda m: None) as c:
        disk_nemesis.prepare(c)
        c.start()
        m = c.members[0]
        files, _ = control.durable_state(disk_nemesis.state_dir(m))
        wals = [p for p, f in files.items() if p.endswith(".log") and "/member/kvd/" in p]
        assert wals, files
        assert all(files[p]["durable"] for p in wals), "WAL names made durable (dir fsync)"
        assert any(files[p]["synced"] > 0 for p in wals), "the WAL was fdatasynced"
