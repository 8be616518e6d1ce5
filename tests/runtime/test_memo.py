"""The SQLite memo: results served across runs, written as tasks end, resumable after SIGKILL."""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

import plait as pl
from plait.runtime._memo import CorruptEntryWarning, MemoWarning, SQLiteMemo
from plait.runtime._memo_file import cache_info, clear_cache


def _lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def _marking(marker: Path) -> pl.App[[int], int]:
    @pl.app
    def mark(i: int) -> int:
        with open(marker, "a") as f:
            f.write(f"{i}\n")
        return i * 10

    return mark


def test_a_second_runtime_serves_results_from_the_file(tmp_path: Path) -> None:
    marker, db = tmp_path / "marker", tmp_path / "memo.db"
    mark = _marking(marker)
    expr = pl.gather(mark(i) for i in range(20))
    with pl.Runtime([pl.ThreadExecutor(2)], cache=db) as rt:
        assert rt.run(expr, timeout=30) == [i * 10 for i in range(20)]
    assert len(_lines(marker)) == 20
    with pl.Runtime([pl.ThreadExecutor(2)], cache=str(db)) as rt:
        assert rt.run(expr, timeout=30) == [i * 10 for i in range(20)]
        assert rt.run(mark(20), timeout=30) == 200
    assert sorted(map(int, _lines(marker))) == [*range(20), 20]


@pl.app
def summed(batch: list[int], weights: dict[str, tuple[list[int], ...]]) -> int:
    return sum(batch) + sum(map(sum, weights["w"]))


def test_a_call_keeps_the_arguments_it_was_keyed_on_though_the_caller_changes_them(tmp_path: Path) -> None:
    batch, inner = [1, 2], [10]
    weights = {"w": (inner,)}
    first = summed(batch, weights)
    batch.clear()  # the newcomer's loop: fill a list, call, clear it and fill it again
    batch.append(100)
    inner.append(1000)
    second = summed(batch, weights)
    kept = [pl.pure([batch]), pl.gather([batch, first])]
    batch.append(7)
    with pl.Runtime([pl.ThreadExecutor(2)], cache=tmp_path / "memo.db", progress=False) as rt:
        assert rt.run(pl.gather(first, second), timeout=30) == [13, 1110]
        assert rt.run(pl.gather(kept), timeout=30) == [[[100]], [[100], 13]]
    with pl.Runtime([pl.ThreadExecutor(2)], cache=tmp_path / "memo.db", progress=False) as rt:
        assert rt.run(summed([1, 2], {"w": ([10],)}), timeout=30) == 13  # what the memo keeps under that key


def test_each_result_is_committed_when_its_task_ends(tmp_path: Path) -> None:
    db = tmp_path / "memo.db"
    mark = _marking(tmp_path / "marker")
    with pl.Runtime([pl.ThreadExecutor(1)], cache=db) as rt:
        rt.run(mark(1), timeout=30)
        # Another connection, while the runtime is still open, sees the row (committed
        # at the end of the loop turn in which the task ended).
        with sqlite3.connect(db) as other:
            deadline = time.monotonic() + 10
            while not (rows := other.execute("SELECT name FROM plait_results").fetchall()):
                assert time.monotonic() < deadline, "the result was not committed while the runtime ran"
                time.sleep(0.01)
            assert rows == [(mark.name,)]
            assert other.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_cache_false_apps_are_not_stored_and_always_run(tmp_path: Path) -> None:
    marker, db = tmp_path / "marker", tmp_path / "memo.db"

    @pl.app(cache=False)
    def fresh(i: int) -> int:
        with open(marker, "a") as f:
            f.write(f"{i}\n")
        return i

    for _ in range(2):
        with pl.Runtime([pl.ThreadExecutor(1)], cache=db) as rt:
            rt.run(fresh(1), timeout=30)
    assert _lines(marker) == ["1", "1"]
    assert cache_info(db).entries == 0


def test_failures_are_not_memoized(tmp_path: Path) -> None:
    marker, db = tmp_path / "marker", tmp_path / "memo.db"

    @pl.app
    def fails(i: int) -> int:
        with open(marker, "a") as f:
            f.write(f"{i}\n")
        raise OSError("disk")

    for _ in range(2):
        with pl.Runtime([pl.ThreadExecutor(1)], cache=db) as rt, pytest.raises(OSError, match="disk"):
            rt.run(fails(3), timeout=30)
    assert _lines(marker) == ["3", "3"]


def _only_row(db: Path) -> bytes:
    with sqlite3.connect(db) as conn:
        ((key,),) = conn.execute("SELECT key FROM plait_results").fetchall()
    return bytes(key)


def test_a_damaged_entry_is_recomputed_with_a_warning(tmp_path: Path) -> None:
    marker, db = tmp_path / "marker", tmp_path / "memo.db"
    mark = _marking(marker)
    with pl.Runtime([pl.ThreadExecutor(1)], cache=db) as rt:
        rt.run(mark(7), timeout=30)
    key = _only_row(db)
    with sqlite3.connect(db) as conn:  # flip the stored bytes, leave the digest
        conn.execute("UPDATE plait_results SET value = ? WHERE key = ?", (b"\x80garbage", key))
    with pl.Runtime([pl.ThreadExecutor(1)], cache=db) as rt, pytest.warns(CorruptEntryWarning, match="digest"):
        assert rt.run(mark(7), timeout=30) == 70
    assert _lines(marker) == ["7", "7"]
    with pl.Runtime([pl.ThreadExecutor(1)], cache=db) as rt:  # the recomputed row replaced it
        assert rt.run(mark(7), timeout=30) == 70
    assert _lines(marker) == ["7", "7"]


def test_an_entry_that_does_not_unpickle_is_recomputed(tmp_path: Path) -> None:
    db = tmp_path / "memo.db"
    memo = SQLiteMemo(db)
    # A pickle naming a module that does not exist: the digest matches, loading fails.
    memo.put(b"k" * 16, "gone", None)
    bad = b"\x80\x04\x95\x1a\x00\x00\x00\x00\x00\x00\x00\x8c\x0cno_such_mod\x94\x8c\x01X\x94\x93\x94."
    from plait.runtime._memo import _digest

    memo._db.execute("UPDATE plait_results SET value = ?, digest = ?", (bad, _digest(bad)))
    with pytest.warns(CorruptEntryWarning, match="gone.*does not unpickle"):
        assert memo.get(b"k" * 16) is pl.runtime.MISSING
    memo.close()


def test_a_file_that_is_not_a_database_is_refused_by_name(tmp_path: Path) -> None:
    bad = tmp_path / "notes.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(ValueError, match=r"notes\.db is not a plait cache: it is a text file"):
        pl.Runtime([pl.ThreadExecutor(1)], cache=bad)
    with pytest.raises(ValueError, match=r"notes\.db is not a plait cache: it is a text file; nothing was changed"):
        clear_cache(bad)
    assert bad.exists()
    with pytest.raises(ValueError, match=r"is a directory; give the path of a file"):
        pl.Runtime([pl.ThreadExecutor(1)], cache=tmp_path)


def test_unpicklable_results_are_returned_but_not_memoized(tmp_path: Path) -> None:
    db = tmp_path / "memo.db"

    @pl.app
    def lock() -> object:
        import threading

        return threading.Lock()

    with (
        pl.Runtime([pl.ThreadExecutor(1)], cache=db) as rt,
        pytest.warns(CorruptEntryWarning, match="cannot be pickled"),
    ):
        assert rt.run(lock(), timeout=30) is not None
    assert cache_info(db).entries == 0


def test_cache_info_and_clear_by_app(tmp_path: Path) -> None:
    db = tmp_path / "memo.db"
    memo = SQLiteMemo(db)
    for i in range(3):
        memo.put(bytes([i]) * 16, "a", "x" * 10)
    memo.put(b"z" * 16, "b", 1)
    memo.close()
    info = cache_info(db)
    assert info.entries == 4
    assert [(name, n) for name, n, _ in info.apps] == [("a", 3), ("b", 1)]
    assert info.bytes == sum(size for _, _, size in info.apps) > 30
    assert clear_cache(db, "a") == 3
    assert cache_info(db).entries == 1
    assert clear_cache(db) == 1
    assert not db.exists()
    with pytest.raises(FileNotFoundError, match=r"memo\.db"):
        cache_info(db)


DRIVER = textwrap.dedent(
    """
    import sys, time
    import plait as pl

    marker, db = sys.argv[1], sys.argv[2]

    @pl.app
    def step(i: int, marker: str) -> int:
        with open(marker, "a") as f:
            f.write(f"{i}\\n")
        time.sleep(0.02)
        return i

    with pl.Runtime([pl.ProcessExecutor(2)], cache=db) as rt:
        result = rt.run(pl.gather(step(i, marker) for i in range(200)), timeout=120)
    assert result == list(range(200))
    print("done")
    """
)


@pytest.mark.slow
def test_a_run_killed_with_sigkill_resumes_recomputing_only_what_was_in_flight(tmp_path: Path) -> None:
    script, marker, db = tmp_path / "driver.py", tmp_path / "marker", tmp_path / "memo.db"
    script.write_text(DRIVER)
    argv = [sys.executable, str(script), str(marker), str(db)]
    driver = subprocess.Popen(argv)
    try:
        deadline = time.monotonic() + 60
        while len(_lines(marker)) < 60:
            assert driver.poll() is None, "the driver ended before it could be killed"
            assert time.monotonic() < deadline, "the driver made no progress"
            time.sleep(0.01)
        workers = psutil.Process(driver.pid).children(recursive=True)
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait(10)
        # Workers die with their driver; wait so none appends after we count.
        _, alive = psutil.wait_procs(workers, timeout=10)
        assert not alive, f"workers outlived their SIGKILLed driver: {alive}"
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait(10)
    first = _lines(marker)
    stored = cache_info(db).entries
    assert 0 < stored < 200
    assert len(first) < 200

    subprocess.run([*argv], check=True, timeout=120, capture_output=True)
    second = _lines(marker)[len(first) :]
    # Every stored result is served: the second run computes exactly the rest.
    assert len(second) == 200 - stored
    assert sorted(set(map(int, first)) | set(map(int, second))) == list(range(200))
    # What ran twice was in flight at the kill: at most 2 workers x (1 running + 2 prefetched).
    recomputed = set(first) & set(second)
    assert len(first) - stored == len(recomputed) <= 6
    assert cache_info(db).entries == 200


def test_resume_keys_do_not_depend_on_the_process(tmp_path: Path) -> None:
    # The SIGKILL test relies on this: a fresh interpreter computes the same keys.
    code = "import plait as pl\n@pl.app\ndef f(x, y=2): return x\nprint(f([1, {'a': 2}], y=(3,)).key)"
    keys = {
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
        for env in ({**os.environ, "PYTHONHASHSEED": seed} for seed in ("1", "2"))
    }
    assert len(keys) == 1


def test_memo_pickles_with_cloudpickle(tmp_path: Path) -> None:
    memo = SQLiteMemo(tmp_path / "memo.db")
    memo.put(b"f" * 16, "closure", lambda x: x + 1)
    assert memo.get(b"f" * 16)(1) == 2
    memo.close()


def test_the_cache_command_shows_and_clears_a_memo(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from plait.cli import main

    db = tmp_path / "memo.db"
    memo = SQLiteMemo(db)
    memo.put(b"a" * 16, "pkg.simulate", list(range(1000)))
    memo.put(b"b" * 16, "pkg.render", "x")
    memo.close()
    runner = CliRunner()
    shown = runner.invoke(main, ["cache", "info", str(db)])
    assert shown.exit_code == 0, shown.output
    assert "2 entries" in shown.output and "pkg.simulate" in shown.output and "pkg.render" in shown.output
    cleared = runner.invoke(main, ["cache", "clear", str(db), "--app", "pkg.render"])
    assert cleared.exit_code == 0 and "removed 1 entries of pkg.render" in cleared.output
    assert "1 entries" in runner.invoke(main, ["cache", "info", str(db)]).output
    assert "removed 1 entries" in runner.invoke(main, ["cache", "clear", str(db)]).output
    missing = runner.invoke(main, ["cache", "info", str(db)])
    assert missing.exit_code == 1 and f"no plait cache at {db}" in missing.output


def test_clearing_an_app_the_memo_has_no_entries_of_says_so_and_which_it_has(tmp_path: Path) -> None:
    """A misspelt --app removed nothing and said "removed 0 entries": the memo looked cleared.
    Clearing an app with no entries is still no error: a script that clears before it runs
    clears an app twice."""
    from click.testing import CliRunner

    from plait.cli import main

    db = tmp_path / "memo.db"
    memo = SQLiteMemo(db)
    memo.put(b"a" * 16, "pkg.render", "x")
    memo.close()
    said = CliRunner().invoke(main, ["cache", "clear", str(db), "--app", "pkg.rendr"])
    assert said.exit_code == 0, said.output
    assert (
        f"{db} has no entries of 'pkg.rendr', so none were removed; did you mean 'pkg.render'? (its apps: pkg.render)"
    ) in said.output, said.output
    assert cache_info(db).entries == 1


def _monitoring_db(path: Path) -> None:
    with pl.Runtime([pl.ThreadExecutor(1)], monitor=path) as rt:
        rt.run(pl.pure(1).map(str), timeout=30)


def _other_sqlite_db(path: Path) -> None:
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE birds (name TEXT)")
    db.commit()
    db.close()


@pytest.mark.parametrize(
    ("make", "what"),
    [
        (_monitoring_db, "a plait monitoring database"),
        (_other_sqlite_db, r"an SQLite database with other tables \(birds\)"),
        (lambda path: path.write_text("x,y\n1,2\n"), "a text file"),
        (lambda path: path.write_bytes(bytes(range(256))), "not an SQLite database"),
    ],
    ids=["monitoring", "sqlite", "text", "binary"],
)
def test_the_cache_command_refuses_a_file_that_is_not_a_memo_and_changes_nothing(
    tmp_path: Path, make: Callable[[Path], None], what: str
) -> None:
    from click.testing import CliRunner

    from plait.cli import main

    path = tmp_path / "run.db"
    make(path)

    def state() -> dict[str, tuple[bytes, int]]:
        return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in tmp_path.iterdir()}

    before = state()
    for args in (["info"], ["clear"], ["clear", "--app", "f"]):
        result = CliRunner().invoke(main, ["cache", *args, str(path)])
        assert result.exit_code == 1, result.output
        refusal = rf"run\.db is not a plait cache: it is {what}.*nothing was changed"
        assert re.search(refusal, result.output), result.output
        assert state() == before
    with pytest.raises(ValueError, match=f"run\\.db is not a plait cache: it is {what}"):
        pl.Runtime([pl.ThreadExecutor(1)], cache=path)
    assert state() == before


def test_the_cache_command_says_its_default_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from plait.cli import main

    monkeypatch.chdir(tmp_path)
    assert "default: plait-cache.db" in CliRunner().invoke(main, ["cache", "clear", "--help"]).output
    missing = CliRunner().invoke(main, ["cache", "clear", "--app", "f"])
    assert missing.exit_code == 1
    assert "no plait cache at plait-cache.db (the default PATH): give the file your Runtime(cache" in missing.output


def test_one_loop_turn_is_one_transaction(tmp_path: Path) -> None:
    import asyncio

    db = tmp_path / "memo.db"
    memo = SQLiteMemo(db)
    other = sqlite3.connect(db)

    def committed() -> int:
        return int(other.execute("SELECT COUNT(*) FROM plait_results").fetchone()[0])

    async def turn() -> None:
        assert memo.get(b"a" * 16) is pl.runtime.MISSING
        assert memo._db.in_transaction  # the lookup opened this turn's transaction
        memo.put(b"a" * 16, "a", 1)
        memo.put(b"b" * 16, "b", 2)
        assert memo.get(b"a" * 16) == 1  # its own writes are visible at once
        assert committed() == 0  # others see them when the turn ends
        await asyncio.sleep(0)
        assert not memo._db.in_transaction
        assert committed() == 2

    asyncio.run(turn())
    memo.put(b"c" * 16, "c", 3)  # off the loop, each write commits on its own
    assert committed() == 3
    memo.close()
    other.close()


def test_a_write_the_database_refuses_is_a_warning_not_a_failure(tmp_path: Path) -> None:
    memo = SQLiteMemo(tmp_path / "memo.db")
    memo._db.execute("PRAGMA query_only = ON")  # as a full disk or a read-only mount would
    refused = r"memo\.db is read-only here .*results of 1 tasks \(simulate\) are not memoized"
    with pytest.warns(MemoWarning, match=refused):
        memo.put(b"k" * 16, "simulate", 1)
    assert memo.get(b"k" * 16) is pl.runtime.MISSING
    memo.close()


@pl.app
def tenfold(i: int) -> int:
    return i * 10


def _held_write_lock(db: Path) -> sqlite3.Connection:
    """Another driver in the middle of a write to ``db``."""
    other = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    return other


def test_opening_a_memo_another_run_is_writing_takes_no_lock(tmp_path: Path) -> None:
    db = tmp_path / "memo.db"
    SQLiteMemo(db).close()
    other = _held_write_lock(db)
    begun = time.monotonic()
    with pl.Runtime([pl.ThreadExecutor(1)], cache=db) as rt:
        assert rt.run(pl.pure(1).map(lambda x: x + 1)) == 2
    assert time.monotonic() - begun < 2
    other.rollback()
    other.close()


def test_a_memo_locked_past_the_busy_timeout_is_said_locked_once_and_never_to_be_cleared(tmp_path: Path) -> None:
    db = tmp_path / "memo.db"
    SQLiteMemo(db).close()
    other = _held_write_lock(db)
    memo = SQLiteMemo(db, busy_timeout=0.2)
    with pytest.warns(MemoWarning, match=r"memo\.db is locked by another process \(waited 0\.2 s") as caught:
        memo.put(b"k" * 16, "simulate", 1)
        memo.put(b"j" * 16, "simulate", 2)
    assert len(caught) == 1, "one warning a run, not one a write"
    assert not any(word in str(caught[0].message) for word in ("clear", "remove", "not a usable"))
    other.rollback()
    other.close()
    memo.put(b"k" * 16, "simulate", 1)  # free again: written
    assert memo.get(b"k" * 16) == 1
    memo.close()


def test_no_write_transaction_is_open_while_a_map_function_runs(tmp_path: Path) -> None:
    db = tmp_path / "memo.db"

    def write_elsewhere(value: int) -> int:
        # Runs on the loop in the turn in which tenfold(3)'s result was memoized.
        other = sqlite3.connect(db, timeout=0, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
        finally:
            other.close()
        return value

    with pl.Runtime([pl.ThreadExecutor(1)], cache=db) as rt:
        assert rt.run(tenfold(3).map(write_elsewhere), timeout=30) == 30
    assert cache_info(db).entries == 1


RO_PROBE = """
import sys
from plait.runtime._memo import SQLiteMemo
for name in ("memo.db", "new.db"):
    try:
        SQLiteMemo(sys.argv[1] + "/" + name).close()
        print(name, "opened")
    except ValueError as error:
        print(error)
"""


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare(1) to mount a read-only directory")
def test_a_memo_on_a_read_only_filesystem_is_said_read_only_naming_the_path(tmp_path: Path) -> None:
    directory = tmp_path / "ro"
    directory.mkdir()
    memo = SQLiteMemo(directory / "memo.db")
    memo.put(b"k" * 16, "simulate", 1)
    memo.close()
    # A read-only bind mount in a user and mount namespace: root ignores permission bits.
    script = (
        f"mount --bind {directory} {directory} && mount -o remount,bind,ro {directory} && "
        f"{sys.executable} -c '{RO_PROBE}' {directory}"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(pl.__file__).parent.parent)}
    command = ["unshare", "-rm", "sh", "-c", script]
    out = subprocess.run(command, check=True, capture_output=True, text=True, env=env, timeout=60)
    lines = out.stdout.splitlines()
    assert len(lines) == 2, out
    assert f"{directory}/memo.db cannot be written: {directory}/memo.db is read-only" in lines[0]
    assert f"{directory}/new.db cannot be written: {directory} is read-only" in lines[1]
    assert not any(word in out.stdout for word in ("clear", "remove", "not a usable"))


def test_a_damaged_memo_file_is_said_once_with_how_to_repair_it_and_recomputed(tmp_path: Path) -> None:
    db = tmp_path / "memo.db"
    work = pl.gather(*[tenfold(i) for i in range(300)])
    with pl.Runtime([pl.ThreadExecutor(1)], cache=db) as rt:
        assert rt.run(work, timeout=60) == [i * 10 for i in range(300)]
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    with open(db, "r+b") as f:  # random bytes in the middle of the file
        f.seek(db.stat().st_size // 2)
        f.write(random.Random(16).randbytes(4096))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pl.Runtime([pl.ThreadExecutor(1)], cache=db) as rt:
            assert rt.run(work, timeout=60) == [i * 10 for i in range(300)]
    told = [str(w.message) for w in caught if issubclass(w.category, CorruptEntryWarning)]
    assert 1 <= len(told) <= 4, told
    assert any(f"sqlite3 {db} .recover" in m and f"plait cache clear {db}" in m for m in told)


# Written by SQLiteMemo before the memo had user_version: a plait_meta table held "schema 1".
BEFORE_VERSIONS = Path(__file__).parent / "data" / "memo-before-versions.db"


def test_a_memo_written_before_layout_versions_opens_with_its_results(tmp_path: Path) -> None:
    db = tmp_path / "memo.db"
    shutil.copyfile(BEFORE_VERSIONS, db)
    memo = SQLiteMemo(db)
    assert (memo.get(b"k" * 16), memo.get(b"j" * 16)) == ([1, 4, 9], "hello")
    memo.put(b"n" * 16, "new", 3)
    memo.close()
    plain = sqlite3.connect(db)
    assert plain.execute("PRAGMA user_version").fetchone() == (1,)
    tables = {name for (name,) in plain.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    plain.close()
    assert tables == {"plait_results"}, "the schema row is now user_version"
    assert cache_info(db).entries == 3


def test_a_memo_from_a_newer_plait_is_refused_saying_so_and_left_as_it_was(tmp_path: Path) -> None:
    db = tmp_path / "memo.db"
    SQLiteMemo(db).close()
    newer = sqlite3.connect(db)
    newer.execute("PRAGMA user_version = 7")
    newer.close()
    before = db.read_bytes()
    newer_plait = (
        r"memo\.db is not a usable plait cache "
        r"\(a newer plait wrote it \(layout version 7; this plait knows up to 1\): upgrade plait\)"
    )
    with pytest.raises(ValueError, match=newer_plait):
        pl.Runtime([pl.ThreadExecutor(1)], cache=db)
    with pytest.raises(ValueError, match=newer_plait):
        clear_cache(db)
    assert db.read_bytes() == before
