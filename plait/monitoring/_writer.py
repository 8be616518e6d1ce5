"""Writing one run into a monitoring db: the runtime's event log writes through this.

The runtime fills in one row per attempt of a task (the columns of ``ATTEMPT_COLUMNS``,
in order) as the attempt goes through its states, and hands rows over in batches once
they have ended, with the looks at nodes and tasks and the calls of tasks that failed
for good. One thread writes: each batch is one transaction, and many rows go in one
statement (the sqlite3 module lets go of the GIL around each statement step, and one
hand-over per row would stall the loop thread that emits the events).
"""

from __future__ import annotations

import itertools
import json
import os
import sqlite3
import time
from collections.abc import Sequence
from typing import Any

import attrs

from plait.backends import NodeSample, TaskSample
from plait.monitoring._schema import CORE_TABLES, INDEXES, prepare

__all__ = ["ATTEMPT_COLUMNS", "FailedCallRow", "FunctionRow", "RunWriter"]

ATTEMPT_COLUMNS = (
    "run", "task", "attempt", "name", "key", "state", "executor", "worker",
    "pending", "dispatched", "running", "ended", "error", "cpu", "peak_rss",
)  # fmt: skip
# (fn_key, pickled function or None, why it is not kept)
FunctionRow = tuple[bytes, bytes | None, str | None]
# (task, fn_key, pickled call or None, its size, why it is not kept)
FailedCallRow = tuple[int, bytes, bytes | None, int | None, str | None]

_CHUNK = 200  # rows per INSERT: 3 000 parameters, well under SQLite's limit of 32 766
_INSERT_NODE_SAMPLE = "INSERT INTO samples VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_INSERT_TASK_SAMPLE = "INSERT INTO task_samples VALUES (?, ?, ?, ?, ?, ?)"


class RunWriter:
    """A new run in the monitoring db at ``path`` (created, or brought up to date): its
    number is ``run``. sqlite3.Error when the file cannot be used."""

    def __init__(self, path: str | os.PathLike[str], argv: Sequence[str], sys_path: Sequence[str]) -> None:
        db = sqlite3.connect(path, check_same_thread=False)  # made here, written from the writer thread
        try:
            _refuse_foreign(db)
            db.execute("PRAGMA journal_mode=WAL")  # readers may watch while the run writes
            db.execute("PRAGMA synchronous=NORMAL")  # a lost last batch after a power cut is fine for a log
            with db:
                prepare(db)
                cursor = db.execute(
                    "INSERT INTO runs (started, pid, argv, path) VALUES (?, ?, ?, ?)",
                    (time.time(), os.getpid(), " ".join(argv), json.dumps(list(sys_path))),
                )
        except sqlite3.Error:
            db.close()
            raise
        assert cursor.lastrowid is not None
        self.run: int = cursor.lastrowid
        self._db = db

    def write(self, attempts: Sequence[Sequence[Any]], samples: Sequence[NodeSample | TaskSample]) -> None:
        """Ended attempts (rows of ``ATTEMPT_COLUMNS``) and looks at nodes and tasks, in one transaction."""
        with self._db:
            for start in range(0, len(attempts), _CHUNK):
                chunk = attempts[start : start + _CHUNK]
                self._db.execute(_insert(len(chunk)), list(itertools.chain.from_iterable(chunk)))
            # The tables' columns after ``run`` are the records' fields, in order.
            for kind, insert in ((NodeSample, _INSERT_NODE_SAMPLE), (TaskSample, _INSERT_TASK_SAMPLE)):
                rows = [(self.run, *attrs.astuple(s)) for s in samples if isinstance(s, kind)]
                if rows:
                    self._db.executemany(insert, rows)

    def write_calls(self, functions: Sequence[FunctionRow], calls: Sequence[FailedCallRow]) -> None:
        """The calls of tasks that failed for good, with their functions (once per ``fn_key``)."""
        with self._db:
            self._db.executemany("INSERT OR IGNORE INTO functions VALUES (?, ?, ?)", functions)
            self._db.executemany(
                "INSERT OR REPLACE INTO calls VALUES (?, ?, ?, ?, ?, ?)", [(self.run, *call) for call in calls]
            )

    def close(self, *, finished: bool = True) -> None:
        """Index the tables and stamp the run's end (unless not ``finished``: writing failed), then close."""
        try:
            if finished:
                with self._db:
                    self._db.executescript(INDEXES)
                    self._db.execute("UPDATE runs SET ended = ? WHERE run = ?", (time.time(), self.run))
        finally:
            self._db.close()


def _refuse_foreign(db: sqlite3.Connection) -> None:
    """sqlite3.DatabaseError, before anything is written, if the db holds tables but not a run's:
    someone else's database, which the run's tables would be mixed into."""
    tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if tables and not tables >= CORE_TABLES:
        names = ", ".join(sorted(tables))
        raise sqlite3.DatabaseError(f"it is another database (its tables: {names:.200}), left as it was")


def _insert(rows: int) -> str:
    """One INSERT of ``rows`` attempts.

    >>> _insert(2).count("?")
    30
    """
    one = "(" + ", ".join("?" * len(ATTEMPT_COLUMNS)) + ")"
    return "INSERT INTO attempts VALUES " + ", ".join([one] * rows)
