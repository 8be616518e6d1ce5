"""The run's writer process: it ends with its driver, keeps what it wrote, and says when it fails."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import psutil
import pytest

import plait as pl
from plait.monitoring._writer import RunWriter, open_run
from plait.monitoring._writer_process import WriterProcess
from plait.runtime._monitor import EventLog
from tests.processes import gone
from tests.waiting import wait_for


@pl.app
def square(x: int) -> int:
    return x * x


def count(path: Path, sql: str) -> int:
    db = sqlite3.connect(path)
    try:
        (n,) = db.execute(sql).fetchone()
        return int(n)
    finally:
        db.close()


def writer_of(rt: pl.Runtime) -> psutil.Process:
    """The writer process of ``rt``'s monitoring db, started with the first batch of rows."""
    log = rt._interpreter.monitor
    assert isinstance(log, EventLog)
    assert rt.run(square(3)) == 9
    wait_for(lambda: log._writer is not None, "the writer process", 10)
    assert log._writer is not None
    return psutil.Process(log._writer.process.pid)


DRIVER = textwrap.dedent(
    """
    import sys, time
    import plait as pl

    @pl.app
    def square(x: int) -> int:
        return x * x

    rt = pl.Runtime([pl.ThreadExecutor(2)], monitor=sys.argv[1], progress=False)
    assert rt.run(pl.gather(*(square(i) for i in range(20)))) == [i * i for i in range(20)]
    log = rt._interpreter.monitor
    deadline = time.monotonic() + 30
    while log._writer is None and time.monotonic() < deadline:  # started with the first batch
        time.sleep(0.01)
    print(log._writer.process.pid, flush=True)
    time.sleep(60)  # killed here, its runtime open
    """
)


def test_a_sigkilled_driver_leaves_no_writer_and_the_rows_it_had_written(tmp_path: Path) -> None:
    script, path = tmp_path / "driver.py", tmp_path / "run.db"
    script.write_text(DRIVER)
    driver = subprocess.Popen([sys.executable, str(script), str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert driver.stdout is not None
        writer = int(driver.stdout.readline())
        # A reader sees the run's rows while its driver is alive and its db open for writing.
        wait_for(lambda: count(path, "SELECT count(*) FROM attempts") == 20, "the 20 attempts, read live", 30)
        # Its rows come over an anonymous pipe: no socket anyone else could reach.
        fds = {os.readlink(f"/proc/{writer}/fd/{fd}") for fd in os.listdir(f"/proc/{writer}/fd")}
        assert os.readlink(f"/proc/{writer}/fd/0").startswith("pipe:")
        assert not [fd for fd in fds if fd.startswith("socket:")]
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait(10)
        assert gone(writer), "the writer process outlived its SIGKILLed driver"
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait(10)
    assert count(path, "SELECT count(*) FROM attempts WHERE state = 'done'") == 20
    assert count(path, "SELECT count(*) FROM runs WHERE ended IS NULL") == 1  # as a killed run is left
    # Indexed as they were written, not at a close that never came.
    assert count(path, "SELECT count(*) FROM sqlite_master WHERE name IN ('attempts_state', 'attempts_task')") == 2


def test_a_writer_killed_during_the_run_is_reported_naming_the_db(tmp_path: Path) -> None:
    warning = r"monitor .*run\.db: cannot write \(the writer process ended \(killed by SIGKILL\)\)"
    with (
        pytest.warns(UserWarning, match=warning),
        pl.Runtime([pl.ThreadExecutor(2)], monitor=tmp_path / "run.db", progress=False) as rt,
    ):
        writer = writer_of(rt)
        writer.kill()
        assert gone(writer.pid)  # not reaped here: its runtime learns how it ended
        assert rt.run(pl.gather(*(square(i) for i in range(5)))) == [0, 1, 4, 9, 16]


def test_the_writer_is_out_of_reach_of_a_ctrl_c_in_the_drivers_terminal(tmp_path: Path) -> None:
    # A Ctrl-C goes to the terminal's foreground process group, and the driver decides what
    # it means (its runtime closes, and its writer writes the rest): the writer is not in it.
    with pl.Runtime([pl.ThreadExecutor(2)], monitor=tmp_path / "run.db", progress=False) as rt:
        writer = writer_of(rt)
        assert os.getpgid(writer.pid) != os.getpgid(0)
        assert os.getsid(writer.pid) != os.getsid(0)


def test_a_clean_close_writes_every_attempt_and_indexes_them(tmp_path: Path) -> None:
    path = tmp_path / "run.db"
    with pl.Runtime([pl.ThreadExecutor(2)], monitor=path, progress=False) as rt:
        writer = writer_of(rt)
        assert rt.run(pl.gather(*(square(i) for i in range(3000)))) == [i * i for i in range(3000)]
    assert not writer.is_running()  # close waited for it
    assert count(path, "SELECT count(DISTINCT task) FROM attempts WHERE state = 'done'") == 3001
    assert count(path, "SELECT count(*) FROM sqlite_master WHERE name = 'attempts_state'") == 1
    assert count(path, "SELECT count(*) FROM runs WHERE ended IS NOT NULL") == 1


def test_a_run_that_ends_before_its_first_hand_over_is_written_without_a_writer_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A process would take longer to start than such a run takes to write.
    monkeypatch.setattr("plait.runtime._monitor._FLUSH_EVERY", 60.0)
    path = tmp_path / "run.db"
    log = EventLog(path)
    for task in range(1, 101):
        log.task_event("pending", task, "square", bytes(16))
        log.task_event("done", task, "square", bytes(16), worker="w")
    log.task_event("pending", 101, "square", bytes(16))  # still in flight at the end
    log.close()
    assert log._writer is None
    assert count(path, "SELECT count(*) FROM attempts WHERE state = 'done'") == 100
    assert count(path, "SELECT count(*) FROM attempts WHERE state = 'pending'") == 1
    assert count(path, "SELECT count(*) FROM runs WHERE ended IS NOT NULL") == 1


def test_the_log_a_close_copies_into_the_file_stays_small_as_a_run_writes(tmp_path: Path) -> None:
    # SQLite copies its write-ahead log into the file every so many pages, and once more at
    # close, which the runtime waits for: the less is left, the sooner a monitored run ends.
    path = tmp_path / "run.db"
    writer = RunWriter(str(path), open_run(path, [], []))
    try:
        for first in range(0, 20_000, 1_000):  # some 2 MB of rows and index entries, in 20 commits
            rows = [
                [t, 1, "square", os.urandom(16), "done", "processes", "processes/0", *[1.0] * 4, None, 0.1, 1]
                for t in range(first, first + 1_000)
            ]
            writer.write((rows, [], [], [], []))
        wal = path.with_name("run.db-wal").stat().st_size
        assert wal < 1 << 20, f"the log is {wal} bytes before close"
    finally:
        writer.close()
    assert count(path, "SELECT count(*) FROM attempts") == 20_000


def test_the_writer_imports_only_what_it_writes_with(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Its start is CPU the run shares its cores with: plait's __init__ and typing were half
    # of it (10-20 ms), and the writer needs neither.
    path = tmp_path / "run.db"
    monkeypatch.setenv("PYTHONPROFILEIMPORTTIME", "1")  # its stderr: a line per module imported
    writer = WriterProcess(str(path), open_run(path, [], []))
    writer.close()
    assert writer.process.stderr is not None
    imported = {line.rsplit("|", 1)[-1].strip() for line in writer.process.stderr.read().decode().splitlines()}
    writer.process.stderr.close()
    assert "plait.monitoring._writer" in imported, imported  # the lines are there to read
    unneeded = {"typing", "plait._lazy", "json", "enum"} & imported
    assert not unneeded, f"the writer imported {sorted(unneeded)}"
