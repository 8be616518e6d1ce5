"""What the batch tests share: stand-in scheduler commands that answer with recorded output, waiting."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import plait as pl
from plait.backends.providers import Provider
from tests.waiting import wait_for

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


# Pilot pools that notice a lost executor or pool quickly, and take no more tasks than they run.
FAST = {"heartbeat_period": 0.2, "heartbeat_threshold": 3.0, "prefetch": 0}


@pl.app
def inside(x: float, y: float) -> int:
    """The pi workflow's dart: 4 inside the quarter circle, else 0."""
    return 4 if math.sqrt(x * x + y * y) < 1 else 0


@pl.app
def avg(*xs: float) -> float:
    return sum(xs) / len(xs)


@pl.app
def in_job(seconds: float, i: int, marks: str) -> tuple[int, str]:
    """Sleeps, and says which batch job (Slurm's or Grid Engine's) ran it; leaves a mark when it starts."""
    job = os.environ.get("SLURM_JOB_ID") or os.environ.get("JOB_ID", "none")
    Path(marks, f"{i}-{job}").touch()
    time.sleep(seconds)
    return i, job


def cancel_a_pilot_mid_run(provider: Provider, tmp_path: Path, cancel: list[str], address: str = "127.0.0.1") -> None:
    """Run six tasks on one pilot block and cancel its job (``cancel + [job id]``) mid-run:
    the tasks must be retried on a new block and the run complete. ``address``: the
    executor's, where the block's nodes reach it."""
    marks = tmp_path / "marks"
    marks.mkdir()
    executor = pl.ZMQExecutor(provider=provider, address=address, **FAST)  # type: ignore[arg-type]
    with pl.Runtime([executor], lost_retries=2) as rt:
        future = rt.submit(pl.gather(*[in_job(0.5, i, str(marks)) for i in range(6)]))
        wait_for(lambda: any(marks.iterdir()), what="a task to start")
        killed = next(marks.iterdir()).name.split("-")[1]
        subprocess.run([*cancel, killed], check=True, timeout=30, capture_output=True)
        done = future.result(timeout=90)
    assert [i for i, _ in done] == list(range(6))
    assert {job for _, job in done} - {killed}, "tasks ran on a new block after the first was cancelled"
