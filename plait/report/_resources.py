"""The resource part of a report: per-node CPU and memory charts, per-app usage, memory outliers,
and the course of the longest-watched tasks."""

from __future__ import annotations

import html
import sqlite3
from collections.abc import Callable, Sequence

import attrs

__all__ = ["AppUsage", "NodeSeries", "Outlier", "Resources", "TaskSeries", "load_resources", "render_resources"]

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

_CHART_W, _CHART_H, _PAD = 540, 110, 60  # _PAD: room for the axis labels


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


def render_resources(resources: Resources, window: tuple[float, float]) -> str:
    """The report's "Nodes" and "Resources" sections; node charts span ``window``
    (start, seconds): the timeline's."""
    sections = ["<h2>Nodes</h2>", _node_charts(resources.nodes, window), "<h2>Resources</h2>", _usage_table(resources)]
    return "\n".join([*sections, _task_charts(resources.tasks)])


def _node_charts(nodes: list[NodeSeries], window: tuple[float, float]) -> str:
    if not nodes:
        return '<p id="nodes">No node was sampled in this run (a ZMQExecutor or ProcessExecutor samples its nodes).</p>'
    t0, span = window
    parts = ['<div id="nodes">']
    for n in nodes:
        title = f"{n.node} · {n.cpus} cores · {_bytes(n.mem_total)} memory"
        if len(n.points) < 2:  # a line needs two looks: a run shorter than the sampling interval has one
            parts.append(f'<h3 class="node">{html.escape(title)} · no samples to chart (too short a run)</h3>')
            continue
        title += f" · {len(n.points)} samples"
        cpu = [(at, percent) for at, percent, _ in n.points]
        memory = [(at, float(used)) for at, _, used in n.points]
        parts.append(f'<h3 class="node">{html.escape(title)}</h3>')
        parts.append(
            _chart(f"CPU busy, of {n.cpus} cores", cpu, t0=t0, span=span, top=100.0, color="#4e79a7", fmt=_percent)
        )
        parts.append(
            _chart("memory used", memory, t0=t0, span=span, top=_memory_top(n), color="#f28e2b", fmt=_bytes)
        )
    parts.append("</div>")
    return "".join(parts)


def _task_charts(tasks: list[TaskSeries]) -> str:
    if not tasks:
        return ""  # no task ran longer than the sampling interval
    parts = [
        f"<h3>Tasks watched while running (the {len(tasks)} that grew biggest)</h3>",
        '<p class="note">Each long task\'s worker process, looked at every sampling interval: CPU use since '
        "the previous look (100 % is one core) and resident memory.</p>",
        '<div id="tasks">',
    ]
    for t in tasks:
        t0 = t.points[0][0]
        span = max(t.points[-1][0] - t0, 1e-6)
        title = f"task {t.task} · {t.name} · {t.state} · {len(t.points)} looks"
        cpu = [(at, percent) for at, percent, _ in t.points if percent is not None]
        rss = [(at, float(used)) for at, _, used in t.points]
        top_cpu = max([100.0, *(percent for _, percent in cpu)])
        top_rss = max(used for _, used in rss) * 1.25 or 1.0
        parts.append(f'<h4 class="task">{html.escape(title)}</h4>')
        if len(cpu) > 1:  # the first look has no CPU figure yet, and a line needs two
            parts.append(_chart("CPU", cpu, t0=t0, span=span, top=top_cpu, color="#4e79a7", fmt=_percent, kind="task"))
        parts.append(_chart("RSS", rss, t0=t0, span=span, top=top_rss, color="#e15759", fmt=_bytes, kind="task"))
    parts.append("</div>")
    return "".join(parts)


def _memory_top(node: NodeSeries) -> float:
    """The memory chart's top: a quarter above the most used, so a task's bump shows on a big node.

    >>> _memory_top(NodeSeries("n", 2, 1000, [(0.0, 0.0, 100), (1.0, 0.0, 400)]))
    500.0
    """
    most = max((used for _, _, used in node.points), default=0)
    return float(min(node.mem_total, most * 1.25) or 1)


def _chart(
    label: str,
    points: Sequence[tuple[float, float]],
    *,
    t0: float,
    span: float,
    top: float,
    color: str,
    fmt: Callable[[float], str],
    kind: str = "node",
) -> str:
    """A small line chart of ``points`` from 0 to ``top`` over ``span`` seconds from ``t0``."""
    width, height = _CHART_W, _CHART_H
    xy = " ".join(
        f"{_PAD + (at - t0) / span * (width - _PAD):.1f},{height - 14 - min(v / top, 1.0) * (height - 28):.1f}"
        for at, v in points
    )
    high, peak = fmt(top), fmt(max((v for _, v in points), default=0.0))
    return (
        f'<svg class="{kind}-chart" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}">'
        f'<rect x="{_PAD}" y="14" width="{width - _PAD}" height="{height - 28}" fill="#f7f7f7"/>'
        f'<text x="{_PAD}" y="10">{html.escape(label)} · peak {peak}</text>'
        f'<text x="{_PAD - 4}" y="20" text-anchor="end">{high}</text>'
        f'<text x="{_PAD - 4}" y="{height - 14}" text-anchor="end">0</text>'
        f'<text x="{_PAD}" y="{height - 2}">0 s</text>'
        f'<text x="{width}" y="{height - 2}" text-anchor="end">{span:.3g} s</text>'
        f'<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{xy}"/></svg>'
    )


def _usage_table(resources: Resources) -> str:
    if not resources.apps:
        return '<p id="resources">No task of this run was measured.</p>'
    head = (
        "<tr><th>app</th><th>measured</th><th>median peak RSS</th><th>max peak RSS</th>"
        "<th>CPU time</th><th>wall time</th><th>CPU efficiency</th></tr>"
    )
    rows = [
        f"<tr><td>{html.escape(a.name)}</td><td>{a.measured}</td><td>{_bytes(a.median_rss)}</td>"
        f"<td>{_bytes(a.max_rss)}</td><td>{a.cpu_seconds:.3g} s</td><td>{a.wall_seconds:.3g} s</td>"
        f"<td>{'-' if a.efficiency is None else f'{a.efficiency:.0%}'}</td></tr>"
        for a in resources.apps
    ]
    table = f'<table id="resources">{head}{"".join(rows)}</table>'
    note = (
        '<p class="note">Peak RSS is the worker process\'s peak resident memory during the task; '
        "CPU efficiency is CPU time over wall time (100 % keeps one core busy; more uses several); "
        f"- when an app's tasks took under {MIN_MEASURABLE_SECONDS:g} s on average, too short to measure.</p>"
    )
    return table + note + _outliers(resources.outliers)


def _outliers(outliers: list[Outlier]) -> str:
    if not outliers:
        return '<p id="outliers">No task used far more memory than its app\'s median.</p>'
    head = "<tr><th>task</th><th>app</th><th>worker</th><th>peak RSS</th><th>app median</th><th>ratio</th></tr>"
    rows = [
        f'<tr class="outlier"><td>{o.task} (attempt {o.attempt})</td><td>{html.escape(o.name)}</td>'
        f"<td>{html.escape(o.worker)}</td><td class=failed>{_bytes(o.peak_rss)}</td><td>{_bytes(o.median_rss)}</td>"
        f"<td>{o.peak_rss / max(o.median_rss, 1):.1f}x</td></tr>"
        for o in outliers
    ]
    return (
        f"<h3>Memory outliers ({len(outliers)})</h3>"
        f'<p class="note">Tasks whose peak RSS is over {OUTLIER_FACTOR:g} times their app\'s median and '
        f"{_bytes(OUTLIER_MARGIN)} above it.</p>"
        f'<table id="outliers">{head}{"".join(rows)}</table>'
    )


def _percent(value: float) -> str:
    return f"{value:.0f} %"


def _bytes(n: float) -> str:
    """
    >>> _bytes(512), _bytes(3 << 20), _bytes(25 << 30)
    ('512 B', '3.0 MiB', '25.0 GiB')
    """
    size = float(n)
    for unit in ("B", "KiB", "MiB"):
        if size < 1024:
            return f"{size:.0f} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"
