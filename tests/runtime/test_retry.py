"""Retry policies: which failures are retried, how often, and what the final error says."""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path
from typing import Any

import pytest

import plait as pl


def _attempts(marker: Path) -> int:
    return len(marker.read_text().split()) if marker.exists() else 0


def _record(marker: Path) -> int:
    """Append a line to ``marker`` and return which attempt this is (1, 2, ...)."""
    with open(marker, "a") as f:
        f.write("x\n")
    return _attempts(marker)


class Events:
    """A Monitor that keeps (state, attempt) of every event."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, int]] = []

    def task_event(self, state: str, task_id: int, name: str, key: bytes, **info: Any) -> None:
        self.seen.append((state, info["attempt"]))

    def close(self) -> None:
        pass


def test_a_policy_retries_matching_errors_until_success(tmp_path: Path) -> None:
    marker = tmp_path / "marker"

    @pl.app(retries=pl.Retry(attempts=3, backoff=pl.exponential(0.01, factor=2, max=0.05), jitter=0.1, on=(OSError,)))
    def flaky() -> str:
        if _record(marker) < 3:
            raise OSError("not yet")
        return "ok"

    events = Events()
    with pl.Runtime([pl.ThreadExecutor(1)], monitor=events) as rt:
        assert rt.run(flaky(), timeout=30) == "ok"
    assert _attempts(marker) == 3
    assert [state for state, _ in events.seen if state in ("retried", "done")] == ["retried", "retried", "done"]


def test_the_final_error_lists_every_attempt(tmp_path: Path) -> None:
    marker = tmp_path / "marker"

    @pl.app(retries=2)
    def always() -> None:
        raise OSError(f"failure number {_record(marker)}")

    with pl.Runtime([pl.ThreadExecutor(1)]) as rt, pytest.raises(OSError, match="failure number 3") as info:
        rt.run(always(), timeout=30)
    notes = info.value.__notes__
    assert len(notes) == 2
    assert re.search(r"attempt 1 .*failed with OSError: failure number 1", notes[0])
    assert re.search(r"attempt 2 .*failed with OSError: failure number 2", notes[1])


def test_the_monitor_is_told_which_attempt_failed_last() -> None:
    @pl.app(retries=2)
    def always() -> None:
        raise OSError("no")

    events = Events()
    with pl.Runtime([pl.ThreadExecutor(1)], monitor=events) as rt, pytest.raises(OSError):
        rt.run(always(), timeout=30)
    assert [e for e in events.seen if e[0] in ("running", "failed")][-2:] == [("running", 3), ("failed", 3)]


def test_errors_outside_on_are_not_retried(tmp_path: Path) -> None:
    marker = tmp_path / "marker"

    @pl.app(retries=pl.Retry(attempts=5, on=(OSError,)))
    def wrong() -> None:
        _record(marker)
        raise ValueError("a bug, not bad luck")

    with pl.Runtime([pl.ThreadExecutor(1)]) as rt, pytest.raises(ValueError, match="a bug") as info:
        rt.run(wrong(), timeout=30)
    assert _attempts(marker) == 1
    assert not getattr(info.value, "__notes__", [])


def test_when_decides_per_error(tmp_path: Path) -> None:
    marker = tmp_path / "marker"

    @pl.app(retries=pl.Retry(attempts=5, when=lambda e: "transient" in str(e)))
    def picky() -> None:
        n = _record(marker)
        raise RuntimeError("transient" if n < 2 else "permanent")

    with pl.Runtime([pl.ThreadExecutor(1)]) as rt, pytest.raises(RuntimeError, match="permanent"):
        rt.run(picky(), timeout=30)
    assert _attempts(marker) == 2


def test_the_runtime_default_applies_to_apps_without_a_policy(tmp_path: Path) -> None:
    default_marker, own_marker = tmp_path / "default", tmp_path / "own"

    @pl.app
    def uses_default() -> None:
        _record(default_marker)
        raise OSError("x")

    @pl.app(retries=0)
    def opts_out() -> None:
        _record(own_marker)
        raise OSError("x")

    with pl.Runtime([pl.ThreadExecutor(1)], retries=pl.Retry(attempts=3)) as rt:
        for expr in (uses_default(), opts_out()):
            with pytest.raises(OSError):
                rt.run(expr, timeout=30)
    assert (_attempts(default_marker), _attempts(own_marker)) == (3, 1)


def test_dependents_of_a_task_that_ran_out_of_retries_fail_with_its_error(tmp_path: Path) -> None:
    @pl.app(retries=1)
    def broken() -> int:
        raise OSError("gone")

    @pl.app
    def after(x: int) -> int:
        return x

    with pl.Runtime([pl.ThreadExecutor(1)]) as rt, pytest.raises(pl.DependencyError) as info:
        rt.run(after(broken()), timeout=30)
    assert isinstance(info.value.root, OSError)
    assert len(info.value.root.__notes__) == 1


def test_a_lost_worker_is_retried_by_default(tmp_path: Path) -> None:
    marker = tmp_path / "marker"

    @pl.app
    def dies_once() -> int:
        if _record(marker) == 1:
            os.kill(os.getpid(), signal.SIGKILL)
        return os.getpid()

    with pl.Runtime([pl.ProcessExecutor(1)]) as rt:
        assert rt.run(dies_once(), timeout=60) > 0
    assert _attempts(marker) == 2


def test_losing_workers_beyond_the_budget_fails_with_every_attempt_listed(tmp_path: Path) -> None:
    marker = tmp_path / "marker"

    @pl.app
    def always_dies() -> None:
        _record(marker)
        os.kill(os.getpid(), signal.SIGKILL)

    with pl.Runtime([pl.ProcessExecutor(1)], lost_retries=2) as rt, pytest.raises(pl.WorkerLost) as info:
        rt.run(always_dies(), timeout=60)
    assert _attempts(marker) == 3
    assert len(info.value.__notes__) == 2
    assert all("WorkerLost" in note for note in info.value.__notes__)


def test_retry_validates_its_fields() -> None:
    with pytest.raises(ValueError, match="attempts must be at least 1"):
        pl.Retry(attempts=0)
    with pytest.raises(ValueError, match="jitter must be between 0 and 1"):
        pl.Retry(jitter=2.0)
    with pytest.raises(TypeError, match="exception types"):
        pl.Retry(on=("OSError",))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="retries must be"):
        pl.app(retries=-1)
