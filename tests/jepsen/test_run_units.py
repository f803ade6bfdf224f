"""Unit tests of the driver's parts that need no server: the history writer, the error
rule of the client (fail vs info), the worker's process ids, and the v3lock stubs."""

import json
import random
import sys
import threading
from pathlib import Path

import grpc
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tools.jepsen import client as clientlib  # noqa: E402
from tools.jepsen import history as historylib  # noqa: E402
from tools.jepsen import run as runlib  # noqa: E402
from tools.jepsen import workloads  # noqa: E402


class FakeRpcError(grpc.RpcError):
    def __init__(self, code, details):
        self._code, self._details = code, details

    def code(self):
        return self._code

    def details(self):
        return self._details


def test_history_lines_indexes_times_and_pairs(tmp_path):
    h = historylib.History(tmp_path / "h.jsonl")
    p = h.new_process()
    inv = h.invoke(p, "register", "write", key="k", value=1, node="n1")
    h.complete(inv, "ok", revision=7)
    h.nemesis("start", {"nemesis": "kill", "targets": ["n1"]})
    h.close()
    events = historylib.read(tmp_path / "h.jsonl")
    assert [e["index"] for e in events] == [0, 1, 2]
    assert [e["time"] for e in events] == sorted(e["time"] for e in events)
    assert events[0]["type"] == "invoke" and events[1]["type"] == "ok"
    assert events[0]["op"] == events[1]["op"]
    assert events[1]["key"] == "k" and events[1]["value"] == 1 and events[1]["revision"] == 7
    assert events[2]["process"] == "nemesis" and events[2]["type"] == "info"


def test_history_is_thread_safe(tmp_path):
    h = historylib.History(tmp_path / "h.jsonl")

    def writer():
        p = h.new_process()
        for i in range(200):
            h.complete(h.invoke(p, "register", "read", key="k", value=None), "ok", value=i)
    threads = [threading.Thread(target=writer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    h.close()
    events = historylib.read(tmp_path / "h.jsonl")
    assert len(events) == 8 * 200 * 2
    assert [e["index"] for e in events] == list(range(len(events)))
    assert len({e["process"] for e in events}) == 8
    open_ops = {}
    for e in events:  # every process: invoke, completion, invoke, ...
        if e["type"] == "invoke":
            assert e["process"] not in open_ops
            open_ops[e["process"]] = e["op"]
        else:
            assert open_ops.pop(e["process"]) == e["op"]


@pytest.mark.parametrize("code,details,write,expected", [
    (grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded", True, "info"),
    (grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded", False, "fail"),
    (grpc.StatusCode.UNAVAILABLE, "etcdserver: leader changed", True, "info"),
    (grpc.StatusCode.UNAVAILABLE, "Socket closed", True, "info"),
    (grpc.StatusCode.UNAVAILABLE, "failed to connect to all addresses; last error: "
     "UNKNOWN: ipv4:127.0.0.1:1: Connection refused", True, "fail"),
    (grpc.StatusCode.UNKNOWN, "etcdserver: request timed out", True, "info"),
    (grpc.StatusCode.NOT_FOUND, "etcdserver: requested lease not found", True, "fail"),
    (grpc.StatusCode.INVALID_ARGUMENT, "etcdserver: duplicate key given in txn request",
     True, "fail"),
    (grpc.StatusCode.RESOURCE_EXHAUSTED, "etcdserver: mvcc: database space exceeded", True,
     "info"),
])
def test_error_rule(code, details, write, expected):
    assert clientlib.classify(FakeRpcError(code, details), write).type == expected


def test_worker_takes_a_fresh_process_after_info_only(tmp_path):
    h = historylib.History(tmp_path / "h.jsonl")
    ctx = workloads.Context(h, "p", [("n1", "127.0.0.1:1")], threading.Event())
    w = workloads.Worker(ctx, "register", random.Random(1))
    first = w.process

    def fail():
        raise clientlib.Fail("compare failed")

    def unknown():
        raise clientlib.Unknown("DEADLINE_EXCEEDED: Deadline Exceeded")
    assert w.op("cas", fail, key="k", value=[1, 2])["type"] == "fail"
    assert w.process == first
    assert w.op("ok", lambda: {"value": 3}, key="k", value=None)["value"] == 3
    assert w.op("write", unknown, key="k", value=4)["type"] == "info"
    assert w.process != first
    done = w.op("write", lambda: 1 / 0, key="k", value=5)  # our bug: outcome unknown
    assert done["type"] == "info" and "ZeroDivisionError" in done["error"]
    w.close()
    h.close()
    events = historylib.read(tmp_path / "h.jsonl")
    assert [e["process"] for e in events][:6] == [first] * 6
    assert events[5]["type"] == "info" and events[5]["error"].startswith("DEADLINE")


def test_lock_stubs_come_from_the_api_proto():
    pb2, pb2_grpc = clientlib.lock_modules()
    assert pb2.DESCRIPTOR.package == "v3lockpb"
    assert {m.name for m in pb2.DESCRIPTOR.services_by_name["Lock"].methods} == {
        "Lock", "Unlock"}
    resp = pb2.LockResponse(key=b"k")
    resp.header.revision = 5  # the etcdserverpb.ResponseHeader python-etcd3 registered
    assert pb2.LockResponse.FromString(resp.SerializeToString()).header.revision == 5
    assert hasattr(pb2_grpc, "LockStub")


def test_cli_rejects_what_does_not_apply():
    with pytest.raises(SystemExit):
        runlib.parse_args(["--server", "etcd", "--plant-bug", "local-reads"])
    with pytest.raises(SystemExit):
        runlib.select_workloads("register,nope")
    assert [n for n, _ in runlib.select_workloads("all")] == [
        "register", "append", "watch", "lease", "lock"]
    # partitions need network namespaces; naming one without them is an error
    with pytest.raises(SystemExit):
        runlib.select_nemeses("partition-half", "kvd", netns=False)
    names = [n for n, _ in runlib.select_nemeses("all", "etcd", netns=False)]
    assert "kill" in names and "partition-half" not in names and "clock-skew" not in names
    fewer = [n for n, _ in runlib.select_nemeses("all,-kill,-pause", "etcd", netns=False)]
    assert set(names) - set(fewer) == {"kill", "pause"}
    with pytest.raises(SystemExit):
        runlib.select_nemeses("all,-nope", "etcd", netns=False)


def test_reproduce_command_carries_the_seed():
    args = runlib.parse_args(["--server", "kvd", "--seed", "42", "--time-limit", "30",
                              "--nemesis", "kill", "--no-netns"])
    cmd = runlib.reproduce_command(args)
    assert "--seed 42" in cmd and "--nemesis kill" in cmd and "--no-netns" in cmd
    assert runlib.parse_args(cmd.split()[3:]).seed == 42
