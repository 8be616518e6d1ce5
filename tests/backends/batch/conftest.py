"""Fixtures for the batch tests: fake scheduler commands, and the real Slurm and Grid Engine clusters."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.backends.batch.support import FakeScheduler


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeScheduler:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # First on PATH: a real scheduler installed here must not answer instead.
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return FakeScheduler(bin_dir)


def _answers(argv: list[str]) -> bool:
    """Whether a job submitted with ``argv`` ran: the cluster is up."""
    if shutil.which(argv[0]) is None:
        return False
    try:
        return subprocess.run(argv, capture_output=True, timeout=30, check=False).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def _require(up: bool, script: str) -> None:
    """Skip locally when the cluster is down; in CI the batch tests must run, so fail."""
    if not up:
        message = f"the cluster is not up: run {script} (as root)"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; in CI the batch tests must run")
        pytest.skip(message)


@pytest.fixture(scope="session")
def slurm() -> Iterator[None]:
    """The single-node Slurm of .ci/slurm-up."""
    _require(_answers(["srun", "-N1", "-n1", "true"]), ".ci/slurm-up")
    yield
    # Nothing a test submitted may outlive the session: cancel every plait job left.
    names = subprocess.run(["squeue", "-h", "-o", "%j"], capture_output=True, text=True, timeout=30, check=False)
    ours = sorted({name for name in names.stdout.split() if name.startswith("plait-")})
    if ours:
        subprocess.run(["scancel", "--name", ",".join(ours)], capture_output=True, timeout=30, check=False)


@pytest.fixture(scope="session")
def gridengine() -> None:
    """The single-node Grid Engine of .ci/sge-up."""
    _require(_answers(["qsub", "-terse", "-sync", "y", "-o", "/dev/null", "-j", "y", "-b", "y", "true"]), ".ci/sge-up")
