"""``plait debug`` re-runs a failed task from the run db alone, after the run's processes are gone;
``future.debug()`` does it in a live session."""

from __future__ import annotations

import pickle
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner
from returns.result import Failure

import plait as pl
from plait.runtime import EventLog
from plait.runtime._debug_cli import debug
from tests.test_cli_run import plait

STEPS = """
import plait as pl

@pl.app
def divide(x: int, parts: dict[str, object]) -> float:
    return x / (parts["scale"] - 3)
"""

# divide comes from a module (pickled by reference: debug imports it from the run's sys.path),
# check from the script itself (pickled by value).
FLOW = """
import sys
import plait as pl
from steps import divide

@pl.app
def check(values: list[int], limit: int) -> int:
    total = sum(values)
    if total > limit:
        raise OverflowError(f"{total} > {limit}")
    return total

def executor():
    if sys.argv[1] == "zmq":
        return pl.ZMQExecutor(provider=pl.LocalProvider(workers=1), heartbeat_period=0.2, heartbeat_threshold=1.5)
    return pl.ProcessExecutor(1)

if __name__ == "__main__":
    work = pl.gather(divide(7, {"scale": 3, "tag": "t"}).attempt(), check([4, 5, 6], limit=10).attempt())
    with pl.Runtime([executor()], monitor="run.db", progress=False) as rt:
        print(rt.run(work))
"""


@pytest.fixture(scope="module", params=["processes", "zmq"])
def recorded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """A run db of a finished run, in its own process, whose divide and check failed on ``kind``."""
    kind = request.param
    where = tmp_path_factory.mktemp(kind)
    (where / "steps.py").write_text(textwrap.dedent(STEPS))
    (where / "flow.py").write_text(textwrap.dedent(FLOW))
    done = subprocess.run(
        [sys.executable, "flow.py", kind], cwd=where, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    (where / "elsewhere").mkdir()  # debug runs from another directory: the run's sys.path finds steps
    return kind, where / "run.db"


def recorded_error(db: Path, app: str) -> str:
    with pl.monitoring.open(db) as opened:
        return opened.failed_call(app).error.splitlines()[-1]


def test_debug_reproduces_the_failure_with_the_same_arguments(recorded: tuple[str, Path]) -> None:
    kind, db = recorded
    for app, call, error in [
        ("divide", "divide(x=7, parts={'scale': 3, 'tag': 't'})", "ZeroDivisionError: division by zero"),
        ("check", "check(values=[4, 5, 6], limit=10)", "OverflowError: 15 > 10"),
    ]:
        again = plait("debug", str(db), app, "--no-pdb", cwd=db.parent / "elsewhere")
        assert again.returncode == 1, again.stderr
        assert f"({app}) of run 1 failed on {kind}/" in again.stdout
        assert f"re-running {call} here" in again.stdout
        assert recorded_error(db, app) == error == again.stderr.splitlines()[-1]
        assert f"in {app}\n" in again.stderr  # the task's own frame, from its source file


def test_debug_by_task_number_and_the_latest_failure(recorded: tuple[str, Path]) -> None:
    _, db = recorded
    with pl.monitoring.open(db) as opened:
        latest = opened.failed_call()
        number = opened.failed_call("divide").task
    by_number = plait("debug", str(db), str(number), "--no-pdb", cwd=db.parent)
    assert "re-running divide(x=7" in by_number.stdout
    latest_run = plait("debug", str(db), "--no-pdb", cwd=db.parent)
    assert f"re-running {latest.name}(" in latest_run.stdout


@pytest.mark.parametrize("recorded", ["processes"], indirect=True)  # the call read back is the same for zmq
def test_debug_opens_pdb_where_the_task_raised(recorded: tuple[str, Path]) -> None:
    _, db = recorded
    session = plait("debug", str(db), "divide", cwd=db.parent / "elsewhere", stdin="p x\np parts['tag']\nq\n")
    assert session.returncode == 1, session.stderr
    assert '-> return x / (parts["scale"] - 3)' in session.stdout
    assert "(Pdb) 7\n(Pdb) 't'\n" in session.stdout
    by_value = plait("debug", str(db), "check", cwd=db.parent, stdin="p total\nq\n")
    assert "-> raise OverflowError" in by_value.stdout  # the source of code sent by value is found again
    assert "(Pdb) 15\n" in by_value.stdout


@pl.app
def total_under(values: list[int], limit: int) -> int:
    total = sum(values)
    if total > limit:
        raise OverflowError(f"{total} > {limit}")
    return total


@pl.app(cache=False)
def locked(lock: object) -> None:
    raise RuntimeError("no")


def test_a_call_over_the_cap_is_recorded_as_such_and_debug_says_how_to_raise_it(tmp_path: Path) -> None:
    path = tmp_path / "run.db"
    log = EventLog(path, debug_payload_bytes=64)
    with pl.Runtime([pl.ThreadExecutor(2)], monitor=log, progress=False) as rt:
        rt.run(pl.gather(total_under(list(range(100)), 0).attempt(), total_under([1], 5)))
    with pl.monitoring.open(path) as db:
        failed = db.failed_call()
    assert failed.call is None and failed.call_bytes is not None and failed.call_bytes > 64
    result = CliRunner().invoke(debug, [str(path)])
    assert result.exit_code == 1
    assert "over the cap of debug_payload_bytes=64" in result.output
    assert "--debug-payload-bytes N" in result.output
    done = CliRunner().invoke(debug, [str(path), "total_under", "--run", "1"])
    assert "cannot re-run it" in done.output


def test_debug_says_when_there_is_nothing_to_debug(tmp_path: Path) -> None:
    path = tmp_path / "run.db"
    with pl.Runtime([pl.ThreadExecutor(2)], monitor=path, progress=False) as rt:
        rt.run(total_under([9], 5).attempt())
    with pl.Runtime([pl.ThreadExecutor(2)], monitor=path, progress=False) as rt:
        rt.run(total_under([1], 5))
    result = CliRunner().invoke(debug, [str(path), "1"])
    assert "run 2: task 1 did not fail (it ended done)" in result.output
    latest = CliRunner().invoke(debug, [str(path)]).output
    assert "run 2: no task failed; it did in run 1 (choose one with --run)" in latest
    assert "re-running total_under(values=[9], limit=5)" in CliRunner().invoke(debug, [str(path), "--run", "1"]).output


def test_an_unpicklable_call_is_recorded_and_its_exception_still_pickles(tmp_path: Path) -> None:
    path = tmp_path / "run.db"
    with pl.Runtime([pl.ThreadExecutor(1)], monitor=path, progress=False) as rt:
        future = rt.submit(locked(threading.Lock()))
        error = future.exception()
    assert isinstance(error, RuntimeError)
    assert str(pickle.loads(pickle.dumps(error))) == "no"  # the kept call does not travel with it
    with pl.monitoring.open(path) as db:
        failed = db.failed_call()
    assert failed.call is None and failed.problem is not None and "'lock' (lock)" in failed.problem


def test_a_db_from_before_debug_says_its_calls_were_not_kept(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = sqlite3.connect(path)
    old.executescript(
        """CREATE TABLE runs (run INTEGER PRIMARY KEY, started REAL NOT NULL, ended REAL, pid INTEGER, argv TEXT);
        CREATE TABLE attempts (run INTEGER NOT NULL, task INTEGER NOT NULL, attempt INTEGER NOT NULL,
            name TEXT NOT NULL, key BLOB, state TEXT NOT NULL, executor TEXT, worker TEXT,
            pending REAL, dispatched REAL, running REAL, ended REAL, error TEXT, cpu REAL, peak_rss INTEGER);
        INSERT INTO runs VALUES (1, 1.0, 2.0, 1, 'old');
        INSERT INTO attempts VALUES (1, 1, 1, 'f', x'00', 'failed', 'x', 'x/0', 1.0, 1.0, 1.0, 2.0, 'E: e', 0, 0);"""
    )
    old.close()
    result = CliRunner().invoke(debug, [str(path)])
    assert "recorded by a plait from before plait debug" in result.output


def test_future_debug_reruns_the_root_failure_in_this_process() -> None:
    with pl.Runtime([pl.ThreadExecutor(1)], progress=False) as rt:
        downstream = rt.submit(total_under([4, 5, 6], limit=10).map(lambda t: t + 1))
        assert isinstance(downstream.exception(), pl.DependencyError)
        again = downstream.debug(post_mortem=False)
        assert isinstance(again, Failure) and str(again.failure()) == "15 > 10"
        in_map = rt.submit(total_under([1], limit=10).map(lambda t: t / 0))
        in_map.exception()
        with pytest.raises(ValueError, match="did not come from a task's call"):
            in_map.debug()
        fine = rt.submit(total_under([1], limit=10))
        fine.result()
        with pytest.raises(ValueError, match="did not fail"):
            fine.debug()
