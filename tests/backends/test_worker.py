"""run_task, the one way every process-based worker runs a task: what it measures, how it fails."""

from __future__ import annotations

import pickle
import sys
import time
from pathlib import Path

import pytest

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
    task_id, ok, payload, started, ended, usage = run_task(
        functions, (1, "quick", b"k", slow_import, pickle.dumps(((1,), {})))
    )
    assert (task_id, ok, pickle.loads(payload)) == (1, True, 2)
    assert started - before >= 0.4  # the import happened, before the task's window
    assert ended - started < 0.1
    assert usage is not None and usage[0] < 0.1


def test_a_function_that_cannot_be_loaded_fails_its_tasks_and_every_later_one() -> None:
    functions: FunctionCache = {}
    call = pickle.dumps(((1,), {}))
    first = run_task(functions, (1, "broken", b"k", b"not a pickle", call))
    later = run_task(functions, (2, "broken", b"k", None, call), follows=True)  # later tasks come without it
    for _, ok, payload, *_ in (first, later):
        assert not ok and isinstance(loads_error(payload), pickle.UnpicklingError)
