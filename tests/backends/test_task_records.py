"""TaskSpec, TaskResult and TaskUsage: the values an executor gets and gives, as third-party
executors use them (docs/extending.md): made by position or keyword, immutable, compared
by value, pickled, and copied with changes by msgspec.structs.replace."""

from __future__ import annotations

import pickle

import msgspec
import pytest

import plait as pl
from plait.backends._task import TaskResult, TaskSpec, TaskUsage


def test_records_are_made_read_and_copied_as_immutable_values() -> None:
    spec = TaskSpec(7, "f", b"key", print, (1, 2), {"k": 3})
    assert (spec.timeout, spec.resources) == (None, {})  # the defaults, a fresh dict each
    assert TaskSpec(7, "f", b"key", print, (1, 2), {"k": 3}, timeout=5.0).timeout == 5.0
    usage = TaskUsage(0.5, 1024)
    result = pl.TaskResult(7, value=9, worker="w", started=1.0, ended=2.0, usage=usage)
    assert result == TaskResult(7, 9, None, "w", 1.0, 2.0, usage) and result.ok
    with pytest.raises(AttributeError):
        result.value = 10  # type: ignore[misc]
    with pytest.raises(AttributeError):
        usage.peak_rss = 0  # type: ignore[misc]
    failed = msgspec.structs.replace(result, value=None, error=ValueError("no"))
    assert not failed.ok and failed.task_id == 7 and failed.usage is usage and result.ok
    assert pickle.loads(pickle.dumps(result)) == result
    assert hash(usage) == hash(TaskUsage(0.5, 1024))
    assert repr(usage) == "TaskUsage(cpu_seconds=0.5, peak_rss=1024)"
