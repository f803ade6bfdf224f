"""--quota-backend-bytes: past the quota, writes are refused with etcd's error and a
NOSPACE alarm is raised; reads and deletes still work; compaction + defragment + alarm
disarm bring writes back.

How a server measures its size is its own business, so the test writes 10x the quota in
incompressible values and asserts only that the quota is hit somewhere in between.
"""

import random

import grpc
import pytest
from etcd3 import etcdrpc

QUOTA_BYTES = 1_000_000
VALUE_BYTES = 20_000
PUTS_MAX = 10 * QUOTA_BYTES // VALUE_BYTES
NO_SPACE = (grpc.StatusCode.RESOURCE_EXHAUSTED, "etcdserver: mvcc: database space exceeded")

pytestmark = pytest.mark.server_flags("--quota-backend-bytes", str(QUOTA_BYTES))


def error_of(fn):
    try:
        fn()
    except grpc.RpcError as e:
        return e.code(), e.details()
    return None


def test_quota_exceeded_then_recovered(server):
    c = server.client()
    kv, maintenance = c.kvstub, c.maintenancestub
    rng = random.Random(1)
    accepted, refusal = 0, None
    for i in range(PUTS_MAX):
        value = rng.randbytes(VALUE_BYTES)  # incompressible: no store can shrink it
        refusal = error_of(lambda: kv.Put(etcdrpc.PutRequest(key=b"k%04d" % i, value=value)))
        if refusal:
            break
        accepted += 1
    assert refusal == NO_SPACE, f"{accepted} puts of {VALUE_BYTES} B accepted, then {refusal}"
    assert accepted >= 1

    # Now every write that can grow the store is refused...
    assert error_of(lambda: kv.Put(etcdrpc.PutRequest(key=b"small", value=b"1"))) == NO_SPACE
    txn_put = etcdrpc.TxnRequest(success=[etcdrpc.RequestOp(
        request_put=etcdrpc.PutRequest(key=b"small", value=b"1"))])
    assert error_of(lambda: kv.Txn(txn_put)) == NO_SPACE
    assert error_of(lambda: c.leasestub.LeaseGrant(etcdrpc.LeaseGrantRequest(TTL=60))) \
        == NO_SPACE
    # ...the alarm is visible...
    alarms = maintenance.Alarm(etcdrpc.AlarmRequest(action=etcdrpc.AlarmRequest.GET)).alarms
    member_id = kv.Range(etcdrpc.RangeRequest(key=b"x")).header.member_id
    assert [(a.memberID, a.alarm) for a in alarms] == [(member_id, etcdrpc.NOSPACE)]
    r = server.etcdctl("alarm", "list")
    assert (r.returncode, r.stdout.strip()) == (0, f"memberID:{member_id} alarm:NOSPACE")
    r = server.etcdctl("put", "x", "y")
    assert r.returncode == 1 and r.stderr.splitlines()[-1] == "Error: " + NO_SPACE[1]
    # ...and reads and deletes still work.
    assert kv.Range(etcdrpc.RangeRequest(key=b"k0000", count_only=True)).count == 1
    # etcd checks the quota twice: before proposing (the refusal leaves nothing behind) and
    # again when applying, where the put that crosses the quota is stored and still answered
    # with NO_SPACE. So the refused put may or may not exist; nothing else may.
    deleted = kv.DeleteRange(etcdrpc.DeleteRangeRequest(key=b"k", range_end=b"l"))
    assert accepted <= deleted.deleted <= accepted + 1

    head = kv.Range(etcdrpc.RangeRequest(key=b"x")).header.revision
    kv.Compact(etcdrpc.CompactionRequest(revision=head, physical=True))
    r = server.etcdctl("defrag")
    assert r.returncode == 0, r.stderr
    r = server.etcdctl("alarm", "disarm")
    assert r.returncode == 0, r.stderr
    alarms = maintenance.Alarm(etcdrpc.AlarmRequest(action=etcdrpc.AlarmRequest.GET)).alarms
    assert len(alarms) == 0, alarms
    assert kv.Put(etcdrpc.PutRequest(key=b"small", value=b"1")).header.revision == head + 1
