"""Runtimes for tests, and assertions that a graph's outcome does not depend on them."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Any
from unittest import mock

from returns.result import Failure, Result, Success

from plait.backends import Executor, ThreadExecutor
from plait.dsl import Expr, Retry
from plait.dsl._token import Untokenizable, token_of
from plait.runtime import Memo, Runtime, current_runtime, root_cause
from plait.testing._chaos import ChaosError, ChaosExecutor
from plait.testing._reference import evaluate, possible_failures
from plait.testing.strategies import describe

__all__ = [
    "assert_equivalent",
    "chaos_runtime",
    "local_runtime",
    "outcome",
    "returns_compares_outcomes",
    "same_outcome",
    "schedule_independent",
]


def local_runtime(workers: int = 4, *, cache: Memo | str | os.PathLike[str] | None = None) -> Runtime:
    """A runtime on ``workers`` threads: the plain, fault-free reference for a test.

    ``cache`` is a memo store, or the path of a SQLite one, as for ``Runtime``.
    """
    return Runtime(executors=[ThreadExecutor(workers)], cache=cache)


def chaos_runtime(
    seed: int = 0,
    *,
    fail_rate: float = 0.1,
    lose_rate: float = 0.05,
    delay: tuple[float, float] = (0.0, 0.002),
    slow_rate: float = 0.0,
    retries: int = 10,
    inner: Executor | None = None,
    cache: Memo | str | os.PathLike[str] | None = None,
) -> Runtime:
    """A runtime on a :class:`ChaosExecutor` whose injected faults are retried.

    Apps that set no ``retries`` of their own get ``retries`` tries for injected
    :class:`ChaosError` failures only, so their own errors fail exactly as in a plain
    run; lost tasks are retried ``retries`` times whatever the app says. With the
    defaults a call fails for good with probability below 1e-9.
    """
    executor = ChaosExecutor(
        seed, fail_rate=fail_rate, lose_rate=lose_rate, delay=delay, slow_rate=slow_rate, inner=inner
    )
    policy = Retry(attempts=retries + 1, on=(ChaosError,))
    return Runtime(executors=[executor], retries=policy, lost_retries=retries, cache=cache)


def outcome(expr: Expr[Any], runtime: Runtime | None = None, *, timeout: float = 60.0) -> Result[Any, BaseException]:
    """``Success(value)`` or ``Failure(error)`` of ``expr`` on ``runtime``.

    Without a runtime, the graph is evaluated directly in this thread (see
    :func:`evaluate`). A runtime that was not started yet is started and shut down
    here; one already running is left running.
    """
    if runtime is None:
        try:
            return Success(evaluate(expr))
        except Exception as error:
            return Failure(error)
    if _started(runtime):
        return _outcome_on(runtime, expr, timeout)
    with runtime:
        return _outcome_on(runtime, expr, timeout)


def _started(runtime: Runtime) -> bool:
    # Runtime has no public "started" flag; its loop thread exists once it is.
    return runtime._thread is not None


def _outcome_on(runtime: Runtime, expr: Expr[Any], timeout: float) -> Result[Any, BaseException]:
    future = runtime.submit(expr)
    try:
        return Success(future.result(timeout))
    except TimeoutError:
        future.cancel()
        raise AssertionError(f"{_runtime_name(runtime)} did not finish in {timeout}s:\n{describe(expr)}") from None
    except Exception as error:
        return Failure(error)


def _runtime_name(runtime: Runtime | None, position: int | None = None) -> str:
    if runtime is None:
        return "direct evaluation"
    executors = ", ".join(map(_executor_name, runtime._executors))
    return f"the runtime on {executors}" if position is None else f"runtime {position + 1} ({executors})"


def _executor_name(executor: Executor) -> str:
    if type(executor).__repr__ is not object.__repr__:
        return repr(executor)
    return f"{type(executor).__name__}(label={executor.label!r})"


def _same_value(a: Any, b: Any) -> bool:
    """``a == b``, or else equal tokens: plait's content equality, which also covers
    values without ``==`` (a registered token) and arrays (whose ``==`` is elementwise).

    >>> import numpy as np
    >>> _same_value(np.arange(3), np.arange(3)), _same_value(float("nan"), float("nan")), _same_value(1, 2)
    (True, True, False)
    """
    try:
        if bool(a == b):
            return True
    except Exception:
        pass
    try:
        return token_of(a) == token_of(b)
    except Untokenizable:
        return False


def _same_root(a: BaseException, b: BaseException) -> bool:
    x, y = root_cause(a), root_cause(b)
    return type(x) is type(y) and x.args == y.args


def _agree(a: Result[Any, BaseException], b: Result[Any, BaseException], expr: Expr[Any]) -> bool:
    if isinstance(a, Success) and isinstance(b, Success):
        return _same_value(a.unwrap(), b.unwrap())
    if isinstance(a, Failure) and isinstance(b, Failure):
        if _same_root(a.failure(), b.failure()):
            return True
        # plait fails fast: when several calls fail, the first to fail is reported,
        # and that is up to the schedule. Both runs agree if each reported a failure
        # the graph really has.
        possible = possible_failures(expr)
        return all(any(_same_root(f, p) for p in possible) for f in (a.failure(), b.failure()))
    return False


def same_outcome(a: Expr[Any], b: Expr[Any], runtime: Runtime | None = None, *, timeout: float = 60.0) -> bool:
    """Whether ``a`` and ``b`` compute equal values, or fail with equal root causes (same
    type and arguments), on ``runtime`` (the current one by default).

    ``a == b`` only says whether they are the same work (equal keys) and runs nothing;
    this runs both.

    >>> from plait.testing._palette import add, neg
    >>> with local_runtime(1):
    ...     same_outcome(add(1, 2), add(2, 1)), add(1, 2) == add(2, 1)
    (True, False)
    """
    chosen = current_runtime() if runtime is None else runtime
    x, y = outcome(a, chosen, timeout=timeout), outcome(b, chosen, timeout=timeout)
    if isinstance(x, Success) and isinstance(y, Success):
        return _same_value(x.unwrap(), y.unwrap())
    return isinstance(x, Failure) and isinstance(y, Failure) and _same_root(x.failure(), y.failure())


@contextlib.contextmanager
def returns_compares_outcomes() -> Iterator[None]:
    """Within: ``returns``' ``assert_equal``, which its law checks use, compares two Exprs
    with :func:`same_outcome` on the current runtime instead of by key.

    ``returns`` compares containers with ``==``; for an Expr that says "same work",
    which most laws' two sides are not, though they compute the same thing.
    """
    from returns.primitives import asserts

    by_key = asserts.assert_equal

    def assert_equal(first: Any, second: Any, **options: Any) -> None:
        if not (isinstance(first, Expr) and isinstance(second, Expr)):
            by_key(first, second, **options)
        elif not same_outcome(first, second):
            raise AssertionError(
                f"different outcomes:\n  {_show(outcome(first, current_runtime()))} from\n{describe(first)}\n"
                f"  {_show(outcome(second, current_runtime()))} from\n{describe(second)}"
            )

    # Each law module imported assert_equal by name: replace it where it was imported.
    modules = [m for name, m in list(sys.modules.items()) if name.startswith("returns.")]
    users = [m for m in modules if vars(m).get("assert_equal") is by_key]
    with contextlib.ExitStack() as stack:
        for module in users:
            stack.enter_context(mock.patch.object(module, "assert_equal", assert_equal))
        yield


def _show(result: Result[Any, BaseException]) -> str:
    if isinstance(result, Success):
        return f"value {result.unwrap()!r}"
    root = root_cause(result.failure())
    return f"error {type(root).__name__}: {root}"


def assert_equivalent(expr: Expr[Any], *runtimes: Runtime, timeout: float = 60.0) -> Result[Any, BaseException]:
    """Run ``expr`` on every runtime and assert the outcomes agree; returns the outcome.

    Values are compared with ``==`` or, failing that, by their plait tokens (so values
    with a registered token and arrays compare by content). Failures that started at
    the same call compare by the type and arguments of their root cause; failures that
    started at different calls agree, since which of two failing calls fails first is
    up to the schedule (plait fails fast). With a single runtime, the reference is a direct evaluation of the
    graph in this thread (no runtime at all). Runtimes not started yet are started
    and shut down here.

    >>> from plait.testing._palette import add, neg
    >>> assert_equivalent(add(neg(1), 5), local_runtime(1))
    <Success: 4>
    """
    if not runtimes:
        raise TypeError("assert_equivalent(expr, runtime, ...) needs at least one runtime")
    chosen: list[Runtime | None] = [None, runtimes[0]] if len(runtimes) == 1 else list(runtimes)
    results = [(_runtime_name(rt, i), outcome(expr, rt, timeout=timeout)) for i, rt in enumerate(chosen)]
    reference_name, reference = results[0]
    for name, result in results[1:]:
        if not _agree(reference, result, expr):
            raise AssertionError(
                f"outcomes differ:\n  {reference_name} gave {_show(reference)}\n"
                f"  {name} gave {_show(result)}\nfor the graph:\n{describe(expr)}"
            )
    return reference


def schedule_independent(expr: Expr[Any], *, seeds: tuple[int, ...] = (1, 2, 3), timeout: float = 60.0) -> bool:
    """Whether ``expr`` gives the same outcome on one thread and under reordered completions.

    Each seed is a :class:`ChaosExecutor` that injects no faults but delays every
    completion by a seeded random time, so tasks finish in a different order.

    >>> from plait.testing._palette import add, neg
    >>> schedule_independent(add(neg(1), neg(2)), seeds=(1,))
    True
    """
    runtimes = [local_runtime(1)] + [
        chaos_runtime(seed, fail_rate=0.0, lose_rate=0.0, delay=(0.0, 0.003)) for seed in seeds
    ]
    try:
        assert_equivalent(expr, *runtimes, timeout=timeout)
    except AssertionError:
        return False
    return True
