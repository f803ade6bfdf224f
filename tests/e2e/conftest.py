"""Fixtures: every test runs once per server kind, "etcd" (the reference) and "kvd".

  server_kind  "etcd" | "kvd"; the test ids end in [etcd] / [kvd], so `-k etcd` and
               `-k kvd` select one side (no test, module or marker name may contain
               either word, or -k would select it for both).
  server       a started Cluster of that kind, killed at teardown: one member, or n
               with @pytest.mark.members(n). Extra server flags:
               @pytest.mark.server_flags("--max-txn-ops", "4").
  cluster_factory  start more clusters (any kind, any size) inside one test; all are
               killed at teardown.
"""

import os

import pytest

import harness

SERVER_KINDS = ["etcd", "kvd"]


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "server_flags(*flags): extra command-line flags for the `server` fixture")
    config.addinivalue_line(
        "markers", "members(n): the `server` fixture starts an n-member cluster (default 1)")


def _check_binary(kind):
    path = harness.server_binary(kind)
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        # A failure, not a skip: a missing server must never look like a pass.
        pytest.fail(f"{kind} binary not found or not executable: {path} "
                    f"(set {'KVD_BIN' if kind == 'kvd' else 'ETCD_BIN'}, or run only "
                    f"the other side with -k)", pytrace=False)


@pytest.fixture(params=SERVER_KINDS)
def server_kind(request):
    _check_binary(request.param)
    return request.param


@pytest.fixture
def cluster_factory():
    clusters = []

    def make(kind, size=1, extra_flags=(), start=True):
        _check_binary(kind)
        c = harness.Cluster(kind, size=size, extra_flags=extra_flags)
        clusters.append(c)
        if start:
            c.start()
        return c

    yield make
    for c in clusters:
        # Shown by pytest only when the test failed.
        print(c.log_tails())
        c.close()


@pytest.fixture
def server(server_kind, cluster_factory, request):
    flags = request.node.get_closest_marker("server_flags")
    members = request.node.get_closest_marker("members")
    return cluster_factory(server_kind, size=members.args[0] if members else 1,
                           extra_flags=list(flags.args) if flags else [])


def pytest_collection_modifyitems(items):
    """Guard for `-k etcd` / `-k kvd`: only the server parameter may carry those words."""
    for item in items:
        names = [item.module.__name__, getattr(item, "originalname", item.name)]
        names += [m.name for m in item.iter_markers()]
        callspec = getattr(item, "callspec", None)
        if callspec is not None:
            names += [str(v) for k, v in callspec.params.items() if k != "server_kind"]
        for name in names:
            for word in SERVER_KINDS:
                if word in name.lower():
                    raise pytest.UsageError(
                        f"{item.nodeid}: name {name!r} contains {word!r}, so `-k {word}` "
                        f"would select it for every server; rename it")
