"""Multi-node Slurm for real: blocks of two nodes on the cluster of the test hosts
(.ci/slurm-hosts-up: one slurmd in each test host's namespaces), the pools started on
both by ``srun``, connecting back to the driver across the bridge."""

from __future__ import annotations

import math
import os
import random
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import plait as pl
from tests.backends.batch.support import FAST, avg, cancel_a_pilot_mid_run, inside
from tests.backends.zmq.zmq_apps import host_of

CONF = "/etc/slurm-plait-hosts/slurm.conf"
pytestmark = [pytest.mark.slurm, pytest.mark.timeout(150)]


@pytest.fixture
def hosts_cluster(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The test hosts' cluster for Slurm's commands, and a directory the hosts share with the
    driver (their /tmp is their own): the job directory and the tasks' marks go there."""
    monkeypatch.setenv("SLURM_CONF", CONF)
    try:
        up = subprocess.run(["srun", "-N2", "true"], capture_output=True, timeout=30, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        up = False
    if not up:
        message = "the test hosts' Slurm is not up: run .ci/hosts-up 2 and .ci/slurm-hosts-up (as root)"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; in CI the multi-node tests must run")
        pytest.skip(message)
    shared = Path(tempfile.mkdtemp(prefix="plait-shared-", dir="/var/tmp"))
    yield shared
    names = subprocess.run(["squeue", "-h", "-o", "%j"], capture_output=True, text=True, timeout=30, check=False)
    ours = sorted({name for name in names.stdout.split() if name.startswith("plait-")})
    if ours:
        subprocess.run(["scancel", "--name", ",".join(ours)], capture_output=True, timeout=30, check=False)
    shutil.rmtree(shared, ignore_errors=True)


def two_nodes(shared: Path, **options: object) -> pl.SlurmProvider:
    settings: dict[str, object] = {
        "partition": "hosts", "nodes_per_block": 2, "launcher": "srun", "walltime": "00:05:00",
        "job_dir": shared / "jobs", "init_blocks": 1, "max_blocks": 1,
    }  # fmt: skip
    return pl.SlurmProvider(**{**settings, **options})  # type: ignore[arg-type]


def test_pi_on_a_block_of_two_nodes_runs_on_both_hosts(hosts_cluster: Path) -> None:
    executor = pl.ZMQExecutor(provider=two_nodes(hosts_cluster), address="198.18.0.1", **FAST)  # type: ignore[arg-type]
    darts = [(random.random(), random.random()) for _ in range(100)]
    with pl.Runtime([executor]) as rt:
        estimate = rt.run(avg(*[inside(x, y) for x, y in darts]))
        where = rt.run(pl.gather([host_of(0.2, i) for i in range(8)]))
        assert len(executor.pools) == 2, "one pool per node of the block"
    assert estimate == sum(4 if math.hypot(x, y) < 1 else 0 for x, y in darts) / 100
    assert [i for _, i in where] == list(range(8))
    assert {host for host, _ in where} == {"plait-h1", "plait-h2"}  # each from its host's own /tmp


def test_scancel_of_a_two_node_block_mid_run_retries_its_tasks_on_a_new_block(hosts_cluster: Path) -> None:
    provider = two_nodes(hosts_cluster)
    cancel_a_pilot_mid_run(provider, hosts_cluster, ["scancel"], address="198.18.0.1")
