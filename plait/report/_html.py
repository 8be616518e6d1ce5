"""A run as one self-contained HTML page: inline CSS and SVG, no scripts, no network."""

from __future__ import annotations

import datetime
import html
import math

from plait.monitoring import Bar, RunSummary
from plait.report._resources import render_resources

__all__ = ["app_colors", "render"]

_WIDTH = 1100  # timeline drawing area, px
_LABEL = 170  # worker names column, px
_ROW = 18
_PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#9c755f", "#bab0ac", "#ff9da7")

_CSS = """
body { font: 14px/1.4 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 24px; color: #222; }
h1 { font-size: 20px; margin: 0 0 4px; } h2 { font-size: 16px; margin: 28px 0 8px; }
.meta { color: #666; margin-bottom: 12px; }
.cards { display: flex; gap: 12px; flex-wrap: wrap; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 8px 14px; min-width: 90px; }
.card b { display: block; font-size: 20px; }
table { border-collapse: collapse; } th, td { padding: 4px 10px; border-bottom: 1px solid #eee; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.failed { color: #c0392b; } .note { color: #666; font-size: 12px; }
details { margin: 6px 0; border-left: 3px solid #c0392b; padding-left: 8px; }
details.retried { border-color: #e67e22; }
pre { background: #f7f7f7; padding: 8px; overflow-x: auto; font-size: 12px; }
svg text { font-size: 11px; font-family: inherit; }
"""


def render(data: RunSummary) -> str:
    """The whole page for one run."""
    title = f"plait run {data.run}"
    colors = app_colors([a.name for a in data.apps])
    window = _window(data)
    body = "\n".join(
        [
            f"<h1>{html.escape(title)}</h1>",
            _meta(data),
            _cards(data),
            "<h2>Timeline</h2>",
            _timeline(data, window, colors),
            "<h2>Apps</h2>",
            _apps(data, colors),
            render_resources(data.resources, window),
            f"<h2>Failures ({data.failure_count})</h2>",
            _failures(data),
        ]
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>\n"
        f"<body>\n{body}\n</body></html>\n"
    )


def _meta(data: RunSummary) -> str:
    started = datetime.datetime.fromtimestamp(data.started).isoformat(sep=" ", timespec="seconds")
    if data.ended is None:
        took = "did not close (still running, or killed)"
    else:
        took = f"took {_seconds(data.ended - data.started)}"
    parts = [f"started {started}", took, f"run {data.run} of {data.runs} in {html.escape(data.path)}"]
    if data.argv:
        parts.append(f"<code>{html.escape(data.argv)}</code>")
    return f'<div class="meta">{" · ".join(parts)}</div>'


def _cards(data: RunSummary) -> str:
    rate = data.memo_hit_rate
    cards = [("tasks", str(data.tasks))]
    cards += [(state, str(data.states.get(state, 0))) for state in ("done", "failed", "retried", "cached", "cancelled")]
    cards.append(("memo hit rate", "-" if rate is None else f"{rate:.0%}"))
    slots = data.worker_slots
    cards.append(("workers", str(len(slots))))
    if len(data.workers) > len(slots):
        cards.append(("workers replaced", str(len(data.workers) - len(slots))))
    items = "".join(f'<div class="card" id="card-{_slug(k)}"><b>{v}</b>{html.escape(k)}</div>' for k, v in cards)
    return f'<div class="cards">{items}</div>'


def _apps(data: RunSummary, colors: dict[str, str]) -> str:
    head = "<tr><th>app</th><th>tasks</th><th>done</th><th>failed</th><th>retried</th><th>cached</th>"
    head += "<th>cancelled</th><th>mean</th><th>max</th><th>total</th></tr>"
    rows = [
        f'<tr><td><span style="color:{colors[a.name]}">■</span> {html.escape(a.name)}</td><td>{a.tasks}</td>'
        f"<td>{a.done}</td><td{' class=failed' if a.failed else ''}>{a.failed}</td><td>{a.retried}</td>"
        f"<td>{a.cached}</td><td>{a.cancelled}</td><td>{_seconds(a.mean_seconds)}</td>"
        f"<td>{_seconds(a.max_seconds)}</td><td>{_seconds(a.total_seconds)}</td></tr>"
        for a in data.apps
    ]
    return f'<table id="apps">{head}{"".join(rows)}</table>'


def _failures(data: RunSummary) -> str:
    if not data.failures:
        return '<p id="failures">No task failed.</p>'
    items = []
    for f in data.failures:
        what = "failed" if f.state == "failed" else "failed, was retried"
        summary = (
            f"{html.escape(f.name)} · task {f.task} attempt {f.attempt} · {what} on {html.escape(f.worker or '?')}"
            f" · {html.escape(_last_line(f.error))}"
        )
        items.append(
            f'<details class="{f.state}"><summary>{summary}</summary><pre>{html.escape(f.error)}</pre></details>'
        )
    shown = len(data.failures)
    note = f'<p class="note">showing {shown} of {data.failure_count}</p>' if shown < data.failure_count else ""
    return f'<div id="failures">{"".join(items)}{note}</div>'


def _window(data: RunSummary) -> tuple[float, float]:
    """``(start, seconds)`` that the timeline and the node charts share: from the first
    bar or node sample to the last, so their time axes line up."""
    times = [t for b in data.bars for t in (b.start, b.end)]
    times += [p[0] for n in data.resources.nodes for p in n.points]
    if not times:
        return data.started, 1e-6
    return min(times), max(max(times) - min(times), 1e-6)


def _timeline(data: RunSummary, window: tuple[float, float], colors: dict[str, str]) -> str:
    if not data.bars:
        return '<p id="timeline">No task ran on a worker in this run.</p>'
    t0, span = window
    rows = {w: i for i, w in enumerate(data.workers)}
    height = len(rows) * _ROW + 24
    scale = _WIDTH / span
    parts = [
        f'<svg id="timeline" xmlns="http://www.w3.org/2000/svg" width="100%" '
        f'viewBox="0 0 {_LABEL + _WIDTH + 10} {height}">'
    ]
    for worker, i in rows.items():
        y = i * _ROW
        parts.append(f'<text x="{_LABEL - 6}" y="{y + 13}" text-anchor="end">{html.escape(worker)}</text>')
        parts.append(f'<rect x="{_LABEL}" y="{y + 1}" width="{_WIDTH}" height="{_ROW - 2}" fill="#f4f4f4"/>')
    parts += [_bar(b, rows[b.worker], t0, scale, colors[b.name]) for b in data.bars if b.worker in rows]
    axis_y = len(rows) * _ROW
    for tick in _ticks(span):
        x = _LABEL + tick * scale
        parts.append(f'<line x1="{x:.1f}" y1="0" x2="{x:.1f}" y2="{axis_y + 4}" stroke="#ccc"/>')
        parts.append(f'<text x="{x:.1f}" y="{axis_y + 16}" text-anchor="middle">{_seconds(tick)}</text>')
    parts.append("</svg>")
    note = ""
    if data.bar_step > 1:
        note = f'<p class="note">drawing 1 in {data.bar_step} tasks ({len(data.bars)} bars)</p>'
    return "".join(parts) + note


def _bar(bar: Bar, row: int, t0: float, scale: float, color: str) -> str:
    x = _LABEL + (bar.start - t0) * scale
    width = max((bar.end - bar.start) * scale, 1.0)
    # A white edge keeps back-to-back tasks apart; a red one marks a failed attempt.
    red = bar.state in ("failed", "retried")
    stroke = ' stroke="#c0392b" stroke-width="2"' if red else ' stroke="#fff" stroke-width="0.5"'
    tip = f"{bar.name} · task {bar.task} attempt {bar.attempt} · {bar.state} · {_seconds(bar.end - bar.start)}"
    return (
        f'<rect class="bar" x="{x:.1f}" y="{row * _ROW + 3}" width="{width:.1f}" height="{_ROW - 6}" '
        f'fill="{color}"{stroke}><title>{html.escape(tip)}</title></rect>'
    )


def _ticks(span: float) -> list[float]:
    """Round tick positions from 0 to ``span`` seconds, about six of them.

    >>> _ticks(10.0)
    [0, 2, 4, 6, 8, 10]
    >>> _ticks(0.05)
    [0.0, 0.01, 0.02, 0.03, 0.04, 0.05]
    """
    raw = span / 6
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    count = int(span / step + 1e-9)
    return [round(i * step, 10) for i in range(count + 1)]


def app_colors(names: list[str]) -> dict[str, str]:
    """A distinct colour for each app, in order: the palette's, then hues spread by the
    golden angle (a hash of the name made two of three apps share one).

    >>> colors = app_colors([f"app{i}" for i in range(12)])
    >>> len(set(colors.values())), colors["app0"]
    (12, '#4e79a7')
    """
    return {
        name: _PALETTE[i] if i < len(_PALETTE) else f"hsl({i * 137.508 % 360:.0f}, 55%, 55%)"
        for i, name in enumerate(names)
    }


def _seconds(value: float | None) -> str:
    """
    >>> _seconds(0.0123), _seconds(4.5), _seconds(125.0), _seconds(None)
    ('12.3 ms', '4.50 s', '2 min 5 s', '-')
    """
    if value is None:
        return "-"
    if value < 1:
        return f"{value * 1000:.3g} ms"
    if value < 60:
        return f"{value:.2f} s"
    return f"{int(value // 60)} min {value % 60:.0f} s"


def _last_line(error: str) -> str:
    """The line of a traceback that says what went wrong.

    >>> _last_line("Traceback ...\\n  File x\\nValueError: bad")
    'ValueError: bad'
    """
    lines = [line for line in error.strip().splitlines() if line.strip()]
    tail = next((line for line in reversed(lines) if not line.startswith(" ")), lines[-1] if lines else "")
    return tail[:200]


def _slug(text: str) -> str:
    return text.replace(" ", "-")
