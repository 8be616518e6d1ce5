"""Real runs on worker processes and zmq pools: the db holds what each task and node used."""

from __future__ import annotations

import re
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

import plait as pl
from plait.report import write_report
from tests.monitoring.usage_apps import MiB, allocate, broken, burn, grow, idle, swell_and_die

EXECUTORS: dict[str, Callable[[], pl.Executor]] = {
    "processes": lambda: pl.ProcessExecutor(2, usage_interval=0.2),
    "zmq": lambda: pl.ZMQExecutor(
        provider=pl.LocalProvider(workers=2), usage_interval=0.2, heartbeat_period=0.2, heartbeat_threshold=3.0
    ),
}


def workflow() -> pl.Expr[list[object]]:
    small = [allocate(1, tag=i) for i in range(5)]
    return pl.gather(allocate(200), *small, burn(0.5), idle(1.5), broken("boom").attempt())


@pytest.mark.parametrize("kind", sorted(EXECUTORS))
def test_a_run_records_each_tasks_cpu_and_peak_memory_and_its_nodes(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "run.db"
    with pl.Runtime([EXECUTORS[kind]()], monitor=path, progress=False) as rt:
        values = rt.run(workflow())
    assert values[:6] == [200, 1, 1, 1, 1, 1]

    with pl.monitoring.open(path) as db:
        tasks = db.tasks().list()
        assert len(tasks) == 9
        assert all(isinstance(t, pl.monitoring.Task) for t in tasks)
        assert all(t.executor == kind for t in tasks)

        allocations = sorted(db.tasks().by_app("allocate"), key=lambda t: t.peak_rss or 0)
        assert len(allocations) == 6
        big, smalls = allocations[-1], allocations[:-1]
        assert big.peak_rss is not None and 200 * MiB < big.peak_rss < 1024 * MiB
        # Each task's peak is its own: the small ones ran after or beside the big one, on the same workers.
        assert all(t.peak_rss is not None and t.peak_rss < big.peak_rss - 150 * MiB for t in smalls)

        (burner,) = db.tasks().by_app("burn")
        assert burner.cpu_seconds is not None and 0.5 <= burner.cpu_seconds < 5.0
        assert burner.wall_seconds is not None and burner.wall_seconds >= 0.5
        (sleeper,) = db.tasks().by_app("idle")
        assert sleeper.cpu_efficiency is not None and sleeper.cpu_efficiency < 0.5

        (failure,) = db.tasks().failed()
        assert failure.name == "broken" and failure.error is not None and "ValueError: boom" in failure.error
        assert failure.peak_rss is not None  # a failed task is measured too

        slowest = db.tasks().slowest(2).list()
        walls = [t.wall_seconds or 0.0 for t in tasks]
        assert [t.wall_seconds for t in slowest] == sorted(walls, reverse=True)[:2]
        assert all(isinstance(a, pl.monitoring.Attempt) for a in db.attempts())
        assert len(db.attempts()) == 9

        (node,) = db.nodes()
        assert node.name == socket.gethostname()
        assert node.cpus >= 1 and node.mem_total > 0 and node.samples >= 1
        assert len(db.tasks().on_node(node.name)) == 9  # every worker ran on the one node sampled
        assert db.tasks().biggest(1).list() == [big]
        samples = db.samples(node.name)
        assert len(samples) == node.samples
        assert all(isinstance(s, pl.monitoring.NodeSample) for s in samples)
        assert all(s.source.startswith(kind) and 0 <= s.cpu_percent <= 100 for s in samples)
        assert all(0 < s.mem_used < s.mem_total for s in samples)

    write_report(path, tmp_path / "report.html")
    page = (tmp_path / "report.html").read_text()
    assert page.count('class="node-chart"') == 2  # CPU and memory of the one node
    outliers = page.split('<table id="outliers">')[1].split("</table>")[0]
    assert f"<td>{big.task} (attempt 1)</td>" in outliers
    assert not any(f"<td>{t.task} (attempt" in outliers for t in smalls)
    resources = page.split('<table id="resources">')[1].split("</table>")[0]
    assert "<td>allocate</td><td>6</td>" in resources


@pytest.mark.parametrize("kind", sorted(EXECUTORS))
def test_a_long_task_is_looked_at_while_it_runs(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "run.db"
    with pl.Runtime([EXECUTORS[kind]()], monitor=path, progress=False) as rt:
        assert rt.run(grow(8, 16, 0.25)) == 8 * 16
    with pl.monitoring.open(path) as db:
        (task,) = db.tasks()
        looks = db.task_samples(task.task)
        assert db.task_samples() == looks
    assert task.running is not None and task.ended is not None and task.peak_rss is not None
    assert len(looks) >= 3, looks  # a look every 0.2 s of a 2 s task
    assert all(isinstance(look, pl.monitoring.TaskSample) and look.task == task.task for look in looks)
    assert all(task.running - 0.5 <= look.at <= task.ended + 0.5 for look in looks)
    # CPU use is over the time since the last look at the task: none at the first.
    assert looks[0].cpu_percent is None
    assert all(look.cpu_percent is not None and 0 < look.cpu_percent <= 200 for look in looks[1:])
    assert max(look.rss for look in looks) - looks[0].rss >= 2 * 16 * MiB  # it grew while it ran (seen by a later look)
    assert all(look.peak_rss is not None and look.rss <= look.peak_rss <= task.peak_rss for look in looks)

    write_report(path, tmp_path / "report.html")
    watched = (tmp_path / "report.html").read_text().split('<div id="tasks">')[1].split("</div>")[0]
    assert f"task {task.task} · grow · done · {len(looks)} looks" in watched
    assert watched.count('class="task-chart"') == 2  # its CPU and its memory


def test_with_task_usage_off_the_run_records_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLAIT_TASK_USAGE", "0")  # workers inherit it
    path = tmp_path / "run.db"
    with pl.Runtime([pl.ProcessExecutor(1, usage_interval=None)], monitor=path, progress=False) as rt:
        assert rt.run(allocate(1)) == 1
    with pl.monitoring.open(path) as db:
        (task,) = db.tasks()
        assert task.state == "done" and task.cpu_seconds is None and task.peak_rss is None
        assert db.nodes() == []


@pytest.mark.parametrize("kind", sorted(EXECUTORS))
def test_a_worker_killed_while_big_says_how_big_it_was(tmp_path: Path, kind: str) -> None:
    # As when the OOM killer ends a task: its worker vanishes with no result to carry its usage.
    runtime = pl.Runtime([EXECUTORS[kind]()], monitor=tmp_path / "run.db", lost_retries=0, progress=False)
    with runtime as rt, pytest.raises(pl.WorkerLost) as lost:
        rt.run(swell_and_die(300, 1.5))
    found = re.search(r"its RSS was (\d+) MiB at its last sample", str(lost.value))
    assert found is not None, str(lost.value)
    assert 300 <= int(found.group(1)) < 1024
    with pl.monitoring.open(tmp_path / "run.db") as db:
        (task,) = db.tasks().failed()
        assert task.error is not None and found.group(0) in task.error
        assert max(look.rss for look in db.task_samples(task.task)) >= 300 * MiB  # how it grew until it died
    write_report(tmp_path / "run.db", tmp_path / "report.html")
    assert f"task {task.task} · swell_and_die · failed" in (tmp_path / "report.html").read_text()
