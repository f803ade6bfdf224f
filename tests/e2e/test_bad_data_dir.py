"""Case 4 - a corrupt or foreign data dir: refuse to start, say why, exit non-zero.

A server that cannot trust its data dir must not serve (wrong or empty data would look
like success to clients). It must exit by itself within FAIL_EXIT_TIMEOUT_S with a
non-zero code, and its output must name the data dir (so an operator knows which one).

What etcd 3.4.23 prints, for reference:
  garbage db file:  "C | mvcc/backend: cannot open database at <dir>/member/snap/db
                    (invalid database)" then a Go panic, exit code 2
  data dir is a file: "C | etcdmain: error listing data dir: <dir>", exit code 1
"""

import os
import random
import re

import pytest
from etcd3 import etcdrpc

FAIL_EXIT_TIMEOUT_S = 15.0
# A clear message says what is wrong with the files, not just that startup failed.
CORRUPTION_WORDS = re.compile(r"corrupt|invalid|checksum", re.IGNORECASE)


def fill_with_garbage(data_dir, seed):
    """Replace the content of every non-empty file under data_dir with random bytes of the
    same size (a seeded source, so a failure is reproducible). Returns the paths."""
    rng = random.Random(seed)
    replaced = []
    for root, _, files in os.walk(data_dir):
        for name in sorted(files):
            path = os.path.join(root, name)
            size = os.path.getsize(path)
            if size == 0:
                continue
            with open(path, "r+b") as f:
                f.write(rng.randbytes(size))
            replaced.append(path)
    return replaced


def expect_refusal(cluster, member):
    """Start `member` and require it to exit non-zero by itself. Returns its output."""
    member.start(cluster.initial_cluster, cluster.extra_flags)
    code = member.wait_exit(FAIL_EXIT_TIMEOUT_S)
    output = member.last_start_output()
    assert code is not None, (f"{member.kind} still running {FAIL_EXIT_TIMEOUT_S}s after "
                              f"start on a bad data dir:\n{output[-3000:]}")
    assert code != 0, f"{member.kind} exited 0 on a bad data dir:\n{output[-3000:]}"
    return output


def test_garbage_in_place_of_database_files(server_kind, cluster_factory):
    cluster = cluster_factory(server_kind)
    member = cluster.members[0]
    kv = cluster.client().kvstub
    for i in range(50):
        kv.Put(etcdrpc.PutRequest(key=b"k%02d" % i, value=b"v" * 100))
    assert member.stop() is not None
    replaced = fill_with_garbage(member.data_dir, seed=20261125)
    assert replaced, "the server wrote no files to its data dir"

    output = expect_refusal(cluster, member)
    assert str(member.data_dir) in output, f"the message does not name the data dir:\n{output}"
    assert CORRUPTION_WORDS.search(output), f"no clear reason given:\n{output[-3000:]}"


def test_data_dir_is_a_regular_file(server_kind, cluster_factory):
    cluster = cluster_factory(server_kind, start=False)
    member = cluster.members[0]
    member.data_dir.write_bytes(random.Random(7).randbytes(4096))
    output = expect_refusal(cluster, member)
    assert str(member.data_dir) in output, f"the message does not name the data dir:\n{output}"


def test_foreign_data_dir_from_the_reference_server(server_kind, cluster_factory):
    """kvd given a data dir written by etcd (what a user gets by only changing the binary
    name in a script) must refuse it, not start an empty store next to it."""
    if server_kind == "etcd":
        pytest.skip("etcd owns this data dir layout; the case is about another server "
                    "finding it")
    donor = cluster_factory("etcd")
    donor.client().put("k", "v")
    assert donor.members[0].stop() is not None

    cluster = cluster_factory(server_kind, start=False)
    member = cluster.members[0]
    member.data_dir = donor.members[0].data_dir
    output = expect_refusal(cluster, member)
    assert str(member.data_dir) in output, f"the message does not name the data dir:\n{output}"
