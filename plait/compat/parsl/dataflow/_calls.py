"""How one Parsl app call becomes a plait Expr: its inputs, its tries, its join.

- Inputs are resolved as Parsl resolves them: futures among the positional arguments,
  the keyword arguments and the items of ``inputs=[...]``. When any failed, the task
  fails with :class:`DependencyError` listing each failed input, and does not run.
  (Futures nested deeper are resolved by plait itself.)
- Each try is a fresh plait call, so a retry is new work. ``retries`` and
  ``retry_handler`` decide, in the runtime, whether a failed try is tried again.
- A join app's body returns a future or a list of futures; the task's value is theirs,
  or :class:`JoinError` when any failed.
"""

from __future__ import annotations

import concurrent.futures
import functools
import itertools
import os
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import attrs
from returns.result import Failure, Result, Success

import plait as pl
from plait.compat.parsl.app.futures import DataFuture
from plait.compat.parsl.dataflow.errors import DependencyError, JoinError
from plait.compat.parsl.dataflow.futures import AppFuture
from plait.dsl import as_expr

__all__ = ["TaskRecord", "call_expr", "describe"]

TaskRecord = dict[str, Any]  # what a retry_handler is given, with Parsl's keys


class Tried(Protocol):
    """What a call needs of its app and its kernel."""

    def plait_call(self, record: TaskRecord, args: Sequence[Any], kwargs: dict[str, Any]) -> pl.Expr[Any]: ...

    @property
    def joins(self) -> bool: ...


def call_expr(app: Tried, record: TaskRecord, args: Sequence[Any], kwargs: dict[str, Any]) -> pl.Expr[Any]:
    """The Expr of one call: wait for its inputs, then try it."""
    return _Call(app, record, args, kwargs).expr()


class _Step:
    """A function the runtime runs between a call's tasks (wait for inputs, retry, join).

    plait keys a bind or map by its source and its function. Two calls waiting on the same
    pending future have the same source, so each step carries an identity of its own: the
    call stays its own work. (Hashing the function instead would also tell them apart, but
    it traces this layer's code and arguments for every call.)
    """

    def __init__(self, fn: Callable[[Any], Any]) -> None:
        self.fn = fn
        self.__plait_identity__ = _STEP_PREFIX + next(_step_numbers).to_bytes(8, "little")

    def __call__(self, value: Any) -> Any:
        return self.fn(value)


_STEP_PREFIX = os.urandom(8)  # keys live in this driver process only
_step_numbers = itertools.count()


@attrs.frozen
class _Call:
    """One call of an app; ``record`` counts its tries and failures."""

    app: Tried
    record: TaskRecord
    args: Sequence[Any]
    kwargs: dict[str, Any]

    def expr(self) -> pl.Expr[Any]:
        inputs = self.inputs()
        if not inputs:
            return self.tries()
        outcomes = pl.gather(*(as_expr(i).attempt() for i in inputs))
        return outcomes.bind(_Step(functools.partial(self.when_ready, inputs)))

    def inputs(self) -> list[concurrent.futures.Future[Any]]:
        """The futures Parsl waits for: top-level arguments and the items of ``inputs=``."""
        listed = self.kwargs.get("inputs")
        candidates = [*self.args, *self.kwargs.values(), *(listed if isinstance(listed, (list, tuple)) else ())]
        return [c for c in candidates if isinstance(c, concurrent.futures.Future)]

    def when_ready(
        self, inputs: list[concurrent.futures.Future[Any]], outcomes: list[Result[Any, BaseException]]
    ) -> pl.Expr[Any]:
        failed = _failures(inputs, outcomes)
        if failed:
            raise DependencyError(failed, self.record["id"])
        values = {id(f): o.unwrap() for f, o in zip(inputs, outcomes, strict=True)}

        def resolved(value: Any) -> Any:
            return values[id(value)] if isinstance(value, concurrent.futures.Future) else value

        kwargs = {k: resolved(v) for k, v in self.kwargs.items()}
        if isinstance(self.kwargs.get("inputs"), (list, tuple)):
            kwargs["inputs"] = [resolved(v) for v in self.kwargs["inputs"]]
        return _Call(self.app, self.record, [resolved(a) for a in self.args], kwargs).tries()

    def tries(self) -> pl.Expr[Any]:
        call = self.one_try()
        if self.app.joins:  # after the last try: a join's futures are joined once
            call = call.bind(_Step(functools.partial(_join, self.record["id"])))
        return call

    def one_try(self) -> pl.Expr[Any]:
        call = self.app.plait_call(self.record, self.args, self.kwargs)
        if self.record["retries"] or self.record["retry_handler"] is not None:
            call = call.attempt().bind(_Step(self.after_try))
        return call

    def after_try(self, outcome: Result[Any, BaseException]) -> pl.Expr[Any]:
        if isinstance(outcome, Success):
            return pl.pure(outcome.unwrap())
        record, error = self.record, outcome.failure()
        record["fail_count"] += 1
        record["fail_history"].append(repr(error))
        handler = record["retry_handler"]
        try:
            cost = 1.0 if handler is None else handler(error, record)
        except Exception as handler_error:  # as in Parsl: the handler's failure ends the task, as its error
            raise handler_error from error
        record["fail_cost"] += cost
        if record["fail_cost"] > record["retries"]:
            raise error
        record["try_id"] += 1
        return self.one_try()


def _join(tid: int, joinable: Any) -> pl.Expr[Any]:
    if isinstance(joinable, concurrent.futures.Future):
        futures, single = [joinable], True
    elif isinstance(joinable, list) and all(isinstance(f, concurrent.futures.Future) for f in joinable):
        futures, single = joinable, False
    else:
        raise TypeError(
            f"join_app body must return a Future or list of Futures, got {joinable!r} of type {type(joinable)}"
        )
    outcomes = pl.gather(*(as_expr(f).attempt() for f in futures))
    return outcomes.map(_Step(functools.partial(_joined, tid, futures, single)))


def _joined(
    tid: int, futures: list[concurrent.futures.Future[Any]], single: bool, outcomes: list[Result[Any, BaseException]]
) -> Any:
    failed = _failures(futures, outcomes)
    if failed:
        raise JoinError(failed, tid)
    values = [o.unwrap() for o in outcomes]
    return values[0] if single else values


def _failures(
    futures: list[concurrent.futures.Future[Any]], outcomes: list[Result[Any, BaseException]]
) -> list[tuple[BaseException, str]]:
    return [(o.failure(), describe(f)) for f, o in zip(futures, outcomes, strict=True) if isinstance(o, Failure)]


def describe(future: concurrent.futures.Future[Any]) -> str:
    """How Parsl names a failed input: ``task 3``, a DataFuture's task, or the future's repr."""
    if isinstance(future, AppFuture):
        return f"task {future.tid}"
    if isinstance(future, DataFuture):
        return f"DataFuture from task {future.tid}"
    return repr(future)
