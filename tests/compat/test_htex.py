"""HighThroughputExecutor runs on plait's ZMQExecutor, with pools from its provider."""

from __future__ import annotations

import os
import time
from typing import Any

from plait.compat import parsl
from plait.compat.parsl import bash_app, python_app
from plait.compat.parsl.app.errors import AppTimeout, BashExitFailure
from plait.compat.parsl.executors import HighThroughputExecutor
from plait.compat.parsl.providers import LocalProvider


@python_app
def where(x: int) -> tuple[int, int]:
    return os.getpid(), x * x


@python_app
def spin(walltime: float | None = None) -> str:
    end = time.monotonic() + 5
    while time.monotonic() < end:
        pass
    return "done"


@bash_app
def exits(code: int) -> str:
    return f"exit {code}"


def test_htex_runs_apps_in_worker_processes(load: Any) -> None:
    htex = HighThroughputExecutor(
        label="htex", max_workers_per_node=2, provider=LocalProvider(init_blocks=1, min_blocks=1, max_blocks=1)
    )
    kernel = load(executors=[htex])
    assert parsl.dfk() is kernel
    results = [f.result(timeout=60) for f in [where(i) for i in range(6)]]
    assert [r[1] for r in results] == [i * i for i in range(6)]
    assert os.getpid() not in {pid for pid, _ in results}
    error = exits(4).exception(timeout=30)
    assert isinstance(error, BashExitFailure) and error.exitcode == 4
    assert isinstance(spin(walltime=0.3).exception(timeout=30), AppTimeout)
