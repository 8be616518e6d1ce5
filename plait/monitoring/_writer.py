"""Writing one run into a monitoring db: the SQL the run's writer process runs.

``open_run`` makes the run (in the driver, so the runtime knows its number and a file
that cannot be used is refused at once); ``RunWriter`` then writes its batches, in the
writer process (``_writer_process``). A batch is what the runtime hands over every
quarter second: the attempts that ended (rows of ``ATTEMPT_COLUMNS`` after ``run``),
looks at nodes and tasks (their records' fields, in order) and the calls of tasks that
failed for good. Each batch is one transaction, and many rows go in one statement.
"""

from __future__ import annotations

import itertools
import os
import sqlite3
import time

from plait.monitoring._schema import CORE_TABLES, INDEXES, prepare

# Not typing's: the writer process imports this module, and needs no typing (see _writer_process).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from typing import Any, TypeAlias

    # (fn_key, pickled function or None, why it is not kept)
    FunctionRow: TypeAlias = tuple[bytes, bytes | None, str | None]
    # (task, fn_key, pickled call or None, its size, why it is not kept)
    FailedCallRow: TypeAlias = tuple[int, bytes, bytes | None, int | None, str | None]
    # (attempts, node samples, task samples, functions, failed calls): rows without the run's
    # number, as lists and tuples of plain values (the writer process gets them marshalled)
    Batch: TypeAlias = tuple[list[Any], list[Any], list[Any], list[Any], list[Any]]

__all__ = ["ATTEMPT_COLUMNS", "RunWriter", "open_run", "write_run"]  # and, for mypy, Batch and its rows

ATTEMPT_COLUMNS = (
    "run", "task", "attempt", "name", "key", "state", "executor", "worker",
    "pending", "dispatched", "running", "ended", "error", "cpu", "peak_rss",
)  # fmt: skip

_CHUNK = 200  # rows per INSERT: 3 000 parameters, well under SQLite's limit of 32 766
_INSERT_NODE_SAMPLE = "INSERT INTO samples VALUES ({run}, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_INSERT_TASK_SAMPLE = "INSERT INTO task_samples VALUES ({run}, ?, ?, ?, ?, ?)"
_INSERT_FUNCTION = "INSERT OR IGNORE INTO functions VALUES (?, ?, ?)"
_INSERT_CALL = "INSERT OR REPLACE INTO calls VALUES ({run}, ?, ?, ?, ?, ?)"


def open_run(path: str | os.PathLike[str], argv: Sequence[str], sys_path: Sequence[str]) -> int:
    """A new run in the monitoring db at ``path`` (created, or brought up to date): its
    number. sqlite3.Error when the file cannot be used."""
    import json  # here: the driver's part, and the writer process's start need not import it

    db = sqlite3.connect(path)
    try:
        _refuse_foreign(db)
        db.execute("PRAGMA journal_mode=WAL")  # readers may watch while the run writes; it stays set in the file
        with db:
            prepare(db)
            cursor = db.execute(
                "INSERT INTO runs (started, pid, argv, path) VALUES (?, ?, ?, ?)",
                (time.time(), os.getpid(), " ".join(argv), json.dumps(list(sys_path))),
            )
    finally:
        db.close()
    assert cursor.lastrowid is not None
    return cursor.lastrowid


class RunWriter:
    """Writes batches of run ``run`` (made by ``open_run``) into the db at ``path``."""

    def __init__(self, path: str, run: int) -> None:
        self._db = sqlite3.connect(path)
        self._db.execute("PRAGMA synchronous=NORMAL")  # a lost last batch after a power cut is fine for a log
        # Copy the log into the file every 100 pages (400 KiB), not SQLite's 1 000: the copy
        # left for the close, which the runtime waits for, is then a tenth of what it was.
        self._db.execute("PRAGMA wal_autocheckpoint=100")
        with self._db:
            prepare(self._db)  # a no-op unless the file is new to this connection (":memory:")
            # Kept up to date row by row from the start, not built at close: the rows of a
            # run go in at the right end of each index, which costs less than sorting them
            # all at close, while the runtime waits; and a live reader or a killed run has them.
            self._db.executescript(INDEXES)
        self.run = run
        self._sql = {
            insert: insert.format(run=run)
            for insert in (_INSERT_NODE_SAMPLE, _INSERT_TASK_SAMPLE, _INSERT_FUNCTION, _INSERT_CALL)
        }

    def write(self, batch: Batch) -> None:
        """One batch, in one transaction."""
        attempts, node_samples, task_samples, functions, calls = batch
        with self._db:
            for start in range(0, len(attempts), _CHUNK):
                chunk = attempts[start : start + _CHUNK]
                self._db.execute(_insert(self.run, len(chunk)), list(itertools.chain.from_iterable(chunk)))
            for insert, rows in (
                (_INSERT_NODE_SAMPLE, node_samples),
                (_INSERT_TASK_SAMPLE, task_samples),
                (_INSERT_FUNCTION, functions),
                (_INSERT_CALL, calls),
            ):
                if rows:
                    self._db.executemany(self._sql[insert], rows)

    def close(self, *, finished: bool = True) -> None:
        """Stamp the run's end (unless not ``finished``: its driver is gone), then close."""
        try:
            if finished:
                with self._db:
                    self._db.execute("UPDATE runs SET ended = ? WHERE run = ?", (time.time(), self.run))
        finally:
            self._db.close()


def write_run(path: str, run: int, batches: Iterable[Batch]) -> None:
    """Write ``batches`` into run ``run``, then close it: indexed and its end stamped once
    they have all come. If they stop coming with an error (its driver is gone), what was
    written stays, and the error goes on."""
    writer = RunWriter(path, run)
    finished = False
    try:
        for batch in batches:
            writer.write(batch)
        finished = True
    finally:
        writer.close(finished=finished)


def _refuse_foreign(db: sqlite3.Connection) -> None:
    """sqlite3.DatabaseError, before anything is written, if the db holds tables but not a run's:
    someone else's database, which the run's tables would be mixed into."""
    tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if tables and not tables >= CORE_TABLES:
        names = ", ".join(sorted(tables))
        raise sqlite3.DatabaseError(f"it is another database (its tables: {names:.200}), left as it was")


def _insert(run: int, rows: int) -> str:
    """One INSERT of ``rows`` attempts of run ``run``.

    >>> _insert(7, 2).count("?"), _insert(7, 2).count("(7, ")
    (28, 2)
    """
    one = f"({run}, " + ", ".join("?" * (len(ATTEMPT_COLUMNS) - 1)) + ")"
    return "INSERT INTO attempts VALUES " + ", ".join([one] * rows)
