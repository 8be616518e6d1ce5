"""The monitoring db, the progress bar and the fan-out, on real executors."""

from __future__ import annotations

import io
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

import plait as pl
from plait.runtime._monitor import EventLog, Monitors, combine
from plait.runtime._progress import ProgressMonitor
from tests.waiting import wait_for


@pl.app
def square(x: int) -> int:
    return x * x


@pl.app
def reject(seed: int) -> int:
    raise ValueError(f"seed {seed} rejected")


_flaky_calls: dict[int, int] = {}
_flaky_lock = threading.Lock()


@pl.app(retries=1)
def flaky(x: int) -> int:
    """Fails on its first call for each x, then works (threads share this dict)."""
    with _flaky_lock:
        _flaky_calls[x] = _flaky_calls.get(x, 0) + 1
        first = _flaky_calls[x] == 1
    if first:
        raise RuntimeError(f"transient trouble with {x}")
    return x


_gate = threading.Event()
_waiting = threading.Event()


@pl.app
def wait_for_gate(x: int) -> int:
    _waiting.set()
    _gate.wait(30)
    return x


def attempts(path: Path, where: str = "1") -> list[sqlite3.Row]:
    db = sqlite3.connect(path)
    db.row_factory = sqlite3.Row
    try:
        return db.execute(f"SELECT * FROM attempts WHERE {where} ORDER BY task, attempt").fetchall()
    finally:
        db.close()


def test_process_run_records_each_task_with_times_worker_and_error(tmp_path: Path) -> None:
    path = tmp_path / "run.db"
    with pl.Runtime([pl.ProcessExecutor(2)], monitor=path, progress=False) as rt:
        assert rt.run(pl.gather(*(square(i) for i in range(20)))) == [i * i for i in range(20)]
        with pytest.raises(ValueError, match="seed 7 rejected"):
            rt.run(reject(7))
    rows = attempts(path)
    assert sorted(r["state"] for r in rows) == ["done"] * 20 + ["failed"]
    for r in rows:
        assert r["pending"] <= r["dispatched"] <= r["ended"]
        assert r["running"] <= r["ended"]
        assert r["executor"] == "processes"
        assert r["worker"].startswith("processes/")
        assert len(r["key"]) == 16
    failed = attempts(path, "state = 'failed'")
    assert [(r["name"], r["attempt"]) for r in failed] == [("reject", 1)]
    assert "ValueError: seed 7 rejected" in failed[0]["error"]
    assert "in reject" in failed[0]["error"]  # the worker's traceback, not the caller's
    db = sqlite3.connect(path)
    (started, ended) = db.execute("SELECT started, ended FROM runs").fetchone()
    assert started <= ended
    indexes = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"attempts_state", "attempts_task"} <= indexes
    per_state = dict(db.execute("SELECT state, count(*) FROM events GROUP BY state").fetchall())
    assert per_state == {"pending": 21, "dispatched": 21, "running": 21, "done": 20, "failed": 1}
    db.close()


def test_retried_cached_and_cancelled_attempts(tmp_path: Path) -> None:
    path = tmp_path / "run.db"
    memo = tmp_path / "memo.db"
    with pl.Runtime([pl.ThreadExecutor(2)], cache=memo, monitor=path, progress=False) as rt:
        assert rt.run(flaky(5)) == 5
        assert rt.run(square(3)) == 9
    with pl.Runtime([pl.ThreadExecutor(2)], cache=memo, monitor=path, progress=False) as rt:
        assert rt.run(square(3)) == 9  # served by the memo
        future = rt.submit(wait_for_gate(1))
        assert _waiting.wait(30)  # submit returns before the task is admitted: cancel it once it runs
        future.cancel()
        _gate.set()
    first = attempts(path, "run = 1")
    assert [(r["name"], r["attempt"], r["state"]) for r in first] == [
        ("flaky", 1, "retried"),
        ("flaky", 2, "done"),
        ("square", 1, "done"),
    ]
    assert "transient trouble with 5" in first[0]["error"]
    assert first[1]["pending"] == first[0]["ended"]  # queued again the moment it failed
    second = attempts(path, "run = 2")
    assert [(r["name"], r["state"]) for r in second] == [("square", "cached"), ("wait_for_gate", "cancelled")]
    assert second[0]["key"] == first[2]["key"]


def test_a_path_that_is_no_db_is_refused_with_its_name(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="is a directory"):
        pl.Runtime([pl.ThreadExecutor(1)], monitor=tmp_path)
    junk = tmp_path / "notes.txt"
    junk.write_bytes(b"this is not a database, just some text that is long enough" * 20)
    with pytest.raises(ValueError, match=r"monitor='.*notes.txt': cannot use it as a monitoring database"):
        EventLog(junk)


def test_a_db_in_a_directory_not_made_yet_is_made_with_it(tmp_path: Path) -> None:
    """As cache= does: "unable to open database file" before."""
    db = tmp_path / "runs" / "today" / "run.db"
    with pl.Runtime([pl.ThreadExecutor(1)], monitor=db) as rt:
        assert rt.run(pl.pure(2).map(str), timeout=30) == "2"
    assert sqlite3.connect(db).execute("SELECT count(*) FROM runs").fetchone() == (1,)


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.closed = False

    def task_event(self, state: str, task_id: int, name: str, key: bytes, **info: Any) -> None:
        self.events.append((state, name))

    def close(self) -> None:
        self.closed = True


def test_fan_out_sends_every_event_to_each_monitor(tmp_path: Path) -> None:
    a, b = Recorder(), Recorder()
    with pl.Runtime([pl.ThreadExecutor(2)], monitor=Monitors([a, b]), progress=False) as rt:
        rt.run(pl.gather(square(1), square(2)))
    assert a.events == b.events
    assert sorted(a.events) == sorted([(s, "square") for s in ("pending", "dispatched", "running", "done")] * 2)
    assert a.closed and b.closed
    assert combine([None, a]) is a
    assert isinstance(combine([a, b]), Monitors)


@pl.app
def nap(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


class Faulty(Recorder):
    def task_event(self, state: str, task_id: int, name: str, key: bytes, **info: Any) -> None:
        super().task_event(state, task_id, name, key, **info)
        if state == "running":
            raise ValueError("a bug in the user's monitor")


def test_a_monitor_that_raises_is_silenced_with_a_warning_and_the_run_goes_on() -> None:
    faulty = Faulty()
    with (
        pytest.warns(
            RuntimeWarning,
            match=r"monitor .*Faulty.* raised ValueError: a bug in the user's monitor on a "
            r"'running' event; it is told nothing more in this run",
        ),
        pl.Runtime([pl.ThreadExecutor(1)], monitor=faulty, progress=False) as rt,
    ):
        assert rt.run(square(3), timeout=30) == 9  # it hung: the task's end was never handled
        assert rt.run(square(4), timeout=30) == 16
    assert faulty.events == [("pending", "square"), ("dispatched", "square"), ("running", "square")]
    assert faulty.closed


def test_progress_bar_counts_on_a_terminal() -> None:
    out = io.StringIO()
    bar = ProgressMonitor(Console(file=out, force_terminal=True, width=120))
    with pl.Runtime([pl.ThreadExecutor(2)], monitor=bar, progress=False) as rt:
        rt.run(pl.gather(*(square(i) for i in range(30)), reject(1).attempt(), nap(1.0)))
    text = out.getvalue()
    assert "32/32" in text
    assert "done 31" in text
    assert "failed 1" in text
    assert "\x1b[" in text  # drawn in place with terminal control codes


def test_the_bars_last_line_comes_before_what_the_program_prints_next_in_colour() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, color_system="standard", width=120)
    bar = ProgressMonitor(console)
    with pl.Runtime([pl.ThreadExecutor(2)], monitor=bar, progress=False) as rt:
        value = rt.run(pl.gather(nap(1.0), square(3)))
        console.print(f"RESULT {value}")
        time.sleep(0.6)  # past the bar's next tick, which used to draw the last line
    text = out.getvalue()
    assert text.rindex("2/2") < text.index("RESULT") and text.count("RESULT") == 1, repr(text)
    assert "\x1b[32m" + "━" * 20 in text  # the full bar in green, not the 16-colour grey of rich's default


def test_a_quick_run_draws_no_bar() -> None:
    out = io.StringIO()
    bar = ProgressMonitor(Console(file=out, force_terminal=True, width=120))
    with pl.Runtime([pl.ThreadExecutor(2)], monitor=bar, progress=False) as rt:
        rt.run(pl.gather(*(square(i) for i in range(5))))
        time.sleep(0.6)  # past the moment it would show, had the work not settled
    assert out.getvalue() == ""


def test_a_forced_bar_in_a_log_file_prints_its_last_line_only_not_each_redraw() -> None:
    # A batch job's stderr is a file: redraws would fill it with a line every 0.2 s.
    log = io.StringIO()
    bar = ProgressMonitor(Console(file=log, force_terminal=False, force_jupyter=False, width=120))
    with pl.Runtime([pl.ThreadExecutor(2)], monitor=bar, progress=False) as rt:
        rt.run(pl.gather(*(square(i) for i in range(10)), nap(1.2)))  # about six redraws
    lines = log.getvalue().splitlines()
    assert len(lines) == 1 and "11/11" in lines[0], lines
    assert "\x1b[" not in log.getvalue()


def test_progress_is_off_when_stderr_is_no_terminal_and_can_be_forced() -> None:
    # pytest captures stderr, so it is not a terminal here.
    quiet = pl.Runtime([pl.ThreadExecutor(1)])
    assert quiet._interpreter.monitor is None
    loud = pl.Runtime([pl.ThreadExecutor(1)], progress=True)
    assert isinstance(loud._interpreter.monitor, ProgressMonitor)
    both = pl.Runtime([pl.ThreadExecutor(1)], monitor=Recorder(), progress=True)
    assert isinstance(both._interpreter.monitor, Monitors)
    for rt in (quiet, loud, both):
        rt.shutdown()


def test_a_runtime_shut_down_unstarted_still_closes_its_monitor(tmp_path: Path) -> None:
    rt = pl.Runtime([pl.ThreadExecutor(1)], monitor=tmp_path / "run.db", progress=False)
    log = rt._interpreter.monitor
    assert isinstance(log, EventLog)
    rt.shutdown()
    assert not log._handing.is_alive()
    assert log._writer is None  # nothing to hand over before the end: its driver wrote the run itself
    db = sqlite3.connect(tmp_path / "run.db")
    assert db.execute("SELECT count(*) FROM runs WHERE ended IS NOT NULL").fetchone() == (1,)
    db.close()


def test_a_db_that_stops_taking_writes_warns_once_and_the_run_goes_on(tmp_path: Path) -> None:
    warning = r"monitor .*run.db: cannot write \(the disk is full\); no more events are recorded"
    with (
        pytest.warns(UserWarning, match=warning),
        pl.Runtime([pl.ThreadExecutor(2)], monitor=tmp_path / "run.db", progress=False) as rt,
    ):
        # SQLite refuses every attempt the run's writer inserts from here on.
        db = sqlite3.connect(tmp_path / "run.db")
        db.execute("CREATE TRIGGER full BEFORE INSERT ON attempts BEGIN SELECT RAISE(ABORT, 'the disk is full'); END")
        db.commit()
        db.close()
        assert rt.run(pl.gather(*(square(i) for i in range(5)))) == [0, 1, 4, 9, 16]
        assert rt.run(square(7)) == 49
    assert attempts(tmp_path / "run.db") == []


def test_the_memo_file_is_refused_as_the_monitor_naming_both_uses_and_left_as_it_was(tmp_path: Path) -> None:
    memo = tmp_path / "plait-cache.db"
    both = r"monitor='.*plait-cache\.db' is a plait memo \(the results cache= keeps across runs\), not a monitoring db"
    with pytest.raises(ValueError, match=both):
        pl.Runtime([pl.ThreadExecutor(1)], cache=memo, monitor=memo)
    with pl.Runtime([pl.ThreadExecutor(1)], cache=memo, progress=False) as rt:
        assert rt.run(square(3)) == 9
    before = memo.read_bytes()
    with pytest.raises(ValueError, match=both):  # a later run, monitored into the memo of earlier ones
        pl.Runtime([pl.ThreadExecutor(1)], monitor=memo)
    assert memo.read_bytes() == before
    db = sqlite3.connect(memo)
    assert {name for (name,) in db.execute("SELECT name FROM sqlite_master")} == {"plait_results"}
    db.close()


def test_another_database_is_refused_as_the_monitor_and_left_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "measurements.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE readings (at REAL, value REAL)")
    db.commit()
    db.close()
    before = path.read_bytes()
    with pytest.raises(ValueError, match=r"it is another database \(its tables: readings\), left as it was"):
        pl.Runtime([pl.ThreadExecutor(1)], monitor=path)
    assert path.read_bytes() == before


GATE = threading.Event()


@pl.app(pure=False)
def held(x: int) -> int:
    GATE.wait(10)
    return x


def test_a_monitor_hears_of_every_call_of_a_graph_as_it_is_admitted() -> None:
    # Without a monitor, calls wait unstarted until their executor has room; a monitor's
    # pending events (the progress bar's total, the run's timeline) come at admission.
    recorder = Recorder()
    GATE.clear()
    with pl.Runtime([pl.ThreadExecutor(1)], monitor=recorder, progress=False) as rt:
        future = rt.submit(pl.traverse(held, range(50)))
        pending = lambda: [state for state, _ in recorder.events].count("pending")  # noqa: E731
        wait_for(lambda: pending() == 50, "a pending event for each call", timeout=5)
        GATE.set()
        assert future.result(10) == list(range(50))


def test_a_runtime_that_closed_leaves_no_connection_to_its_monitoring_db(tmp_path: Path) -> None:
    import gc

    def connections() -> int:
        gc.collect()
        return sum(isinstance(o, sqlite3.Connection) for o in gc.get_objects())

    before = connections()
    for x in range(3):
        with pl.Runtime([pl.ThreadExecutor(1)], monitor=tmp_path / "run.db", progress=False) as rt:
            assert rt.run(square(x)) == x * x
    del rt
    # A notebook or a service opens many runs in one process: each one's connection goes.
    assert connections() == before
