"""Typed, read-only queries over a monitoring db (the file ``Runtime(monitor=...)`` writes)."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Generic, TypeVar

import attrs

from plait.backends import NodeSample, TaskSample
from plait.monitoring._schema import CORE_TABLES, INDEXES, outdated, prepare
from plait.monitoring._summary import RunSummary, summarize

__all__ = ["Attempt", "Database", "FailedCall", "Node", "Query", "Run", "Task", "open"]


@attrs.frozen
class Attempt:
    """One try of a task: a row of the ``attempts`` table.

    Times are wall-clock seconds (``running`` and ``ended`` by the worker's clock);
    ``wall_seconds`` is ``ended - running``. ``cpu_seconds`` and ``peak_rss`` (bytes)
    are what it used on its worker; None where the executor does not measure that.
    """

    run: int
    task: int
    attempt: int
    name: str
    key: str
    state: str
    executor: str
    worker: str
    pending: float | None
    dispatched: float | None
    running: float | None
    ended: float | None
    wall_seconds: float | None
    cpu_seconds: float | None
    peak_rss: int | None
    error: str | None

    @property
    def cpu_efficiency(self) -> float | None:
        """CPU time over wall time: about 1.0 for a task that keeps one core busy."""
        return _ratio(self.cpu_seconds, self.wall_seconds)


@attrs.frozen
class Task:
    """A task as it ended: its last attempt, and how many attempts it took."""

    run: int
    task: int
    attempts: int
    name: str
    key: str
    state: str
    executor: str
    worker: str
    running: float | None
    ended: float | None
    wall_seconds: float | None
    cpu_seconds: float | None
    peak_rss: int | None
    error: str | None

    @property
    def cpu_efficiency(self) -> float | None:
        """CPU time over wall time of its last attempt."""
        return _ratio(self.cpu_seconds, self.wall_seconds)


@attrs.frozen
class Node:
    """A machine that ran tasks, as its samples describe it."""

    name: str
    cpus: int
    mem_total: int
    first: float
    last: float
    samples: int
    max_cpu_percent: float
    max_mem_used: int


@attrs.frozen
class FailedCall:
    """A task that failed for good, and the call ``plait debug`` makes again.

    ``fn`` and ``call`` are its pickled function and arguments as its worker got them,
    None when they were not kept; ``problem`` then says why (bigger than the cap, not
    picklable, or written by a plait that did not keep calls). ``path`` is the driver's
    ``sys.path``, where the function's modules were imported from.
    """

    run: int
    task: int
    name: str
    worker: str
    error: str
    fn: bytes | None
    call: bytes | None
    call_bytes: int | None
    problem: str | None
    path: tuple[str, ...]


@attrs.frozen
class Run:
    run: int
    started: float
    ended: float | None
    argv: str


R = TypeVar("R", Attempt, Task)

_ATTEMPTS = """SELECT run, task, attempt, name, lower(hex(key)) AS key, state, coalesce(executor, '') AS executor,
       coalesce(worker, '') AS worker, pending, dispatched, running, ended, ended - running AS wall, cpu, peak_rss,
       error
FROM attempts WHERE run = ? ORDER BY task, attempt"""
# A bare column next to max() comes from the row holding the max: the last attempt's.
_TASKS = """SELECT run, task, max(attempt) AS attempts, name, lower(hex(key)) AS key, state,
       coalesce(executor, '') AS executor, coalesce(worker, '') AS worker, running, ended, ended - running AS wall,
       cpu, peak_rss, error
FROM attempts WHERE run = ? GROUP BY task ORDER BY task"""

# The last failed attempt that matches, with its kept call (NULLs when none was kept).
_FAILED_CALL = """SELECT a.run, a.task, a.name, coalesce(a.worker, ''), a.error, f.fn, f.problem, c.call, c.bytes,
       c.problem, r.path, c.task IS NOT NULL
FROM attempts a JOIN runs r ON r.run = a.run
LEFT JOIN calls c ON c.run = a.run AND c.task = a.task LEFT JOIN functions f ON f.key = c.fn_key
WHERE a.run = :run AND a.state = 'failed' AND {}
ORDER BY a.ended DESC, a.task DESC LIMIT 1"""


@attrs.frozen
class Query(Generic[R]):
    """Records of one kind, narrowed step by step; nothing is read until you iterate.

    Each step applies to the result of the previous one, so
    ``db.tasks().by_app("fit").slowest(5)`` is the five slowest fit tasks, and
    ``db.tasks().slowest(5).by_app("fit")`` the fit tasks among the five slowest.
    """

    _db: sqlite3.Connection = attrs.field(repr=False)
    _kind: type[R]
    _run: int
    _sql: str
    _params: tuple[Any, ...] = ()

    def failed(self) -> Query[R]:
        """Tasks that failed; for attempts, every failed try (also those tried again)."""
        states = ("failed",) if self._kind is Task else ("failed", "retried")
        return self._where(f"state IN ({', '.join('?' * len(states))})", *states)

    def by_app(self, name: str) -> Query[R]:
        """Those of the app called ``name``."""
        return self._where("name = ?", name)

    def on_node(self, node: str) -> Query[R]:
        """Those that ran on ``node``, a host name of ``db.nodes()`` (known from its samples)."""
        sources = [
            source
            for (source,) in self._db.execute(
                "SELECT DISTINCT source FROM samples WHERE run = ? AND node = ?", (self._run, node)
            )
        ]
        if not sources:
            return self._where("0")
        # A worker's name starts with its sampler's: zmq/pool-0/3:4711 ran on pool-0's node.
        clause = " OR ".join(["substr(worker, 1, ?) = ?"] * len(sources))
        return self._where(clause, *(part for s in sources for part in (len(s) + 1, f"{s}/")))

    def slowest(self, n: int) -> Query[R]:
        """The ``n`` that ran longest (wall time on the worker), longest first."""
        return self._top("wall", n, "slowest")

    def biggest(self, n: int) -> Query[R]:
        """The ``n`` with the highest peak RSS, highest first."""
        return self._top("peak_rss", n, "biggest")

    def _top(self, column: str, n: int, method: str) -> Query[R]:
        if n < 0:
            raise ValueError(f"{method}(n={n}): n must be >= 0")
        return self._step(f"SELECT * FROM ({{}}) WHERE {column} IS NOT NULL ORDER BY {column} DESC LIMIT ?", n)

    def _where(self, clause: str, *params: Any) -> Query[R]:
        return self._step(f"SELECT * FROM ({{}}) WHERE {clause}", *params)

    def _step(self, template: str, *params: Any) -> Query[R]:
        return Query(self._db, self._kind, self._run, template.format(self._sql), (*self._params, *params))

    def __iter__(self) -> Iterator[R]:
        kind = self._kind
        for row in self._db.execute(self._sql, self._params):
            yield kind(*row)

    def __len__(self) -> int:
        (count,) = self._db.execute(f"SELECT count(*) FROM ({self._sql})", self._params).fetchone()
        return int(count)

    def list(self) -> list[R]:
        return list(self)


class Database:
    """One run of a monitoring db, read as typed records; ``open`` makes one.

    ``run`` is the run it reads (the latest unless chosen); ``runs()`` lists all of
    the file's runs. Use it as a context manager, or call ``close()``.
    """

    def __init__(self, path: str | os.PathLike[str], run: int | None = None) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise ValueError(f"{str(path)!r} is not a file: give the path of a monitoring db (Runtime(monitor=...))")
        try:
            self._db = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=rw", uri=True)
            tables = {name for (name,) in self._db.execute("SELECT name FROM sqlite_master")}
            if not tables >= CORE_TABLES:
                raise sqlite3.DatabaseError("it has no runs and attempts tables")
            if outdated(self._db):  # written by an older plait
                with self._db:
                    prepare(self._db)
            runs = self._db.execute("SELECT max(run) FROM runs").fetchone()[0]
        except sqlite3.DatabaseError as error:
            raise ValueError(f"{str(path)!r} is not a plait monitoring db: {error}") from error
        if runs is None:
            raise ValueError(f"{str(path)!r} holds no runs")
        if run is not None and self._db.execute("SELECT 1 FROM runs WHERE run = ?", (run,)).fetchone() is None:
            raise ValueError(f"{str(path)!r} has no run {run} (it has runs 1 to {runs})")
        self.run: int = runs if run is None else run

    def runs(self) -> list[Run]:
        """Every run recorded in the file, oldest first."""
        rows = self._db.execute("SELECT run, started, ended, coalesce(argv, '') FROM runs ORDER BY run")
        return [Run(*row) for row in rows]

    def tasks(self) -> Query[Task]:
        """Every task of the run, as it ended (cached ones too), by task number."""
        return Query(self._db, Task, self.run, _TASKS, (self.run,))

    def attempts(self) -> Query[Attempt]:
        """Every attempt of every task of the run."""
        return Query(self._db, Attempt, self.run, _ATTEMPTS, (self.run,))

    def nodes(self) -> list[Node]:
        """The nodes sampled during the run, by name."""
        rows = self._db.execute(
            """SELECT node, cpus, mem_total, first, last, samples, max_cpu_percent, max_mem_used
               FROM nodes WHERE run = ? ORDER BY node""",
            (self.run,),
        )
        return [Node(*row) for row in rows]

    def samples(self, node: str | None = None) -> list[NodeSample]:
        """The looks at ``node`` (default: every node) during the run, oldest first."""
        sql = """SELECT node, source, at, cpu_percent, mem_used, mem_available, mem_total, load1, cpus
                 FROM samples WHERE run = ? AND (? IS NULL OR node = ?) ORDER BY at"""
        return [NodeSample(*row) for row in self._db.execute(sql, (self.run, node, node))]

    def task_samples(self, task: int | None = None) -> list[TaskSample]:
        """The looks at running ``task`` (default: every task) during the run, oldest first.

        A task is looked at every ``usage_interval`` while it runs: only long tasks have any.
        """
        sql = """SELECT task, at, cpu_percent, rss, peak_rss FROM task_samples
                 WHERE run = ? AND (? IS NULL OR task = ?) ORDER BY at"""
        return [TaskSample(*row) for row in self._db.execute(sql, (self.run, task, task))]

    def failed_call(self, task: int | str | None = None) -> FailedCall:
        """The call of a failed task of the run: task number ``task``, the latest failure
        of the app called ``task``, or (None) the latest failure. ValueError says why
        there is none."""
        which = "a.task = :task" if isinstance(task, int) else "a.name = :task" if task is not None else "1"
        row = self._db.execute(_FAILED_CALL.format(which), {"run": self.run, "task": task}).fetchone()
        if row is None:
            raise ValueError(self._no_failure(task))
        run, number, name, worker, error, fn, fn_problem, call, size, call_problem, path, kept = row
        problem = fn_problem or call_problem
        if not kept:
            problem = "its call was not kept (the run was recorded by a plait from before plait debug)"
        return FailedCall(
            run, number, name, worker, error or "", fn, call, size, problem, tuple(json.loads(path or "[]"))
        )

    def _no_failure(self, task: int | str | None) -> str:
        where = f"{self.path} run {self.run}"
        if isinstance(task, int):
            state = self._db.execute(
                "SELECT state FROM attempts WHERE run = ? AND task = ? ORDER BY attempt DESC", (self.run, task)
            ).fetchone()
            if state is None:
                return f"{where} has no task {task}"
            return f"{where}: task {task} did not fail (it ended {state[0]})"
        failing = [
            run
            for (run,) in self._db.execute(
                "SELECT DISTINCT run FROM attempts WHERE state = 'failed' AND run != ? AND (? IS NULL OR name = ?)",
                (self.run, task, task),
            )
        ]
        subject = f"no task of app {task!r}" if task is not None else "no task"
        hint = f"; it did in run {', '.join(map(str, failing))} (choose one with --run)" if failing else ""
        return f"{where}: {subject} failed{hint}"

    def summary(self) -> RunSummary:
        """The run summed up, as ``plait report`` shows it."""
        with self._db:
            self._db.executescript(INDEXES)  # a run killed before it closed has no indexes yet
        return summarize(self._db, str(self.path), self.run)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<plait.monitoring.Database {str(self.path)!r} run {self.run}>"


def open(path: str | os.PathLike[str], run: int | None = None) -> Database:
    """Open the monitoring db at ``path`` to read run ``run`` (default: the latest)."""
    return Database(path, run)


def _ratio(part: float | None, whole: float | None) -> float | None:
    """
    >>> _ratio(1.0, 2.0), _ratio(None, 2.0), _ratio(1.0, 0.0)
    (0.5, None, None)
    """
    if part is None or not whole:
        return None
    return part / whole
