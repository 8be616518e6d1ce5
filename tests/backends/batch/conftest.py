"""Fixtures for the batch tests: fake scheduler commands, and the real Slurm cluster."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

RECORDED = Path(__file__).parent / "recorded"

_FAKE = """#!{python}
# A stand-in for a scheduler command: logs its argv and stdin, answers as configured.
import json, sys, time
from pathlib import Path
here = Path(__file__).parent
name = Path(sys.argv[0]).name
with open(here / "calls.jsonl", "a") as log:
    stdin = "" if sys.stdin.isatty() else sys.stdin.read()
    log.write(json.dumps({{"argv": [name, *sys.argv[1:]], "stdin": stdin}}) + "\\n")
answer = json.loads((here / (name + ".json")).read_text())
time.sleep(answer.get("sleep", 0))
sys.stdout.write(answer.get("stdout", ""))
sys.stderr.write(answer.get("stderr", ""))
sys.exit(answer.get("rc", 0))
"""


class FakeScheduler:
    """Scheduler commands on PATH that answer with recorded output and log how they were called."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def install(self, *names: str) -> None:
        for name in names:
            path = self.directory / name
            path.write_text(_FAKE.format(python=sys.executable))
            path.chmod(0o755)
            self.answer(name)

    def answer(self, name: str, stdout: str = "", stderr: str = "", rc: int = 0, sleep: float = 0) -> None:
        (self.directory / f"{name}.json").write_text(
            json.dumps({"stdout": stdout, "stderr": stderr, "rc": rc, "sleep": sleep})
        )

    def calls(self) -> list[dict[str, object]]:
        log = self.directory / "calls.jsonl"
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeScheduler:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # First on PATH: a real scheduler installed here must not answer instead.
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return FakeScheduler(bin_dir)


def _slurm_up() -> bool:
    if shutil.which("srun") is None:
        return False
    try:
        probe = subprocess.run(["srun", "-N1", "-n1", "true"], capture_output=True, timeout=20, check=False)
        return probe.returncode == 0
    except subprocess.TimeoutExpired:
        return False


@pytest.fixture(scope="session")
def slurm() -> Iterator[None]:
    """The single-node Slurm of .ci/slurm-up: skipped locally when it is down, an error in CI."""
    if not _slurm_up():
        message = "Slurm is not up: run .ci/slurm-up (as root)"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; in CI the batch tests must run")
        pytest.skip(message)
    yield
    # Nothing a test submitted may outlive the session: cancel every plait job left.
    subprocess.run(["scancel", "--name", ",".join(_leftover_names())], capture_output=True, timeout=30, check=False)


def _leftover_names() -> list[str]:
    out = subprocess.run(["squeue", "-h", "-o", "%j"], capture_output=True, text=True, timeout=30, check=False).stdout
    return sorted({name for name in out.split() if name.startswith("plait-")}) or ["plait-none"]
