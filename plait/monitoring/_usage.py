"""What a run used, read from its monitoring db: per-node CPU and memory over time, per-app
usage, memory outliers, and the course of the longest-watched tasks (a report's charts)."""

from __future__ import annotations

import sqlite3

import attrs

__all__ = [
    "MIN_MEASURABLE_SECONDS",
    "OUTLIER_FACTOR",
    "OUTLIER_MARGIN",
    "AppUsage",
    "NodeSeries",
    "Outlier",
    "Resources",
    "TaskSeries",
    "load_resources",
]

# A task is a memory outlier when its peak RSS is both this many times its app's median
# and this many bytes above it: a worker's baseline (the interpreter, ~30 MB) makes
# small ratios meaningless for small tasks.
OUTLIER_FACTOR = 2.0
OUTLIER_MARGIN = 64 << 20
MIN_TASKS_FOR_MEDIAN = 3
MAX_OUTLIERS = 50
MAX_POINTS = 600  # per node chart: more points than pixels only make the file heavy
MAX_TASK_CHARTS = 5  # the tasks looked at while running that grew biggest
# CPU time is read to the microsecond but the kernel charges it in scheduler ticks: for
# tasks shorter than this on average, CPU over wall time says more about ticks than work.
MIN_MEASURABLE_SECONDS = 0.1


@attrs.frozen
class AppUsage:
    """What one app's measured attempts used."""

    name: str
    measured: int  # attempts with a measurement
    median_rss: int
    max_rss: int
    cpu_seconds: float
    wall_seconds: float

    @property
    def efficiency(self) -> float | None:
        """CPU time over wall time: near 1.0 keeps a core busy, near 0 waits (I/O, sleep);
        None when the attempts are too short to tell.

        >>> AppUsage("f", 100, 0, 0, cpu_seconds=1.7, wall_seconds=1.0).efficiency is None  # 10 ms each
        True
        >>> AppUsage("f", 4, 0, 0, cpu_seconds=1.0, wall_seconds=2.0).efficiency
        0.5
        """
        if self.wall_seconds < MIN_MEASURABLE_SECONDS * self.measured or self.wall_seconds <= 0:
            return None
        return self.cpu_seconds / self.wall_seconds


@attrs.frozen
class Outlier:
    task: int
    attempt: int
    name: str
    worker: str
    peak_rss: int
    median_rss: int


@attrs.frozen
class NodeSeries:
    node: str
    cpus: int
    mem_total: int
    points: list[tuple[float, float, int]]  # at, cpu_percent, mem_used


@attrs.frozen
class TaskSeries:
    """The looks at one task while it ran (its last attempt's state: a task the OOM killer
    took shows how it grew until then)."""

    task: int
    name: str
    state: str
    points: list[tuple[float, float | None, int]]  # at, cpu_percent (None at a first look), rss


@attrs.frozen
class Resources:
    apps: list[AppUsage] = attrs.field(factory=list)
    outliers: list[Outlier] = attrs.field(factory=list)
    nodes: list[NodeSeries] = attrs.field(factory=list)
    tasks: list[TaskSeries] = attrs.field(factory=list)


def load_resources(db: sqlite3.Connection, run: int) -> Resources:
    """Per-app usage, memory outliers and node samples of ``run``."""
    apps, outliers = [], []
    rows = db.execute(
        """SELECT name, count(*), max(peak_rss), coalesce(sum(cpu), 0), coalesce(sum(ended - running), 0)
           FROM attempts WHERE run = ? AND peak_rss IS NOT NULL GROUP BY name ORDER BY name""",
        (run,),
    ).fetchall()
    for name, measured, max_rss, cpu, wall in rows:
        (median,) = db.execute(
            """SELECT peak_rss FROM attempts WHERE run = ? AND name = ? AND peak_rss IS NOT NULL
               ORDER BY peak_rss LIMIT 1 OFFSET ?""",
            (run, name, (measured - 1) // 2),
        ).fetchone()
        apps.append(AppUsage(name, measured, median, max_rss, cpu, wall))
        if measured >= MIN_TASKS_FOR_MEDIAN:
            floor = max(median * OUTLIER_FACTOR, median + OUTLIER_MARGIN)
            outliers += [
                Outlier(task, attempt, name, worker, peak_rss, median)
                for task, attempt, worker, peak_rss in db.execute(
                    """SELECT task, attempt, coalesce(worker, ''), peak_rss FROM attempts
                       WHERE run = ? AND name = ? AND peak_rss > ? ORDER BY peak_rss DESC LIMIT ?""",
                    (run, name, floor, MAX_OUTLIERS),
                )
            ]
    outliers.sort(key=lambda o: o.peak_rss / max(o.median_rss, 1), reverse=True)
    return Resources(apps, outliers[:MAX_OUTLIERS], _nodes(db, run), _tasks(db, run))


def _tasks(db: sqlite3.Connection, run: int) -> list[TaskSeries]:
    series = []
    for task, name, state in db.execute(
        """SELECT s.task, coalesce(a.name, '?'), coalesce(a.state, '?') FROM
               (SELECT task, max(rss) AS most FROM task_samples WHERE run = ? GROUP BY task) AS s
           LEFT JOIN attempts AS a ON a.run = ? AND a.task = s.task
               AND a.attempt = (SELECT max(attempt) FROM attempts WHERE run = ? AND task = s.task)
           WHERE s.task IN (SELECT task FROM task_samples WHERE run = ? GROUP BY task HAVING count(*) > 1)
           ORDER BY s.most DESC LIMIT ?""",
        (run, run, run, run, MAX_TASK_CHARTS),
    ).fetchall():
        points = db.execute(
            "SELECT at, cpu_percent, rss FROM task_samples WHERE run = ? AND task = ? ORDER BY at LIMIT ?",
            (run, task, MAX_POINTS),
        ).fetchall()
        series.append(TaskSeries(task, name, state, points))
    return series


def _nodes(db: sqlite3.Connection, run: int) -> list[NodeSeries]:
    series = []
    for node, cpus, total, count in db.execute(
        "SELECT node, max(cpus), max(mem_total), count(*) FROM samples WHERE run = ? GROUP BY node ORDER BY node",
        (run,),
    ).fetchall():
        step = -(-count // MAX_POINTS)
        # Several sources may sample one host (two pools on it): one series per host all the same.
        points = db.execute(
            """SELECT at, cpu_percent, mem_used FROM (
                   SELECT at, cpu_percent, mem_used, row_number() OVER (ORDER BY at) AS i
                   FROM samples WHERE run = ? AND node = ?)
               WHERE i % ? = 0 OR i = 1 ORDER BY at""",
            (run, node, step),
        ).fetchall()
        series.append(NodeSeries(node, cpus or 0, total or 0, points))
    return series
