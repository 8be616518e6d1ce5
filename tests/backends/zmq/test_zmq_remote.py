"""Pools on other hosts: the test hosts of .ci/hosts-up (network namespaces with their own
sshd and a private /tmp), reached over a real link from the driver at 198.18.0.1.

Pools start with SSHProvider; the link is cut with ``ip link set eth0 down`` inside a
host's namespace; what crosses the bridge is captured with tcpdump.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

import plait as pl
from plait.backends.providers import JobState
from tests.backends.zmq.zmq_apps import host_of, wait_for

HOSTS = ["198.18.0.2", "198.18.0.3"]
NAMES = {"198.18.0.2": "plait-h1", "198.18.0.3": "plait-h2"}
DRIVER = "198.18.0.1"
SOURCE = Path(pl.__file__).parent.parent
# The hosts' python3 is the checkout's venv (hosts-up puts it first on PATH); this tree
# first on its path, for a worktree whose venv holds another checkout's plait.
INIT = f"export PYTHONPATH={shlex.quote(str(SOURCE))}"
QUICK = {"heartbeat_period": 0.3, "heartbeat_threshold": 2.0, "usage_interval": None}


def on_host(host: str, command: str, timeout: float = 10) -> str:
    """``command``'s stdout, run on a test host through ssh."""
    argv = ["ssh", "-o", "BatchMode=yes", host, command]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=True).stdout


def host_processes(host: str) -> list[str]:
    """The command lines of what runs on ``host``: in its network namespace (``ps`` there
    would show every process of the machine), but its sshd."""
    pids = subprocess.run(["ip", "netns", "pids", NAMES[host]], capture_output=True, text=True, check=True).stdout
    lines = []
    for pid in pids.split():
        try:
            lines.append(" ".join(psutil.Process(int(pid)).cmdline()))
        except psutil.NoSuchProcess:
            continue
    return [line for line in lines if not line.startswith("sshd")]


def plait_processes(host: str) -> list[str]:
    return [line for line in host_processes(host) if "plait" in line]


@pytest.fixture(scope="module")
def hosts() -> list[str]:
    """The two test hosts, answering over ssh: skip locally when down; in CI they must be up."""
    try:
        names = [on_host(host, "cat /tmp/plait-host").strip() for host in HOSTS]
    except (OSError, subprocess.SubprocessError) as error:
        message = f"the test hosts are not up ({error}): run .ci/hosts-up 2 (as root)"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; in CI the remote tests must run")
        pytest.skip(message)
    assert names == [NAMES[host] for host in HOSTS]
    return HOSTS


def ssh_provider(**options: object) -> pl.SSHProvider:
    return pl.SSHProvider(hosts=HOSTS, worker_init=INIT, **options)  # type: ignore[arg-type]


@pytest.fixture
def link_restored() -> Iterator[None]:
    """Whatever a test does to plait-h1's link, it is up again afterwards."""
    yield
    subprocess.run(["ip", "-n", "plait-h1", "link", "set", "eth0", "up"], check=True)


def test_pools_run_on_both_hosts_with_their_own_tmp_and_no_key_in_any_command_line(hosts: list[str]) -> None:
    assert not Path("/tmp/plait-host").exists()  # only the hosts' private /tmp has it
    executor = pl.ZMQExecutor(provider=ssh_provider(), address=DRIVER, **QUICK)
    with pl.Runtime([executor]) as rt:
        wait_for(lambda: len(executor.pools) == 2, what="a pool on each host")
        assert executor.url.startswith(f"tcp://{DRIVER}:")
        assert {h for h, _ in rt.run(pl.gather([host_of(0.05, i) for i in range(12)]))} == set(NAMES.values())
        assert executor.keys is not None
        secrets = [executor.keys.client_secret.decode(), executor.keys.client_public.decode()]
        here = [" ".join(p.info["cmdline"] or []) for p in psutil.process_iter(["cmdline"])]
        for host in hosts:
            there = on_host(host, "ps -eo args")
            assert "--key-file -" in there  # the pool read its keys from ssh's stdin
            left = on_host(host, "grep -rls plait /tmp /var/lib/plait-hosts/scratch || true").split()
            assert left == ["/tmp/plait-host"]  # no key file, nor anything else, left on the host
            for secret in secrets:
                assert secret not in there and not any(secret in line for line in here)
    wait_for(lambda: not any(map(plait_processes, hosts)), timeout=5, what="the pools to end")


def test_an_unreachable_host_is_an_error_naming_it_with_ssh_message(hosts: list[str]) -> None:
    provider = pl.SSHProvider(hosts=["198.18.0.3"], ssh_options=["-p", "1"], worker_init=INIT)
    executor = pl.ZMQExecutor(provider=provider, address=DRIVER, **QUICK)
    refused = r"host '198\.18\.0\.3'.*port 1: Connection refused"
    with pytest.raises(pl.SchedulerError, match=refused), pl.Runtime([executor]):
        pass


def test_cancel_ends_the_remote_process_group(hosts: list[str]) -> None:
    provider = pl.SSHProvider(hosts=["198.18.0.2"])
    # A stand-in pool with a child in its group: ``sleep 297`` dies with it.
    pool = [sys.executable, "-c", "import subprocess, time; subprocess.Popen(['sleep', '297']); time.sleep(297)"]
    job = provider.submit(pool, "plait-cancel-test")
    wait_for(lambda: any("297" in line for line in host_processes("198.18.0.2")), what="the remote group to start")
    assert provider.status([job]) == {job: JobState.RUNNING}
    provider.cancel([job])
    assert provider.status([job]) == {job: JobState.CANCELLED}
    assert not [line for line in host_processes("198.18.0.2") if "297" in line]


@pytest.mark.parametrize(
    ("hosts_given", "message"),
    [
        (["-oProxyCommand=touch /x"], "must not start with '-'"),
        ("198.18.0.2", "need a list of one host or more"),
        (["a", "a"], "a host is listed twice"),
        (["a\nb"], "holds a control character"),
    ],
)
def test_bad_hosts_are_refused_by_name(hosts_given: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        pl.SSHProvider(hosts=hosts_given)
