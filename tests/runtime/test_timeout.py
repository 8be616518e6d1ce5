"""Timeouts kill the task's process, wherever the task is stuck.

The tasks here refer to nothing in this module, so a worker need not import it (and
pytest with it) before the task starts: the timeout clock runs from dispatch.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import plait as pl
from tests.processes import gone


def _pids(path: Path) -> list[int]:
    return [int(p) for p in path.read_text().split()] if path.exists() else []


LIMIT = 2.0  # seconds: far above a task's start on a busy machine, far below its sleep


def test_a_task_stuck_in_sleep_is_killed_and_fails_with_task_timeout(tmp_path: Path) -> None:
    pids = tmp_path / "pids"

    @pl.app(timeout=LIMIT)
    def stuck() -> None:
        with pids.open("a") as f:
            f.write(f"{os.getpid()}\n")
        time.sleep(120)

    @pl.app
    def fine(x: int) -> int:
        return x + 1

    with pl.Runtime([pl.ProcessExecutor(1)]) as rt:
        with pytest.raises(pl.TaskTimeout, match=r"stuck ran longer than its timeout of 2\.0 s"):
            rt.run(stuck(), timeout=60)
        (pid,) = _pids(pids)
        assert gone(pid), "the worker running the stuck task is still alive"
        assert rt.run(fine(1), timeout=60) == 2  # a fresh worker took its place


def test_a_task_stuck_in_a_c_call_is_killed(tmp_path: Path) -> None:
    pids = tmp_path / "pids"

    @pl.app(timeout=LIMIT)
    def stuck_in_libc() -> None:
        with pids.open("a") as f:
            f.write(f"{os.getpid()}\n")
        ctypes.CDLL(None).sleep(120)  # holds no Python frame a signal handler could interrupt

    with pl.Runtime([pl.ProcessExecutor(1)]) as rt, pytest.raises(pl.TaskTimeout):
        rt.run(stuck_in_libc(), timeout=60)
    (pid,) = _pids(pids)
    assert gone(pid)


def test_a_timeout_also_kills_what_the_task_started(tmp_path: Path) -> None:
    pids = tmp_path / "pids"

    @pl.app(timeout=LIMIT)
    def waits_on_child() -> None:
        child = subprocess.Popen(["sleep", "120"])
        with pids.open("a") as f:
            f.write(f"{child.pid}\n")
        child.wait()

    with pl.Runtime([pl.ProcessExecutor(1)]) as rt, pytest.raises(pl.TaskTimeout):
        rt.run(waits_on_child(), timeout=60)
    (pid,) = _pids(pids)
    assert gone(pid), "the task's own child process outlived the timeout"


def test_a_timeout_is_retried_when_the_policy_says_so(tmp_path: Path) -> None:
    pids = tmp_path / "pids"

    @pl.app(timeout=LIMIT, retries=pl.Retry(attempts=2, on=(pl.TaskTimeout,)))
    def slow_then_fast() -> str:
        with pids.open("a") as f:
            f.write(f"{os.getpid()}\n")
        if len(pids.read_text().split()) == 1:
            time.sleep(120)
        return "second try"

    @pl.app(timeout=LIMIT, retries=pl.Retry(attempts=3, on=(ValueError,)))
    def never_retried() -> None:
        time.sleep(120)

    with pl.Runtime([pl.ProcessExecutor(1)]) as rt:
        assert rt.run(slow_then_fast(), timeout=60) == "second try"
        with pytest.raises(pl.TaskTimeout) as info:
            rt.run(never_retried(), timeout=60)
    first, second = _pids(pids)
    assert first != second  # the second try ran in a new process
    assert not getattr(info.value, "__notes__", [])


def test_tasks_queued_behind_a_timed_out_one_still_run(tmp_path: Path) -> None:
    @pl.app(timeout=LIMIT)
    def stuck() -> None:
        time.sleep(120)

    @pl.app
    def quick(i: int) -> int:
        return i

    with pl.Runtime([pl.ProcessExecutor(1, prefetch=4)]) as rt:
        results = rt.run(pl.gather(stuck().attempt(), *(quick(i) for i in range(5))), timeout=60)
    assert isinstance(results[0].failure(), pl.TaskTimeout)
    assert results[1:] == list(range(5))


def test_a_timeout_on_an_executor_that_cannot_kill_is_refused() -> None:
    @pl.app(timeout=1)
    def on_threads() -> None:
        pass

    refused = pytest.raises(ValueError, match=r"on_threads has timeout=1.*cannot stop")
    with pl.Runtime([pl.ThreadExecutor(1)]) as rt, refused:
        rt.submit(on_threads())


@pytest.mark.parametrize("bad", [0, -1, True, "10"])  # "10": read from a config file, not converted
def test_a_timeout_must_be_positive(bad: float) -> None:
    with pytest.raises(ValueError, match="timeout must be a positive number of seconds"):
        pl.app(timeout=bad)


def test_a_slow_worker_start_up_does_not_count_against_the_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Python runs sitecustomize when it starts: this makes every new worker take 3 s.
    (tmp_path / "sitecustomize.py").write_text("import time\ntime.sleep(3)\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))

    @pl.app(timeout=LIMIT)
    def quick() -> str:
        return "in time"

    with pl.Runtime([pl.ProcessExecutor(1)]) as rt:
        assert rt.run(quick(), timeout=60) == "in time"


EXITS_AFTER_A_TIMEOUT = """
import time
import plait as pl

@pl.app(timeout=1)
def stuck() -> None:
    time.sleep(120)

try:
    pl.run(stuck())
except pl.TaskTimeout as error:
    print("timed out:", error)
"""


def test_a_script_that_exits_right_after_a_timeout_on_the_default_runtime_exits_quietly(tmp_path: Path) -> None:
    # The default runtime shuts down as the interpreter exits, while its executor is
    # still replacing the killed worker: that must not need a thread pool already closed.
    script = tmp_path / "workflow.py"
    script.write_text(EXITS_AFTER_A_TIMEOUT)
    out = subprocess.run(
        [sys.executable, str(script)],
        env={**os.environ, "PYTHONPATH": str(Path(pl.__file__).parents[1])},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0 and "timed out: stuck ran longer than its timeout" in out.stdout, out
    assert out.stderr == "", out.stderr
