"""run_task, the one way every process-based worker runs a task: what it measures, how it fails."""

from __future__ import annotations

import pickle
import sys
import time
from pathlib import Path

import pytest

from plait.backends._records import Task
from plait.backends._wire import loads_error
from plait.backends._worker import FunctionCache, run_task

SLOW_MODULE = """
import time
time.sleep(0.4)

def quick(x):
    return x + 1
"""


@pytest.fixture
def slow_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> bytes:
    """A function by reference, pickled, whose module takes 0.4 s to import and is not imported."""
    (tmp_path / "slow_to_import.py").write_text(SLOW_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    import slow_to_import  # type: ignore[import-not-found]

    payload = pickle.dumps(slow_to_import.quick)
    del sys.modules["slow_to_import"]  # the worker's loading imports it again
    return payload


def test_loading_a_function_is_not_part_of_its_first_tasks_measurement(slow_import: bytes) -> None:
    functions: FunctionCache = {}
    before = time.time()
    result = run_task(functions, Task(1, "quick", b"k", None, slow_import, pickle.dumps(((1,), {}))))
    assert (result.task_id, result.ok, pickle.loads(result.value)) == (1, True, 2)
    assert result.started - before >= 0.4  # the import happened, before the task's window
    assert result.ended - result.started < 0.1
    assert result.cpu_seconds is not None and result.cpu_seconds < 0.1


def test_a_function_that_cannot_be_loaded_fails_its_tasks_and_every_later_one() -> None:
    functions: FunctionCache = {}
    call = pickle.dumps(((1,), {}))
    first = run_task(functions, Task(1, "broken", b"k", None, b"not a pickle", call))
    later = run_task(functions, Task(2, "broken", b"k", None, None, call), follows=True)  # later ones come without it
    for result in (first, later):
        assert not result.ok and isinstance(loads_error(result.value), pickle.UnpicklingError)
