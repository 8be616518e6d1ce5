"""What running an Expr would do, worked out without running it: ``rt.plan(expr)``, ``plait plan``.

The plan walks the graph as the interpreter would admit it: each distinct key once,
each call looked up in the memo the way the interpreter looks it up (a call is served
from the memo or runs; its inputs are needed either way). It never calls an app. A
``bind`` continues with a graph that only its input's value decides: when that value is
known without running anything (it comes from the memo, constants, and ``map``s of
them), the plan calls the bind's function, as the runtime would, and goes on into the
graph it returns; otherwise the plan stops there and lists the bind as unknown.
Times come from earlier runs: each app's median wall time in a monitoring db.
"""

from __future__ import annotations

import os
import sqlite3
import statistics
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
from returns.result import Success

from plait.dsl._expr import Attempt, Await, Bind, Call, Expr, Gather, Map, Pure
from plait.runtime._hooks import MISSING, Memo, Monitor
from plait.runtime._monitor import EventLog, Monitors
from plait.runtime._progress import clock

__all__ = ["AppPlan", "Plan", "Step", "history_of", "make_plan", "median_seconds"]


@attrs.frozen
class AppPlan:
    """One app's share of a plan: its distinct tasks, how many the memo serves, how many run.

    ``median_seconds`` is its median wall time in earlier runs (None: never recorded).
    """

    name: str
    tasks: int
    cached: int
    to_run: int
    median_seconds: float | None


@attrs.frozen
class Step:
    """A task to run on the critical path, with its app's median time (None: unknown)."""

    label: str
    name: str
    seconds: float | None


@attrs.frozen
class Plan:
    """What running an Expr would do: see ``Runtime.plan``.

    ``critical_path`` is the longest chain of tasks to run, one after another (by
    recorded time, then by length); ``critical_seconds`` its time and ``work_seconds``
    the time of every task to run, from each app's median (apps without one count 0
    and are listed in ``unestimated``). ``unknown`` lists the binds whose graph depends
    on work that has to run first: the counts cover the graph up to them.
    """

    apps: tuple[AppPlan, ...]
    critical_path: tuple[Step, ...]
    critical_seconds: float
    work_seconds: float
    workers: int
    unknown: tuple[str, ...] = ()
    unestimated: tuple[str, ...] = ()

    @property
    def tasks(self) -> int:
        return sum(a.tasks for a in self.apps)

    @property
    def cached(self) -> int:
        return sum(a.cached for a in self.apps)

    @property
    def to_run(self) -> int:
        return sum(a.to_run for a in self.apps)

    @property
    def estimated_seconds(self) -> float:
        """At least the critical path, and at least the work spread over every worker."""
        return max(self.critical_seconds, self.work_seconds / max(self.workers, 1))

    def __str__(self) -> str:
        width = max([len(a.name) for a in self.apps] + [5])
        lines = [f"{'app':<{width}}  {'tasks':>7}  {'cached':>7}  {'to run':>7}  {'median':>9}"]
        for a in self.apps:
            median = _seconds(a.median_seconds)
            lines.append(f"{a.name:<{width}}  {a.tasks:>7}  {a.cached:>7}  {a.to_run:>7}  {median:>9}")
        lines.append(f"{'total':<{width}}  {self.tasks:>7}  {self.cached:>7}  {self.to_run:>7}")
        path = " → ".join(_short(step.label) for step in self.critical_path) or "nothing to run"
        steps = len(self.critical_path)
        lines.append(f"critical path ({steps} task{'s' * (steps != 1)}, {_seconds(self.critical_seconds)}): {path}")
        lines.append(
            f"estimated time: {_seconds(self.estimated_seconds)} on {self.workers} workers "
            f"({_seconds(self.work_seconds)} of work)"
        )
        if self.unestimated:
            lines.append(f"no recorded time for: {', '.join(self.unestimated)} (counted as 0)")
        for label in self.unknown:
            lines.append(f"unknown beyond {label}: its input has to run before its graph is known")
        return "\n".join(lines)


def _seconds(value: float | None) -> str:
    """
    >>> _seconds(None), _seconds(0.00001), _seconds(0.0123), _seconds(7.25), _seconds(3725.0)
    ('?', '<1 ms', '12 ms', '7.2 s', '1:02:05')
    """
    if value is None:
        return "?"
    if value < 1:
        return f"{value * 1000:.0f} ms" if value >= 0.001 else "<1 ms"
    return f"{value:.1f} s" if value < 60 else clock(value)


@attrs.define
class _Known:
    """What the walk learnt of one node: its value if known without running, the longest
    chain of work to run up to it, and the node before it on that chain."""

    known: bool
    value: Any
    cost: tuple[float, int]  # (seconds, tasks) of the longest chain ending here
    previous: bytes | None
    step: Step | None


def make_plan(expr: Expr[Any], memo: Memo | None, seconds: Mapping[str, float], workers: int) -> Plan:
    """The plan of ``expr`` against ``memo``, with ``seconds`` per app from earlier runs."""
    walk = _Walk(memo, seconds)
    walk.run(expr)
    return walk.plan(expr._key, workers)


class _Walk:
    """One post-order walk over a graph, on an explicit stack (no recursion on depth)."""

    def __init__(self, memo: Memo | None, seconds: Mapping[str, float]) -> None:
        self.memo = memo
        self.seconds = seconds
        self.nodes: dict[bytes, _Known] = {}
        self.inner: dict[bytes, Expr[Any]] = {}  # a bind's graph, once its function has been called
        self.counts: dict[str, list[int]] = {}  # app name -> [tasks, cached]
        self.unknown: list[str] = []

    def run(self, top: Expr[Any]) -> None:
        stack: list[tuple[Expr[Any], bool]] = [(top, False)]
        while stack:
            expr, inputs_done = stack.pop()
            if expr._key in self.nodes:
                continue
            if not inputs_done:
                stack.append((expr, True))
                stack.extend((child, False) for child in expr.children() if child._key not in self.nodes)
                continue
            inner = self._expand(expr)
            if inner is not None and inner._key not in self.nodes:
                stack += [(expr, True), (inner, False)]  # settle the bind once its graph is walked
                continue
            self.nodes[expr._key] = self._settle(expr)

    def _expand(self, expr: Expr[Any]) -> Expr[Any] | None:
        """The graph a bind continues with, when its input is known without running."""
        if not isinstance(expr, Bind):
            return None
        if expr._key in self.inner:
            return self.inner[expr._key]
        source = self.nodes[expr.src._key]
        if not source.known:
            return None
        try:
            inner = expr.fn(source.value)
        except Exception:  # it would fail the same way in a run; nothing lies beyond it
            return None
        if not isinstance(inner, Expr):
            return None
        self.inner[expr._key] = inner
        return inner

    def _settle(self, expr: Expr[Any]) -> _Known:
        keys = [child._key for child in expr.children()]
        inner = self.inner.get(expr._key)
        if inner is not None:
            keys.append(inner._key)
        inputs = [self.nodes[key] for key in keys]
        longest = max(range(len(keys)), key=lambda i: inputs[i].cost, default=None)
        cost, previous = ((0.0, 0), None) if longest is None else (inputs[longest].cost, keys[longest])
        if isinstance(expr, Call):
            return self._call(expr, cost, previous)
        if isinstance(expr, Bind) and inner is None:
            self.unknown.append(expr.label())
            return _Known(False, None, cost, previous, None)
        known, value = self._value(expr, inputs)
        return _Known(known, value, cost, previous, None)

    def _call(self, expr: Call[Any], cost: tuple[float, int], previous: bytes | None) -> _Known:
        app = expr.app
        counts = self.counts.setdefault(app.name, [0, 0])
        counts[0] += 1
        if self.memo is not None and app.options.cache:
            cached = self.memo.get(expr._key)
            if cached is not MISSING:
                counts[1] += 1
                return _Known(True, cached, cost, previous, None)
        seconds = self.seconds.get(app.name)
        step = Step(expr.label(), app.name, seconds)
        return _Known(False, None, (cost[0] + (seconds or 0.0), cost[1] + 1), previous, step)

    @staticmethod
    def _value(expr: Expr[Any], inputs: list[_Known]) -> tuple[bool, Any]:
        """The value of a node that is not a call, when it is known without running."""
        if isinstance(expr, Pure):
            return True, expr.value
        if isinstance(expr, Await):
            future = expr.future
            done = future.done() and not future.cancelled() and future.exception() is None
            return (True, future.result()) if done else (False, None)
        if not all(i.known for i in inputs):
            return False, None
        try:
            return True, _combined(expr, [i.value for i in inputs])
        except Exception:  # a map function that raises: the run fails there too
            return False, None

    def plan(self, top: bytes, workers: int) -> Plan:
        path: list[Step] = []
        at: bytes | None = top
        while at is not None:
            node = self.nodes[at]
            if node.step is not None:
                path.append(node.step)
            at = node.previous
        apps = tuple(
            AppPlan(name, tasks, cached, tasks - cached, self.seconds.get(name))
            for name, (tasks, cached) in sorted(self.counts.items())
        )
        work = sum(a.to_run * (a.median_seconds or 0.0) for a in apps)
        unestimated = tuple(a.name for a in apps if a.to_run and a.median_seconds is None)
        top_cost = self.nodes[top].cost[0]
        return Plan(apps, tuple(reversed(path)), top_cost, work, workers, tuple(self.unknown), unestimated)


def _short(label: str, width: int = 40) -> str:
    return label if len(label) <= width else label[: width - 1] + "…"


def _combined(expr: Expr[Any], values: list[Any]) -> Any:
    """The value of a gather, attempt, map or bind from its inputs' (a bind's: its graph's)."""
    if isinstance(expr, Gather):
        return values
    if isinstance(expr, Attempt):
        return Success(values[0])
    if isinstance(expr, Map):
        return expr.fn(values[0])
    return values[-1]


def median_seconds(path: str | os.PathLike[str] | None) -> dict[str, float]:
    """Each app's median wall time over the done attempts in the monitoring db at ``path``."""
    if path is None or not Path(path).is_file():
        return {}
    db = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True)
    try:
        rows = db.execute(
            "SELECT name, ended - running FROM attempts WHERE state = 'done' AND running IS NOT NULL"
        ).fetchall()
    except sqlite3.DatabaseError as error:
        raise ValueError(f"{str(path)!r} is not a plait monitoring db: {error}") from error
    finally:
        db.close()
    times: dict[str, list[float]] = {}
    for name, wall in rows:
        times.setdefault(name, []).append(wall)
    return {name: statistics.median(walls) for name, walls in times.items()}


def history_of(monitor: Monitor | None) -> Path | None:
    """The monitoring db a runtime's monitor writes, if it has one: its earlier runs give times."""
    monitors = monitor.monitors if isinstance(monitor, Monitors) else (monitor,)
    return next((m.path for m in monitors if isinstance(m, EventLog)), None)
