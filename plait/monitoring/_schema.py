"""The monitoring db's layout, and how a db written by an older plait is brought up to it.

The layout has a version, SQLite's ``PRAGMA user_version``: each step of ``_STEPS``
takes a db from one version to the next, and opening a db runs the steps it has not
had. A db with version 0 is new, or from a plait before versions (which may lack the
tables and columns added since its first release): the first step makes either the
first versioned layout. A later change of layout is a new step at the end; a db from a
newer plait than this one is refused, never misread.
"""

from __future__ import annotations

import sqlite3

TYPE_CHECKING = False  # not typing's: the writer process imports this module (see _writer_process)
if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["CORE_TABLES", "INDEXES", "SCHEMA", "VERSION", "migrate", "outdated", "prepare"]

# One row per attempt of a task, written when the attempt ends: its final state and the
# times it entered each state (wall-clock seconds), so a run of N tasks writes about N
# rows, not one per event. ``error`` is the formatted traceback of a failed or retried
# attempt; ``cpu`` (seconds) and ``peak_rss`` (bytes) what it used on its worker, when the
# executor measures that. Text states keep ad-hoc SQL readable:
#   SELECT task, name, worker, error FROM attempts WHERE state = 'failed'
# The ``events`` view gives the same data as one row per state change. ``samples`` has a
# row per look at a node (a zmq pool's host, or the driver's for local processes); the
# ``nodes`` view sums them up per node. ``task_samples`` has a row per look at a running
# task's worker process, every few seconds of a long task. ``calls`` keeps the pickled
# arguments of each task that failed for good (``plait debug`` re-runs it), up to a cap:
# ``call`` is NULL and ``problem`` says why when they were bigger or did not pickle;
# ``functions`` its app's pickled function, once per app identity (``fn_key``); ``runs.path``
# the driver's sys.path (JSON), which workers import from.
SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run INTEGER PRIMARY KEY, started REAL NOT NULL, ended REAL, pid INTEGER, argv TEXT, path TEXT
);
CREATE TABLE IF NOT EXISTS attempts (
    run INTEGER NOT NULL, task INTEGER NOT NULL, attempt INTEGER NOT NULL, name TEXT NOT NULL, key BLOB,
    state TEXT NOT NULL, executor TEXT, worker TEXT,
    pending REAL, dispatched REAL, running REAL, ended REAL, error TEXT, cpu REAL, peak_rss INTEGER
);
CREATE TABLE IF NOT EXISTS samples (
    run INTEGER NOT NULL, node TEXT NOT NULL, source TEXT NOT NULL, at REAL NOT NULL, cpu_percent REAL,
    mem_used INTEGER, mem_available INTEGER, mem_total INTEGER, load1 REAL, cpus INTEGER
);
CREATE TABLE IF NOT EXISTS task_samples (
    run INTEGER NOT NULL, task INTEGER NOT NULL, at REAL NOT NULL, cpu_percent REAL, rss INTEGER, peak_rss INTEGER
);
CREATE TABLE IF NOT EXISTS calls (
    run INTEGER NOT NULL, task INTEGER NOT NULL, fn_key BLOB NOT NULL, call BLOB, bytes INTEGER, problem TEXT,
    PRIMARY KEY (run, task)
);
CREATE TABLE IF NOT EXISTS functions (key BLOB PRIMARY KEY, fn BLOB, problem TEXT);
CREATE VIEW IF NOT EXISTS nodes (run, node, cpus, mem_total, first, last, samples, max_cpu_percent, max_mem_used) AS
    SELECT run, node, max(cpus), max(mem_total), min(at), max(at), count(*), max(cpu_percent), max(mem_used)
    FROM samples GROUP BY run, node;
CREATE VIEW IF NOT EXISTS events (run, task, attempt, name, state, at, executor, worker, error) AS
    SELECT run, task, attempt, name, 'pending', pending, executor, worker, NULL FROM attempts WHERE pending IS NOT NULL
    UNION ALL SELECT run, task, attempt, name, 'dispatched', dispatched, executor, worker, NULL FROM attempts
        WHERE dispatched IS NOT NULL
    UNION ALL SELECT run, task, attempt, name, 'running', running, executor, worker, NULL FROM attempts
        WHERE running IS NOT NULL
    UNION ALL SELECT run, task, attempt, name, state, ended, executor, worker, error FROM attempts
        WHERE ended IS NOT NULL;
"""

# Tables every monitoring db has had since its first release: how other commands know one.
CORE_TABLES = frozenset({"runs", "attempts"})

# Made by the run's writer before its first row and kept up to date row by row (a run's
# rows go in at each index's right end); ``plait report`` makes them in a db written by
# a plait that built them only when its run closed, and whose run was killed before that.
INDEXES = """
CREATE INDEX IF NOT EXISTS attempts_state ON attempts (state, run);
CREATE INDEX IF NOT EXISTS attempts_task ON attempts (run, task);
CREATE INDEX IF NOT EXISTS samples_node ON samples (run, node, at);
CREATE INDEX IF NOT EXISTS task_samples_task ON task_samples (run, task, at);
"""

# Columns added to tables before the layout had versions: a db from before gets them.
_ADDED_COLUMNS = (("attempts", "cpu", "REAL"), ("attempts", "peak_rss", "INTEGER"), ("runs", "path", "TEXT"))


def _versioned(db: sqlite3.Connection) -> None:
    """Version 1: every table, view and column, whatever an unversioned db had."""
    db.executescript(SCHEMA)
    have = {(table, row[1]) for table in ("attempts", "runs") for row in db.execute(f"PRAGMA table_info({table})")}
    for table, column, kind in _ADDED_COLUMNS:
        if (table, column) not in have:
            db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")


_STEPS: tuple[Callable[[sqlite3.Connection], None], ...] = (_versioned,)
VERSION = len(_STEPS)


def migrate(db: sqlite3.Connection, steps: tuple[Callable[[sqlite3.Connection], None], ...]) -> None:
    """Run the ``steps`` a db has not had, by its ``user_version``, and stamp the last.

    sqlite3.DatabaseError if a newer plait wrote it (its version is past the last step).
    """
    (version,) = db.execute("PRAGMA user_version").fetchone()
    if version > len(steps):
        raise sqlite3.DatabaseError(
            f"a newer plait wrote it (layout version {version}; this plait knows up to {len(steps)}): upgrade plait"
        )
    for step in steps[version:]:
        step(db)
    db.execute(f"PRAGMA user_version = {len(steps)}")


def prepare(db: sqlite3.Connection) -> None:
    """Bring a monitoring db (new, or written by an older plait) to this plait's layout."""
    migrate(db, _STEPS)


def outdated(db: sqlite3.Connection) -> bool:
    """Whether ``prepare`` has anything to do (a reader opens the file for writing only then)."""
    (version,) = db.execute("PRAGMA user_version").fetchone()
    return bool(version != VERSION)
