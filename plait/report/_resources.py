"""The resource part of a report: per-node CPU and memory charts, per-app usage, memory outliers,
and the course of the longest-watched tasks (read by ``plait.monitoring``)."""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence

from plait.monitoring import (
    MIN_MEASURABLE_SECONDS,
    OUTLIER_FACTOR,
    OUTLIER_MARGIN,
    NodeSeries,
    Outlier,
    Resources,
    TaskSeries,
)

__all__ = ["render_resources"]

_CHART_W, _CHART_H, _PAD = 540, 110, 60  # _PAD: room for the axis labels


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
        parts.append(_chart("memory used", memory, t0=t0, span=span, top=_memory_top(n), color="#f28e2b", fmt=_bytes))
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
