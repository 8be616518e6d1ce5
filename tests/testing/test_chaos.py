"""ChaosExecutor: seeded faults that really happen, replay per seed, and are absorbed by retries."""

from __future__ import annotations

import collections
import threading
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings

import plait as pl
import plait.testing as pt
from plait.runtime import root_cause
from plait.testing._chaos import task_identity
from plait.testing._palette import add, neg, scale

_calls: collections.Counter[int] = collections.Counter()
_lock = threading.Lock()


@pl.app
def counted(x: int) -> int:
    """Counts how often it really ran per argument: lost-after-run tasks run twice."""
    with _lock:
        _calls[x] += 1
    return x * x


@pytest.fixture(autouse=True)
def fresh_counts() -> Iterator[None]:
    _calls.clear()
    yield


def wide(n: int) -> pl.Expr[list[int]]:
    return pl.gather([add(counted(i), neg(i)) for i in range(n)])


def run_on(executor: pt.ChaosExecutor, expr: pl.Expr[list[int]], retries: int = 10) -> list[int]:
    policy = pl.Retry(attempts=retries + 1, on=(pt.ChaosError,))
    with pl.Runtime(executors=[executor], retries=policy, lost_retries=retries) as rt:
        return rt.run(expr, timeout=60)


def test_injected_faults_happen_and_retries_absorb_them() -> None:
    chaos = pt.ChaosExecutor(7, fail_rate=0.25, lose_rate=0.25, delay=(0.0, 0.002))
    expected = [i * i - i for i in range(30)]
    assert run_on(chaos, wide(30)) == expected
    faults = chaos.faults()
    assert faults["fail"] > 0 and faults["lost-before"] > 0 and faults["lost-after"] > 0, faults
    # a task lost after it ran really ran more than once: chaos reveals apps unsafe to retry
    assert sum(_calls.values()) > 30
    assert set(_calls) == set(range(30))
    assert chaos.in_flight == 0


def test_the_same_seed_replays_the_same_faults_whatever_the_arrival_order() -> None:
    def events(seed: int, order: list[int]) -> collections.Counter[tuple[str, int, str]]:
        chaos = pt.ChaosExecutor(seed, fail_rate=0.3, lose_rate=0.2, delay=(0.0, 0.003))
        run_on(chaos, pl.gather([add(counted(i), neg(i)) for i in order]))
        return collections.Counter((e.call, e.attempt, e.fault) for e in chaos.events)

    forward = events(3, list(range(25)))
    assert forward == events(3, list(reversed(range(25))))
    assert forward != events(4, list(range(25)))


def test_a_plan_depends_on_seed_call_and_attempt_only() -> None:
    a, b = pt.ChaosExecutor(1, fail_rate=0.5), pt.ChaosExecutor(1, fail_rate=0.5)
    spec = pl.TaskSpec(1, "f", b"key", abs, (3,), {})
    same_call = pl.TaskSpec(99, "f", b"key", abs, (3,), {})
    plans = [a.plan(task_identity(spec), n) for n in range(1, 30)]
    assert plans == [b.plan(task_identity(same_call), n) for n in range(1, 30)]
    assert len({p.fault for p in plans}) == 2  # attempts differ: a retry is not doomed to repeat


def test_without_retries_an_injected_failure_fails_the_run() -> None:
    chaos = pt.ChaosExecutor(0, fail_rate=1.0)
    with pl.Runtime(executors=[chaos]) as rt, pytest.raises(pl.DependencyError) as caught:
        rt.run(add(counted(1), 1), timeout=30)
    assert isinstance(root_cause(caught.value), pt.ChaosError)
    assert "counted attempt 1 (chaos seed 0)" in str(root_cause(caught.value))
    assert not _calls  # injected failures happen before the app runs


def test_bad_rates_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match="fail_rate"):
        pt.ChaosExecutor(fail_rate=1.5)
    with pytest.raises(ValueError, match="fail_rate \\+ lose_rate"):
        pt.ChaosExecutor(fail_rate=0.6, lose_rate=0.6)
    with pytest.raises(ValueError, match="delay"):
        pt.ChaosExecutor(delay=(0.2, 0.1))


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pt.exprs(max_leaves=8))
def test_retries_under_chaos_give_a_plain_runs_result(expr: pl.Expr[int]) -> None:
    pt.assert_equivalent(expr, pt.local_runtime(), pt.chaos_runtime(seed=11, fail_rate=0.2, lose_rate=0.1))


def test_an_apps_own_errors_are_not_retried_under_chaos() -> None:
    @pl.app
    def broken(x: int) -> int:
        with _lock:
            _calls[x] += 1
        raise ValueError(f"broken {x}")

    result = pt.assert_equivalent(scale(broken(5)), pt.local_runtime(), pt.chaos_runtime(seed=2, fail_rate=0.0))
    assert isinstance(root_cause(result.failure()), ValueError)
    assert _calls[5] == 2  # once per runtime


def test_a_chaos_executor_is_an_executor() -> None:
    chaos = pt.ChaosExecutor(inner=pl.ThreadExecutor(3, label="mine"))
    assert isinstance(chaos, pl.Executor)
    assert (chaos.label, chaos.capacity, chaos.can_kill) == ("mine", 6, False)
