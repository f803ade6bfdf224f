"""Disk full: the data dir lives on a small tmpfs; a writer fills it. Whatever the server
does then - refuse writes or exit - it must never lose an acknowledged write: the data
dir, copied to a roomy disk, must hold every acknowledged put at its revision. A server
that exits must say why ("no space left on device": etcd 3.4.23 prints "mvcc/backend:
cannot commit tx (write .../db: no space left on device)" and exits).

Needs permission to mount a tmpfs (root); without it the test is skipped, saying so.
The tmpfs is TMPFS_SIZE (etcd preallocates two 64 MB WAL files), held in RAM briefly.
"""

import random
import shutil
import subprocess
import time

import grpc
import pytest
from etcd3 import etcdrpc

TMPFS_SIZE = "200m"
VALUE_BYTES = 64 * 1024
PUTS_MAX = 5000                 # 320 MB: more than the tmpfs holds
FILL_SECONDS_MAX = 60.0
EXIT_WAIT_S = 5.0


@pytest.fixture
def small_disk(tmp_path):
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs",
                        str(mount_point)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({r.stderr.strip()}); disk-full case not run")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], capture_output=True)


def test_disk_full_loses_no_acknowledged_write(server_kind, cluster_factory, small_disk):
    cluster = cluster_factory(server_kind, start=False)
    member = cluster.members[0]
    member.data_dir = small_disk / "data"
    cluster.start()
    kv = cluster.client().kvstub
    rng = random.Random(7)
    acked, refusal = {}, None
    deadline = time.monotonic() + FILL_SECONDS_MAX
    for i in range(PUTS_MAX):
        assert time.monotonic() < deadline, f"disk not full after {FILL_SECONDS_MAX}s"
        key, value = b"k%05d" % i, rng.randbytes(VALUE_BYTES)
        try:
            answer = kv.Put(etcdrpc.PutRequest(key=key, value=value), timeout=10)
        except grpc.RpcError as e:
            refusal = f"{e.code()}: {e.details()}"
            break
        acked[key] = (value, answer.header.revision)
    assert refusal is not None, f"{PUTS_MAX} puts of {VALUE_BYTES} B fit in {TMPFS_SIZE}"
    assert acked, f"the very first put failed: {refusal}"

    code = member.wait_exit(EXIT_WAIT_S)
    if code is not None:
        output = member.last_start_output()
        assert "no space" in output.lower(), \
            f"exited ({code}) on a full disk without saying so:\n{output[-2000:]}"
    member.kill9()

    roomy = cluster.workdir / "moved.data"
    shutil.copytree(member.data_dir, roomy)
    member.data_dir = roomy
    cluster.restart_member(member)
    kv = cluster.client().kvstub
    lost = []
    for key, (value, rev) in acked.items():
        got = kv.Range(etcdrpc.RangeRequest(key=key))
        if not got.kvs or (got.kvs[0].value, got.kvs[0].mod_revision) != (value, rev):
            lost.append(key)
    assert not lost, f"{len(lost)} of {len(acked)} acknowledged puts lost, e.g. {lost[:5]}"
    head = kv.Range(etcdrpc.RangeRequest(key=b"x")).header.revision
    assert head >= max(rev for _, rev in acked.values())
    assert kv.Put(etcdrpc.PutRequest(key=b"after", value=b"1")).header.revision == head + 1
