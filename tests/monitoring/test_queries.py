"""The query API on a db written by the EventLog itself: filters, their order, runs, bad input."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import plait as pl
from plait.backends import NodeSample, TaskUsage
from plait.backends._usage import TaskMeter
from plait.runtime._monitor import EventLog

MiB = 1 << 20


def record(log: EventLog, task: int, name: str, state: str, wall: float, *, retried: bool = False) -> None:
    """Task ``task`` of app ``name`` runs for ``wall`` seconds from t=100 and ends in ``state``."""
    key = task.to_bytes(16, "big")
    log.task_event("pending", task, name, key, at=99.0)
    log.task_event("dispatched", task, name, key, executor="x", at=99.5)
    if retried:
        log.task_event("running", task, name, key, worker="x/0", at=99.6)
        log.task_event(
            "retried", task, name, key, worker="x/0", error=OSError("flaky"), at=99.7, usage=TaskUsage(0.05, 10 * MiB)
        )
        log.task_event("dispatched", task, name, key, executor="x", at=99.8)
    log.task_event("running", task, name, key, worker="x/1", at=100.0)
    error = ValueError(f"{name} {task} failed") if state == "failed" else None
    usage = TaskUsage(wall / 2, (task + 1) * MiB)
    log.task_event(state, task, name, key, worker="x/1", error=error, at=100.0 + wall, usage=usage)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    path = tmp_path / "run.db"
    first = EventLog(path)
    record(first, 1, "old", "done", 1.0)
    first.close()
    log = EventLog(path)  # run 2, the latest
    record(log, 1, "fit", "done", 3.0)
    record(log, 2, "fit", "failed", 5.0)
    record(log, 3, "fit", "done", 1.0, retried=True)
    record(log, 4, "plot", "done", 9.0)
    record(log, 5, "plot", "failed", 0.5)
    log.samples([NodeSample("n1", "x", 100.0 + i, 10.0 * i, (i + 1) * MiB, MiB, 64 * MiB, 0.5, 4) for i in range(3)])
    log.samples([NodeSample("n0", "x", 101.0, 50.0, MiB, MiB, 8 * MiB, 1.0, 2)])
    log.close()
    return path


def test_records_are_typed_and_filters_narrow_in_sql(db_path: Path) -> None:
    with pl.monitoring.open(db_path) as db:
        assert db.run == 2 and [r.run for r in db.runs()] == [1, 2]
        tasks = db.tasks().list()
        assert [t.task for t in tasks] == [1, 2, 3, 4, 5]
        assert tasks[0] == pl.monitoring.Task(
            run=2,
            task=1,
            attempts=1,
            name="fit",
            key=(1).to_bytes(16, "big").hex(),
            state="done",
            executor="x",
            worker="x/1",
            running=100.0,
            ended=103.0,
            wall_seconds=3.0,
            cpu_seconds=1.5,
            peak_rss=2 * MiB,
            error=None,
        )
        assert tasks[0].cpu_efficiency == 0.5
        assert [t.task for t in db.tasks().failed()] == [2, 5]
        assert [t.task for t in db.tasks().by_app("fit")] == [1, 2, 3]
        assert len(db.tasks().by_app("fit").failed()) == 1
        assert [t.task for t in db.tasks().slowest(2)] == [4, 2]
        # Each step applies to what the one before left.
        assert [t.task for t in db.tasks().by_app("fit").slowest(1)] == [2]
        assert [t.task for t in db.tasks().slowest(1).by_app("fit")] == []
        assert db.tasks().slowest(0).list() == []


def test_the_biggest_and_those_on_a_node(db_path: Path) -> None:
    with pl.monitoring.open(db_path) as db:
        assert [t.task for t in db.tasks().biggest(2)] == [5, 4]
        assert [t.task for t in db.tasks().by_app("fit").biggest(1)] == [3]
        assert [t.task for t in db.tasks().on_node("n1")] == [1, 2, 3, 4, 5]  # source x: workers x/...
        assert db.tasks().on_node("nowhere").list() == []
        with pytest.raises(ValueError, match="biggest\\(n=-2\\)"):
            db.tasks().biggest(-2)


def test_a_retried_task_is_one_task_of_two_attempts(db_path: Path) -> None:
    with pl.monitoring.open(db_path) as db:
        (task,) = [t for t in db.tasks() if t.task == 3]
        assert (task.attempts, task.state, task.worker) == (2, "done", "x/1")
        attempts = [a for a in db.attempts() if a.task == 3]
        assert [(a.attempt, a.state) for a in attempts] == [(1, "retried"), (2, "done")]
        assert (
            attempts[0].peak_rss == 10 * MiB and attempts[0].error is not None and "OSError: flaky" in attempts[0].error
        )
        assert {(a.task, a.attempt) for a in db.attempts().failed()} == {(2, 1), (3, 1), (5, 1)}


def test_nodes_and_samples(db_path: Path) -> None:
    with pl.monitoring.open(db_path) as db:
        assert [(n.name, n.cpus, n.samples, n.max_cpu_percent, n.max_mem_used) for n in db.nodes()] == [
            ("n0", 2, 1, 50.0, MiB),
            ("n1", 4, 3, 20.0, 3 * MiB),
        ]
        assert [s.cpu_percent for s in db.samples("n1")] == [0.0, 10.0, 20.0]
        assert len(db.samples()) == 4
        assert db.samples("nowhere") == []


def test_an_earlier_run_is_chosen_by_number(db_path: Path) -> None:
    with pl.monitoring.open(db_path, run=1) as db:
        assert [t.name for t in db.tasks()] == ["old"]
        assert db.nodes() == []


def test_bad_input_says_what_is_wrong(tmp_path: Path, db_path: Path) -> None:
    with pytest.raises(ValueError, match="is not a file"):
        pl.monitoring.open(tmp_path / "missing.db")
    with pytest.raises(ValueError, match="has no run 7 \\(it has runs 1 to 2\\)"):
        pl.monitoring.open(db_path, run=7)
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.close()
    with pytest.raises(ValueError, match="is not a plait monitoring db"):
        pl.monitoring.open(other)
    with pl.monitoring.open(db_path) as db, pytest.raises(ValueError, match="slowest\\(n=-1\\)"):
        db.tasks().slowest(-1)


def test_a_db_from_before_usage_gets_its_columns(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = sqlite3.connect(path)
    old.executescript(
        """CREATE TABLE runs (run INTEGER PRIMARY KEY, started REAL NOT NULL, ended REAL, pid INTEGER, argv TEXT);
        CREATE TABLE attempts (run INTEGER NOT NULL, task INTEGER NOT NULL, attempt INTEGER NOT NULL,
            name TEXT NOT NULL, key BLOB, state TEXT NOT NULL, executor TEXT, worker TEXT,
            pending REAL, dispatched REAL, running REAL, ended REAL, error TEXT);
        INSERT INTO runs VALUES (1, 1.0, 2.0, 1, 'old');
        INSERT INTO attempts VALUES (1, 1, 1, 'before', x'00', 'done', 'x', 'x/0', 1.0, 1.0, 1.0, 2.0, NULL);"""
    )
    old.close()
    with pl.monitoring.open(path) as db:  # reads it as it is
        (before,) = db.tasks()
        assert before.name == "before" and before.peak_rss is None
    log = EventLog(path)  # and a new run writes into it
    record(log, 1, "after", "done", 1.0)
    log.close()
    with pl.monitoring.open(path) as db:
        (after,) = db.tasks()
        assert (db.run, after.name, after.peak_rss) == (2, "after", 2 * MiB)
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone() == (1,)  # versioned from now on


def test_a_db_a_newer_plait_wrote_is_refused_not_misread(tmp_path: Path, db_path: Path) -> None:
    newer = sqlite3.connect(db_path)
    newer.execute("PRAGMA user_version = 99")
    newer.close()
    with pytest.raises(ValueError, match=r"a newer plait wrote it \(layout version 99; this plait knows up to 1\)"):
        pl.monitoring.open(db_path)
    with pytest.raises(ValueError, match="a newer plait wrote it"):
        EventLog(db_path)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the per-task peak is reset through Linux's /proc")
def test_the_peak_is_reset_for_each_task() -> None:
    meter = TaskMeter()
    before = meter.start()
    block = bytearray(200 * MiB)
    block[::4096] = b"x" * (len(block) // 4096)
    del block
    _, (_, big) = meter.stop(before)
    _, (cpu, small) = meter.stop(meter.start(follows=True))
    assert big - small > 150 * MiB
    assert 0 <= cpu < 1.0


def spin(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_a_task_that_follows_straight_on_starts_where_the_last_one_ended() -> None:
    meter = TaskMeter()
    meter.stop(meter.start())  # its first window looks at the RSS; from then on they chain
    first = meter.start(follows=True)
    spin(0.2)
    ended, (busy, _) = meter.stop(first)
    second = meter.start(follows=True)
    _, (idle, _) = meter.stop(second)
    assert second[0] == ended  # one reading ended the first and started the second
    assert busy >= 0.2 and 0 <= idle < 0.05  # and the second's CPU time is its own
    time.sleep(0.01)
    alone = meter.start(follows=False)
    assert alone[0] >= ended + 0.01  # a task after a wait opens its own window


def test_a_task_on_another_thread_opens_its_own_window() -> None:
    meter = TaskMeter()
    meter.stop(meter.start())
    ended, _ = meter.stop(meter.start(follows=True))
    time.sleep(0.01)
    windows: list[tuple[float, float, int, int]] = []
    thread = threading.Thread(target=lambda: windows.append(meter.start(follows=True)))
    thread.start()
    thread.join()
    assert windows[0][0] >= ended + 0.01 and windows[0][3] == thread.ident


SPIN = "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end:\n    pass"


def test_a_tasks_cpu_time_counts_the_child_processes_it_waited_for() -> None:
    meter = TaskMeter()
    window = meter.start()
    subprocess.run([sys.executable, "-c", SPIN], check=True, timeout=60)  # as a shell app runs its command
    _, (cpu, _) = meter.stop(window)
    assert cpu >= 0.3


CHILD = """
import resource
from plait.backends._usage import TaskMeter
meter = TaskMeter()
window = meter.start()
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, meter.stop(window)[1][1])
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the per-task peak is reset through Linux's /proc")
def test_a_worker_spawned_by_a_big_driver_measures_its_own_peak() -> None:
    # The kernel gives a process its parent's peak RSS as it execs, and ru_maxrss never
    # falls below that: the meter sees it and reads the real peak instead.
    block = bytearray(300 * MiB)
    block[::4096] = b"x" * (len(block) // 4096)
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, check=True, timeout=60)
    del block
    kept, peak = map(int, out.stdout.split())
    assert kept > 300 * MiB, "the kernel did not keep the driver's peak: this test tests nothing here"
    assert 0 < peak < 150 * MiB
