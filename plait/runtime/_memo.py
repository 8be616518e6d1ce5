"""The persistent memo: results by node key in a SQLite file, so a run resumes.

One row per result, committed when its task ends (not at exit): a run that is
killed, even with SIGKILL, keeps every result it had finished, but for those of the
loop turn it was killed in. The database is in WAL mode with ``synchronous=NORMAL``:
a commit survives the process dying at any point; only a power cut may lose the last
few commits, which are then recomputed.

Each row carries a checksum of its pickled value. A row whose digest does not match,
or that does not unpickle, is recomputed with a warning, never fatal; a file SQLite
finds damaged is said so once, with how to repair it, and left alone for the run.

Statements are grouped by turn of the runtime's event loop: its lookups share one read
transaction (in WAL mode it blocks no writer), and the results that ended in it are
written in one short write transaction when it ends. So a result is committed within
the loop turn in which its task ended, and no write lock is ever held while other code
runs (a ``.map`` function, say) — another run on the same file waits milliseconds, not
a loop turn. A lookup alone in its own transaction costs ~10 µs (SQLite re-checks the
WAL each time), inside one ~2 µs; a write ~3x less CPU than one commit per row.

Opening the file, telling it from other files and naming its troubles: ``_memo_file``.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
import warnings
import zlib
from pathlib import Path
from typing import Any

import cloudpickle

from plait.runtime._hooks import MISSING
from plait.runtime._memo_file import REPAIR, connect, error_kind, explain

__all__ = ["CorruptEntryWarning", "MemoWarning", "SQLiteMemo"]

# (key, name, pickled value, digest, created)
_Row = tuple[bytes, str, bytes, int, float]
# Damaged entries named one by one in a run; beyond, one warning says how to repair the file.
_CORRUPT_ENTRIES_SHOWN = 3


class CorruptEntryWarning(UserWarning):
    """A memo entry, or the memo file, could not be read back; the work is computed again."""


class MemoWarning(UserWarning):
    """The memo file is locked by another process or read-only: results are not memoized."""


def _digest(data: bytes) -> int:
    # A checksum against damage, not an adversary: CRC-32 is 5x cheaper than BLAKE2b here.
    return zlib.crc32(data)


class SQLiteMemo:
    """A :class:`~plait.runtime.Memo` in the SQLite file at ``path`` (created if missing).

    The interpreter calls it from the runtime's loop thread only; the connection is
    opened where the store is made, hence ``check_same_thread=False``. A write waits
    up to ``busy_timeout`` seconds for another process's write to end.

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "memo.db")
    >>> memo = SQLiteMemo(path)
    >>> memo.put(b"k" * 16, "square", [1, 4, 9])
    >>> memo.get(b"k" * 16), memo.get(b"x" * 16) is MISSING
    ([1, 4, 9], True)
    >>> memo.close()
    """

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout: float = 30.0) -> None:
        self.path = Path(path)
        self.busy_timeout = busy_timeout
        self._db = connect(self.path, busy_timeout)
        self._reading = False  # this loop turn's read transaction is open
        self._turn_ends = False  # the end of this loop turn is scheduled
        self._unwritten: dict[bytes, _Row] = {}  # this loop turn's results
        self._damaged = False  # SQLite found the file damaged: left alone for the rest of the run
        self._corrupt_entries = 0
        self._warned: set[str] = set()  # the kinds of trouble already told

    def get(self, key: bytes) -> Any:
        row = self._lookup(key)
        if row is None:
            return MISSING
        data, digest, name = row
        if _digest(data) != digest:
            return self._corrupt(key, name, "its stored bytes do not match their digest")
        try:
            return cloudpickle.loads(data)
        except Exception as error:
            return self._corrupt(key, name, f"it does not unpickle ({type(error).__name__}: {error})")

    def _lookup(self, key: bytes) -> tuple[bytes, int, str] | None:
        """The stored value, digest and app name of ``key``: None if none can be read."""
        if self._damaged:
            return None
        unwritten = self._unwritten.get(key)
        if unwritten is not None:
            return unwritten[2], unwritten[3], unwritten[1]
        try:
            self._join_read()
            row = self._db.execute("SELECT value, digest, name FROM plait_results WHERE key = ?", (key,)).fetchone()
        except sqlite3.Error as error:
            self._trouble(error, "what it holds is computed again")
            return None
        return None if row is None else (row[0], row[1], row[2])

    def put(self, key: bytes, name: str, value: Any) -> None:
        if self._damaged:
            return
        try:
            data = cloudpickle.dumps(value, protocol=5)
        except Exception as error:
            self._not_memoized(name, f"it cannot be pickled ({error})")
            return
        self._unwritten[key] = (key, name, data, _digest(data), time.time())
        if not self._end_turn_later():  # not on a loop: each write commits on its own
            self._write()

    def close(self) -> None:
        self._end()
        self._db.close()

    def _end_turn_later(self) -> bool:
        """Make sure the end of this loop turn commits; False when not on a loop."""
        if self._turn_ends:
            return True
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return False
        loop.call_soon(self._end)
        self._turn_ends = True
        return True

    def _join_read(self) -> None:
        if not self._reading and self._end_turn_later():
            self._db.execute("BEGIN")
            self._reading = True

    def _end(self) -> None:
        self._turn_ends = False
        if self._reading:
            self._reading = False
            try:
                self._db.execute("COMMIT")
            except sqlite3.Error as error:  # a read's end: nothing is lost, but say what is wrong
                self._trouble(error, "what it holds is computed again")
        self._write()

    def _write(self) -> None:
        """Write the results not written yet in one short transaction."""
        if not self._unwritten:
            return
        rows, self._unwritten = list(self._unwritten.values()), {}
        try:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany("INSERT OR REPLACE INTO plait_results VALUES (?, ?, ?, ?, ?)", rows)
            self._db.execute("COMMIT")
        except sqlite3.Error as error:
            if self._db.in_transaction:
                self._db.rollback()
            names = ", ".join(sorted({row[1] for row in rows}))
            self._trouble(error, f"the results of {len(rows)} tasks ({names:.200}) are not memoized")

    def _trouble(self, error: sqlite3.Error, consequence: str) -> None:
        """Say once per run and kind what is wrong with the file, and what to do."""
        kind = error_kind(error, self.path)
        if kind == "damaged":
            self._damaged, self._unwritten = True, {}
            consequence = "this run computes everything again without it"
        if kind in self._warned:
            return
        self._warned.add(kind)
        category = MemoWarning if kind in ("locked", "read-only") else CorruptEntryWarning
        message = f"plait memo: {explain(self.path, error, self.busy_timeout)}; {consequence}"
        warnings.warn(message, category, stacklevel=4)

    def _corrupt(self, key: bytes, name: str, why: str) -> Any:
        self._corrupt_entries += 1
        if self._corrupt_entries <= _CORRUPT_ENTRIES_SHOWN:
            message = f"the entry for {name} (key {key.hex()[:12]}) is unreadable, {why}; computing it again"
        elif self._corrupt_entries == _CORRUPT_ENTRIES_SHOWN + 1:
            message = (
                "more entries are unreadable; each is computed again and replaced, without more warnings. "
                + REPAIR.format(path=self.path)
            )
        else:
            return MISSING
        warnings.warn(f"plait memo {self.path}: {message}", CorruptEntryWarning, stacklevel=3)
        return MISSING

    def _not_memoized(self, name: str, why: str) -> None:
        warnings.warn(
            f"plait memo {self.path}: the result of {name} is not memoized: {why}", CorruptEntryWarning, stacklevel=3
        )

    def __repr__(self) -> str:
        return f"SQLiteMemo({str(self.path)!r})"
