"""Parts of the report drawn from hand-made run data: what a short run, a replaced worker,
tiny tasks and many apps look like."""

from __future__ import annotations

import re
import sqlite3
import zlib
from pathlib import Path

from plait.monitoring import AppStats, AppUsage, Bar, NodeSeries, Resources, RunSummary
from plait.monitoring._schema import prepare
from plait.monitoring._usage import load_resources
from plait.report import render

T0 = 1_700_000_000.0


def run_data(
    *,
    apps: list[str] = ["work"],  # noqa: B006 - never mutated
    bars: list[Bar] | None = None,
    workers: list[str] | None = None,
    resources: Resources | None = None,
) -> RunSummary:
    stats = [AppStats(a, 1, 1, 0, 0, 0, 0, 1.0, 1.0, 1.0) for a in apps]
    bars = bars if bars is not None else [Bar("p/0:10", T0, T0 + 1, apps[0], 1, 1, "done")]
    return RunSummary(
        path="run.db",
        run=1,
        runs=1,
        started=T0,
        ended=T0 + 2,
        argv="",
        states={"done": len(apps)},
        apps=stats,
        failures=[],
        failure_count=0,
        bars=bars,
        bar_step=1,
        workers=workers if workers is not None else sorted({b.worker for b in bars}),
        resources=resources or Resources(),
    )


def test_a_node_sampled_once_gets_no_chart_and_says_so() -> None:
    once = NodeSeries("host-a", 4, 8 << 30, [(T0 + 0.5, 37.0, 1 << 30)])
    page = render(run_data(resources=Resources(nodes=[once])))
    assert "no samples to chart" in page
    assert 'class="node-chart"' not in page and "peak" not in page


def test_node_charts_and_the_timeline_share_one_time_axis() -> None:
    bar = Bar("p/0:10", T0 + 5, T0 + 10, "work", 1, 1, "done")
    node = NodeSeries("host-a", 4, 8 << 30, [(T0, 10.0, 1 << 30), (T0 + 20, 20.0, 2 << 30)])
    page = render(run_data(bars=[bar], resources=Resources(nodes=[node])))
    x = float(re.search(r'<rect class="bar" x="([\d.]+)"', page).group(1))  # type: ignore[union-attr]
    assert x == 170 + 5 / 20 * 1100  # the bar starts a quarter into the window the samples span
    assert page.count('text-anchor="end">20 s</text>') == 2  # both charts of the node end at 20 s


def test_only_tasks_looked_at_more_than_once_are_charted(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "run.db")
    prepare(db)
    db.executemany(
        "INSERT INTO task_samples VALUES (1, ?, ?, ?, ?, ?)",
        [(1, T0, None, 900 << 20, 900 << 20), (2, T0, None, 50 << 20, 50 << 20), (2, T0 + 5, 90.0, 60 << 20, 60 << 20)],
    )
    tasks = load_resources(db, 1).tasks
    db.close()
    assert [t.task for t in tasks] == [2]  # task 1 grew biggest, but one look draws no line


def test_apps_get_distinct_colours() -> None:
    names = [f"app{i}" for i in range(60)]
    clashing = [n for n in names if zlib.crc32(n.encode()) % 9 == zlib.crc32(b"app0") % 9][:3]
    page = render(run_data(apps=clashing))
    colours = re.findall(r'<span style="color:([^"]+)">■</span>', page)
    assert len(colours) == 3 and len(set(colours)) == 3, colours


def test_cpu_efficiency_of_tasks_too_short_to_measure_is_a_dash() -> None:
    tiny = AppUsage("tiny", measured=100, median_rss=1 << 20, max_rss=1 << 20, cpu_seconds=1.7, wall_seconds=1.0)
    long = AppUsage("long", measured=2, median_rss=1 << 20, max_rss=1 << 20, cpu_seconds=1.5, wall_seconds=2.0)
    page = render(run_data(resources=Resources(apps=[long, tiny])))
    rows = dict(re.findall(r"<tr><td>(tiny|long)</td>.*?<td>([^<]*)</td></tr>", page))
    assert rows == {"tiny": "-", "long": "75%"}
    assert "170%" not in page


def test_a_replaced_worker_is_the_same_slot_and_counted_as_replaced() -> None:
    bars = [
        Bar("processes/0:101", T0, T0 + 1, "work", 1, 1, "failed"),
        Bar("processes/0:102", T0 + 1, T0 + 2, "work", 2, 1, "done"),
        Bar("processes/1:103", T0, T0 + 2, "work", 3, 1, "done"),
    ]
    page = render(run_data(bars=bars))
    assert 'id="card-workers"><b>2</b>' in page
    assert 'id="card-workers-replaced"><b>1</b>' in page
