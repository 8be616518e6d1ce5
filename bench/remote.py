"""Pools across a link against pools on loopback, and Parsl's HTEX on the same hosts, in one run.

Three systems, each in a fresh process, alternating round by round:

- ``loopback``: ZMQExecutor, one LocalProvider pool of 2 workers on this machine;
- ``hosts``: ZMQExecutor at 198.18.0.1, SSHProvider pools of 1 worker on each of the two
  test hosts (``.ci/hosts-up 2``: network namespaces behind a bridge, their own sshd);
- ``htex-hosts``: Parsl's HighThroughputExecutor at 198.18.0.1, one block of 1 worker on
  each test host, started through ssh by a launcher.

Each runs the workloads of bench/_workloads.py (A: tasks/s; B: round trip, median and p99
ms; C: a chain; D: 1 ms tasks and a reduce) at reduced sizes, and the table gives the
median over rounds and two ratios: what the link costs plait (hosts against loopback;
below 1: slower across the link) and plait against HTEX on the same hosts (above 1: plait
better). The bridge is a veth pair on one machine: it shows what crossing a network stack
and ssh-started pools cost, not a real network's latency.

Run (as root, hosts up): ``python bench/remote.py [--rounds 3]``. HTEX's pools on the hosts
outlive each of its rounds by up to its heartbeat threshold (10 s): Parsl cancels a block
by ending the local ssh, which leaves the remote pool to notice the interchange is gone.
"""

from __future__ import annotations

import time

T0 = time.perf_counter()  # before any import of the system under test: start-up counts them

import argparse  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import shlex  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _workloads as wl  # noqa: E402

HOSTS = ["198.18.0.2", "198.18.0.3"]
DRIVER = "198.18.0.1"
SIZES = wl.Sizes(a=2000, b=100, c=200, d=500, e=2000)
# The hosts log in with their own environment: what the workers import comes from here.
PATHS = os.pathsep.join([str(HERE), str(HERE.parent)])
INIT = f"export PYTHONPATH={shlex.quote(PATHS)}"


@contextlib.contextmanager
def plait_on(where: str) -> Iterator[wl.Driver]:
    import plait as pl

    if where == "hosts":
        provider: Any = pl.SSHProvider(hosts=HOSTS, python=sys.executable, worker_init=INIT)
        executor = pl.ZMQExecutor(provider=provider, address=DRIVER)
    else:
        executor = pl.ZMQExecutor(provider=pl.LocalProvider(workers=2))
    with pl.Runtime([executor], progress=False) as rt:
        while where == "hosts" and len(executor.pools) < len(HOSTS):  # both hosts serve from the start
            time.sleep(0.01)
        yield wl.plait_on(rt)


@contextlib.contextmanager
def htex_on_hosts() -> Iterator[wl.Driver]:
    import parsl
    from parsl.config import Config
    from parsl.executors import HighThroughputExecutor
    from parsl.launchers.base import Launcher
    from parsl.providers import LocalProvider

    class SSHLauncher(Launcher):
        """Each block's worker pool on the next test host, through ssh."""

        def __init__(self) -> None:
            super().__init__(debug=False)
            self.blocks = 0

        def __call__(self, command: str, tasks_per_node: int, nodes_per_block: int, script_dir: str = "") -> str:
            host = HOSTS[self.blocks % len(HOSTS)]
            self.blocks += 1
            remote = f"{INIT}; export PATH={shlex.quote(os.path.dirname(sys.executable))}:$PATH; {command}"
            return f"ssh -o BatchMode=yes {host} {shlex.quote(remote)}"

    os.environ["PATH"] = f"{os.path.dirname(sys.executable)}:{os.environ.get('PATH', '')}"
    executor = HighThroughputExecutor(
        address=DRIVER,
        max_workers_per_node=1,
        cores_per_worker=1,
        heartbeat_threshold=10,
        provider=LocalProvider(init_blocks=2, min_blocks=2, max_blocks=2, launcher=SSHLauncher()),
    )
    # HTEX keeps its certificates and logs in run_dir, which its workers read: it must be
    # shared with the hosts, so not under /tmp (each test host has its own).
    with tempfile.TemporaryDirectory(prefix="parsl-bench-", dir="/var/tmp") as run_dir:
        parsl.load(Config(executors=[executor], strategy="none", run_dir=run_dir))
        try:
            while len(executor.connected_managers()) < len(HOSTS):
                time.sleep(0.05)
            yield wl.Driver(parsl.python_app, lambda futures: [f.result() for f in futures], parsl.__version__)
        finally:
            parsl.dfk().cleanup()
            parsl.clear()


SYSTEMS = {"loopback": lambda: plait_on("loopback"), "hosts": lambda: plait_on("hosts"), "htex-hosts": htex_on_hosts}


def run_child(system: str) -> wl.Figures:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [PATHS, os.environ.get("PYTHONPATH")]))}
    argv = [sys.executable, __file__, "--child", system]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=900, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{system} run failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def table(results: dict[str, list[wl.Figures]]) -> str:
    medians = {s: wl.medians(runs) for s, runs in results.items()}
    lines = ["| figure | loopback | hosts | htex-hosts | hosts vs loopback | plait vs HTEX, hosts |", "|---" * 6 + "|"]
    for key in medians["loopback"]:
        figures = [medians[s][key] for s in ("loopback", "hosts", "htex-hosts")]
        link = wl.speedup(key, medians["hosts"][key], medians["loopback"][key])
        versus = wl.speedup(key, medians["hosts"][key], medians["htex-hosts"][key])
        lines.append(f"| {key} | " + " | ".join(f"{f:.3g}" for f in figures) + f" | {link:.2f}x | {versus:.1f}x |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", choices=sorted(SYSTEMS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        with SYSTEMS[args.child]() as driver:
            print(json.dumps(wl.measure(driver, T0, SIZES)))
        return
    results = wl.alternate(args.rounds, list(SYSTEMS), run_child)
    print()
    print(table(results))


if __name__ == "__main__":
    main()
