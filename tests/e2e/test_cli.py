"""The command line as scripts use it: "a script that starts etcd must start kvd by
changing the binary name". Flag spellings Go's flag package accepts (--f v, --f=v, -f v),
ETCD_* environment variables, --config-file (YAML), --version, and refusal of unknown
flags.
"""

import os
import re
import subprocess

import pytest

import harness

VERSION_RE = re.compile(r"\d+\.\d+\.\d+")


def flag_pairs(cluster):
    """[(flag name, value)] of the standard command line, without the binary."""
    argv = cluster.members[0].argv(cluster.initial_cluster, [])[1:]
    return [(argv[i][2:], argv[i + 1]) for i in range(0, len(argv), 2)]


def start_and_check(cluster, argv, env=None):
    m = cluster.members[0]
    m.start_argv(argv, env)
    m.wait_ready()
    r = cluster.etcdctl("put", "k", "v")
    assert (r.returncode, r.stdout.strip()) == (0, "OK"), r.stderr
    assert m.data_dir.is_dir(), "the data dir setting was not used"


@pytest.mark.parametrize("form", ["--flag=value", "-flag value"])
def test_flag_spellings(server_kind, cluster_factory, form):
    cluster = cluster_factory(server_kind, start=False)
    m = cluster.members[0]
    argv = [m.binary]
    for name, value in flag_pairs(cluster):
        argv += [f"--{name}={value}"] if form == "--flag=value" else [f"-{name}", value]
    start_and_check(cluster, argv)


def test_configured_by_environment(server_kind, cluster_factory):
    cluster = cluster_factory(server_kind, start=False)
    env = dict(os.environ)
    for name, value in flag_pairs(cluster):
        env["ETCD_" + name.upper().replace("-", "_")] = value
    start_and_check(cluster, [cluster.members[0].binary], env)


def test_configured_by_config_file(server_kind, cluster_factory):
    cluster = cluster_factory(server_kind, start=False)
    config = cluster.workdir / "config.yml"
    config.write_text("".join(f"{name}: {value}\n" for name, value in flag_pairs(cluster)))
    start_and_check(cluster, [cluster.members[0].binary, "--config-file", str(config)])


def test_version_flag(server_kind):
    r = subprocess.run([harness.server_binary(server_kind), "--version"],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    assert VERSION_RE.search(r.stdout + r.stderr), r.stdout + r.stderr


def test_unknown_flag_is_refused(server_kind, cluster_factory):
    cluster = cluster_factory(server_kind, start=False)
    m = cluster.members[0]
    m.start_argv(m.argv(cluster.initial_cluster, ["--no-such-flag", "1"]))
    code = m.wait_exit(10)
    output = m.last_start_output()
    assert code not in (None, 0), f"exit code {code}:\n{output[-2000:]}"
    assert re.search(r"no[-_]such[-_]flag", output), output[-2000:]
