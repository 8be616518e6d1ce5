"""Pools on other hosts: the test hosts of .ci/hosts-up (network namespaces with their own
sshd and a private /tmp), reached over a real link from the driver at 198.18.0.1.

Pools start with SSHProvider; the link is cut with ``ip link set eth0 down`` inside a
host's namespace; what crosses the bridge is captured with tcpdump. A third host, plait-bare,
has neither the venv nor the checkout: pools reach plait there through a packed environment.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import psutil
import pytest

import plait as pl
from plait.backends.providers import JobState
from plait.backends.zmq._protocol import PROTOCOL_VERSION, Register, encode, python_version
from tests.backends.conftest import packed
from tests.backends.environment_apps import where_plait_is
from tests.backends.zmq.zmq_apps import host_of, length
from tests.processes import gone
from tests.waiting import wait_for

HOSTS = ["198.18.0.2", "198.18.0.3"]
NAMES = {"198.18.0.2": "plait-h1", "198.18.0.3": "plait-h2"}
DRIVER = "198.18.0.1"
BARE = "198.18.0.254"  # plait-bare: the venv and the checkout hidden, a python3 without packages
NAMESPACES = {**NAMES, BARE: "plait-bare"}  # every test host's, by its address
STATE = Path("/var/lib/plait-hosts")  # hosts-up's; its shared/ is at that path on every host
SOURCE = Path(pl.__file__).parent.parent
# The hosts' python3 is the checkout's venv (hosts-up puts it first on PATH); this tree
# first on its path, for a worktree whose venv holds another checkout's plait.
INIT = f"export PYTHONPATH={shlex.quote(str(SOURCE))}"
OURS = {"protocol": PROTOCOL_VERSION, "plait": pl.__version__, "python": python_version()}
QUICK = {"heartbeat_period": 0.3, "heartbeat_threshold": 2.0, "usage_interval": None}


def on_host(host: str, command: str, timeout: float = 10) -> str:
    """``command``'s stdout, run on a test host through ssh."""
    argv = ["ssh", "-o", "BatchMode=yes", host, command]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=True).stdout


def host_processes(host: str) -> list[str]:
    """The command lines of what runs on ``host``: in its network namespace (``ps`` there
    would show every process of the machine), but its sshd."""
    pids = subprocess.run(["ip", "netns", "pids", NAMESPACES[host]], capture_output=True, text=True, check=True).stdout
    lines = []
    for pid in pids.split():
        try:
            lines.append(" ".join(psutil.Process(int(pid)).cmdline()))
        except psutil.NoSuchProcess:
            continue
    return [line for line in lines if not line.startswith("sshd")]


def plait_processes(host: str) -> list[str]:
    """Pools (``_pool_start``, what ``pool_command`` runs), their workers (forked: the same
    command line) and the session leaders SSHProvider starts (``plait-pool``) on ``host``."""
    return [line for line in host_processes(host) if "_pool_start" in line or "plait-pool" in line]


def not_ready(message: str) -> NoReturn:
    """Skip locally; in CI, where .ci/services-up brings the test hosts up, fail."""
    if os.environ.get("CI"):
        pytest.fail(f"{message}; in CI the remote tests must run")
    pytest.skip(message)


def names_of(hosts: list[str]) -> list[str]:
    """The names the test hosts at these addresses give, over ssh."""
    try:
        return [on_host(host, "cat /tmp/plait-host").strip() for host in hosts]
    except (OSError, subprocess.SubprocessError) as error:
        not_ready(f"the test hosts are not up ({error}): run .ci/hosts-up 2 (as root)")


@pytest.fixture(scope="module")
def hosts() -> list[str]:
    """The two test hosts, answering over ssh: skip locally when down; in CI they must be up."""
    assert names_of(HOSTS) == [NAMES[host] for host in HOSTS]
    return HOSTS


@pytest.fixture
def bare_host() -> str:
    """plait-bare, which sees neither this checkout nor this venv (hosts-up run from here hides them)."""
    assert names_of([BARE]) == [NAMESPACES[BARE]]
    ours = shlex.join([str(SOURCE / "plait"), str(Path(sys.prefix, "pyvenv.cfg"))])
    seen = on_host(BARE, f"for path in {ours}; do if [ -e $path ]; then echo $path; fi; done").split()
    if seen:
        not_ready(f"plait-bare sees {seen}: hosts-up ran from another checkout; run this one's .ci/hosts-up 2")
    return BARE


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A new directory on the test hosts' shared file system, removed afterwards."""
    path = Path(tempfile.mkdtemp(dir=STATE / "shared"))
    yield path
    shutil.rmtree(path)


def ssh_provider(**options: object) -> pl.SSHProvider:
    return pl.SSHProvider(hosts=HOSTS, worker_init=INIT, **options)  # type: ignore[arg-type]


def started_on(host: str) -> set[int]:
    """The ``host_of`` tasks that have started on ``host``, by the marks they leave in its /tmp."""
    return {int(name.rsplit("-", 1)[1]) for name in on_host(host, "ls /tmp").split() if name.startswith("plait-task-")}


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
            # -xdev: the host's own /tmp and scratch, not a checkout under /tmp that hosts-up binds in
            files = "find /tmp /var/lib/plait-hosts/scratch -xdev -type f -exec grep -ls plait {} +"
            left = on_host(host, f"{files} || true").split()
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


STRANGER = """
import sys, time, zmq
from plait.backends.zmq._protocol import encode
url, server_public, register = sys.argv[1], sys.argv[2].encode(), bytes.fromhex(sys.argv[3])
said = []
with zmq.Context() as context:
    plain, wrong = context.socket(zmq.DEALER), context.socket(zmq.DEALER)
    wrong.curve_serverkey = server_public  # the right server, but a client key of its own
    wrong.curve_publickey, wrong.curve_secretkey = zmq.curve_keypair()
    for socket in (plain, wrong):
        socket.linger = 0
        socket.connect(url)
        socket.send_multipart([register])
    time.sleep(1.5)  # long enough for an answer to come to either
    said = ["answered" if socket.poll(0) else "silence" for socket in (plain, wrong)]
print(" ".join(said))
"""


def test_a_peer_on_a_test_host_without_the_keys_can_neither_register_nor_get_a_task(
    hosts: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    executor = pl.ZMQExecutor(provider=pl.SSHProvider(hosts=HOSTS[:1], worker_init=INIT), address=DRIVER, **QUICK)
    with pl.Runtime([executor]) as rt:
        assert rt.run(host_of(0, 1)) == ("plait-h1", 1)
        assert executor.keys is not None
        (register,) = encode(Register(**OURS, capacity=1, host="x", pool="stranger", pid=1))
        stranger = ["python3", "-c", STRANGER, executor.url, executor.keys.server_public.decode(), register.hex()]
        assert on_host(HOSTS[1], f"{INIT}; {shlex.join(stranger)}").split() == ["silence", "silence"]
        assert rt.run(host_of(0, 2)) == ("plait-h1", 2)  # the real pool still works
        assert executor.pools == ["zmq-0"]
        assert executor.dropped == 0, "nothing from the strangers reached the executor"
    assert "refused a connection with an unknown CurveZMQ client key" in caplog.text


@pytest.mark.parametrize("encrypted", [True, False])
def test_a_capture_on_the_bridge_shows_the_task_arguments_only_unencrypted(
    hosts: list[str], tmp_path: Path, encrypted: bool
) -> None:
    marker = f"plait-marker-{uuid.uuid4().hex}"
    capture = tmp_path / "bridge.pcap"
    tcpdump = subprocess.Popen(
        ["tcpdump", "-i", "plait-br0", "--immediate-mode", "-U", "-w", str(capture), "tcp"],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert tcpdump.stderr is not None
    try:
        assert "listening on plait-br0" in tcpdump.stderr.readline()
        executor = pl.ZMQExecutor(
            provider=pl.SSHProvider(hosts=HOSTS, worker_init=INIT), address=DRIVER, encrypted=encrypted, **QUICK
        )
        with pl.Runtime([executor]) as rt:
            data = [f"{marker}-{i}".encode() for i in range(8)]
            assert rt.run(pl.gather([length(d) for d in data])) == [len(d) for d in data]
        # The run's traffic is in the capture, to its end (the pools' goodbyes): tcpdump keeps up.
        port = executor.port.to_bytes(2, "big")
        wait_for(lambda: capture.read_bytes().count(port) > 40, what="the run's packets in the capture")
        time.sleep(0.5)
    finally:
        tcpdump.send_signal(signal.SIGINT)
        tcpdump.wait(10)
        tcpdump.stderr.close()
    packets = capture.read_bytes()
    assert (marker.encode() in packets) is not encrypted


def test_a_host_whose_link_goes_down_loses_its_pool_and_the_other_host_finishes_the_run(
    hosts: list[str], link_restored: None, caplog: pytest.LogCaptureFixture
) -> None:
    period, threshold = QUICK["heartbeat_period"], QUICK["heartbeat_threshold"]
    provider = pl.SSHProvider(hosts=HOSTS, worker_init=INIT, connect_timeout=2)
    executor = pl.ZMQExecutor(provider=provider, address=DRIVER, **QUICK)
    with pl.Runtime([executor]) as rt:
        wait_for(lambda: len(executor.pools) == 2, what="a pool on each host")
        on_host(HOSTS[0], "rm -f /tmp/plait-task-*")
        future = rt.submit(pl.gather([host_of(0.6, i) for i in range(12)]))
        wait_for(lambda: started_on(HOSTS[0]), what="a task to start on plait-h1")
        started = started_on(HOSTS[0])
        subprocess.run(["ip", "-n", "plait-h1", "link", "set", "eth0", "down"], check=True)
        cut = time.monotonic()
        wait_for(lambda: len(executor.pools) == 1, timeout=threshold + 5, what="the pool on plait-h1 to be lost")
        assert time.monotonic() - cut < threshold + 2 * period + 0.5
        results = future.result(timeout=60)
        assert [x for _, x in results] == list(range(12)), "a task is missing or was applied twice"
        assert [h for h, x in results if x in started and h == "plait-h2"], "what plait-h1 ran is retried on plait-h2"
        assert any("lost pool zmq-0" in line for line in caplog.messages)
        # ssh could not end the group over the cut link: nobody claims the pool has ended.
        assert any("zmq-0, whose job is not known to have ended" in line for line in caplog.messages)
        # The link back: the lost pool is not taken back (its late results are dropped),
        # and it has exited, having not heard from the executor for its threshold.
        subprocess.run(["ip", "-n", "plait-h1", "link", "set", "eth0", "up"], check=True)
        wait_for(lambda: not plait_processes(HOSTS[0]), timeout=2 * threshold + 3, what="the lost pool to exit")
        assert rt.run(host_of(0, 99))[1] == 99
        assert "zmq-0" not in executor.pools


DRIVEN = """
import sys, time, plait as pl
from tests.backends.zmq.zmq_apps import host_of
provider = pl.SSHProvider(hosts=sys.argv[1:], worker_init=sys.stdin.read())
executor = pl.ZMQExecutor(provider=provider, address="198.18.0.1", heartbeat_period=0.3, heartbeat_threshold=2.0)
with pl.Runtime([executor]) as rt:
    while len(executor.pools) < len(sys.argv) - 1:
        time.sleep(0.05)
    rt.submit(pl.gather([host_of(30, i) for i in range(4)]))
    print("running", flush=True)
    time.sleep(60)
"""


def test_when_the_driver_is_killed_the_pools_on_every_host_exit_and_nothing_is_left(hosts: list[str]) -> None:
    driver = subprocess.Popen(
        [sys.executable, "-c", DRIVEN, *HOSTS], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert driver.stdin is not None and driver.stdout is not None
    driver.stdin.write(INIT)
    driver.stdin.close()
    try:
        assert driver.stdout.readline() == "running\n"
        wait_for(lambda: all(len(plait_processes(h)) >= 3 for h in hosts), what="pools and workers on each host")
    finally:
        driver.kill()
        driver.wait()
        driver.stdout.close()
    killed = time.monotonic()
    wait_for(lambda: not any(map(plait_processes, hosts)), timeout=10, what="every pool and worker to exit")
    assert time.monotonic() - killed < 2.0 + 3  # the threshold, and time to kill the workers
    ssh_clients = [p for p in psutil.process_iter(["cmdline"]) if "plait-pool" in " ".join(p.info["cmdline"] or [])]
    # Orphaned by the kill, each is reaped by whoever adopts it (pid 1 in CI's container may
    # take its time): a zombie has exited, which is all this asks.
    ssh_left = [p.pid for p in ssh_clients if not gone(p.pid, within=5)]
    assert not ssh_left, f"an ssh client of the killed driver is still running: {ssh_left}"


def test_a_host_without_plait_runs_pools_from_a_packed_environment_unpacked_once(
    bare_host: str, shared_dir: Path
) -> None:
    probe = subprocess.run(
        ["ssh", "-o", "BatchMode=yes", bare_host, "python3 -c 'import plait'"],
        capture_output=True, text=True, timeout=10, check=False,
    )  # fmt: skip
    assert probe.returncode == 1 and "No module named 'plait'" in probe.stderr, probe.stderr
    cache = f"{STATE}/scratch/envs-{uuid.uuid4().hex}"  # in the host's private scratch, unseen here
    environment = packed(shared_dir, cache=cache, python="python3")  # python3 on the host's PATH
    digest = environment.pack().digest

    def run_once() -> str:
        provider = pl.SSHProvider(hosts=[bare_host])
        executor = pl.ZMQExecutor(provider=provider, address=DRIVER, environment=environment, **QUICK)
        with pl.Runtime([executor]) as rt:
            plait_file, host = rt.run(where_plait_is("/tmp/plait-host"))
        assert host == "plait-bare\n"
        assert on_host(bare_host, f"ls {cache}").split() == [digest], "one directory, named by the environment's hash"
        assert plait_file == f"{cache}/{digest}/plait/__init__.py", "plait came from the packed environment"
        # Unpacking again would make (and remove) a directory in the cache: its mtime would change.
        return on_host(bare_host, f"stat -c '%n %i %y' {cache} {cache}/{digest}")

    try:
        first = run_once()
        assert run_once() == first, "a second run on the host found it unpacked"
    finally:
        on_host(bare_host, f"rm -rf {cache}")
    assert [archive.name for archive in (shared_dir / "envs").iterdir()] == [f"env-{digest}.tar"]
    wait_for(lambda: not plait_processes(bare_host), timeout=5, what="the pools to end")


def test_hosts_up_again_changes_nothing_and_is_quick(hosts: list[str], bare_host: str) -> None:
    def started() -> list[str | float]:
        """The hosts' sshds, and when plait-bare's python3 was made."""
        sshd = [(STATE / host / "sshd.pid").read_text() for host in ("h1", "h2", "bare")]
        return [*sshd, (STATE / "python" / "pyvenv.cfg").stat().st_mtime]

    before = started()
    begun = time.monotonic()
    subprocess.run([str(SOURCE / ".ci" / "hosts-up"), "2"], check=True, capture_output=True, timeout=15)
    assert time.monotonic() - begun < 15
    assert started() == before
