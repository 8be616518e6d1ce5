"""The persistent memo: results by node key in a SQLite file, so a run resumes.

One row per result, committed when its task ends (not at exit): a run that is
killed, even with SIGKILL, keeps every result it had finished, but for those of the
loop turn it was killed in. The database is in WAL mode with ``synchronous=NORMAL``:
a commit survives the process dying at any point; only a power cut may lose the last
few commits, which are then recomputed.

Each row carries a checksum of its pickled value. A row whose digest does not match,
or that does not unpickle, is recomputed with a warning, never fatal.

Statements are grouped: the first ``get`` or ``put`` in a turn of the runtime's event
loop opens a transaction and the end of that turn commits it, so a result is
committed within the loop turn in which its task ended. A lookup alone in its own
transaction costs ~10 µs (SQLite re-checks the WAL each time), inside one ~2 µs; a
write ~3x less CPU than one commit per row.
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

import attrs
import cloudpickle

from plait.runtime._hooks import MISSING
from plait.runtime._monitor import CORE_TABLES

__all__ = ["CacheInfo", "CorruptEntryWarning", "SQLiteMemo", "cache_info", "clear_cache"]

_SCHEMA = 1
_CREATE = """
CREATE TABLE IF NOT EXISTS plait_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS plait_results (
    key BLOB PRIMARY KEY,
    name TEXT NOT NULL,
    value BLOB NOT NULL,
    digest INTEGER NOT NULL,
    created REAL NOT NULL
) WITHOUT ROWID;
"""


class CorruptEntryWarning(UserWarning):
    """A memo entry could not be read back; its task is computed again."""


def _digest(data: bytes) -> int:
    # A checksum against damage, not an adversary: CRC-32 is 5x cheaper than BLAKE2b here.
    return zlib.crc32(data)


class SQLiteMemo:
    """A :class:`~plait.runtime.Memo` in the SQLite file at ``path`` (created if missing).

    The interpreter calls it from the runtime's loop thread only; the connection is
    opened where the store is made, hence ``check_same_thread=False``.

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "memo.db")
    >>> memo = SQLiteMemo(path)
    >>> memo.put(b"k" * 16, "square", [1, 4, 9])
    >>> memo.get(b"k" * 16), memo.get(b"x" * 16) is MISSING
    ([1, 4, 9], True)
    >>> memo.close()
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._db = _connect(self.path)
        self._txn: str | None = None  # this loop turn's transaction: None, "read" or "write"

    def get(self, key: bytes) -> Any:
        try:
            self._join(write=False)
            row = self._db.execute("SELECT value, digest, name FROM plait_results WHERE key = ?", (key,)).fetchone()
        except sqlite3.DatabaseError as error:
            return self._corrupt(key, "?", f"the database could not be read ({error})")
        if row is None:
            return MISSING
        data, digest, name = row
        if _digest(data) != digest:
            return self._corrupt(key, name, "its stored bytes do not match their digest")
        try:
            return cloudpickle.loads(data)
        except Exception as error:
            return self._corrupt(key, name, f"it does not unpickle ({type(error).__name__}: {error})")

    def put(self, key: bytes, name: str, value: Any) -> None:
        try:
            data = cloudpickle.dumps(value, protocol=5)
        except Exception as error:
            self._not_memoized(name, f"it cannot be pickled ({error})")
            return
        try:
            self._join(write=True)
            self._db.execute(
                "INSERT OR REPLACE INTO plait_results VALUES (?, ?, ?, ?, ?)",
                (key, name, data, _digest(data), time.time()),
            )
        except sqlite3.Error as error:
            self._not_memoized(name, f"the database refused it ({error})")

    def close(self) -> None:
        self._end()
        self._db.close()

    def _join(self, write: bool) -> None:
        """Join this loop turn's transaction: open it, or turn a read into a write."""
        if self._txn == "write" or (self._txn == "read" and not write):
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # not on a loop: each statement is its own transaction
        if self._txn == "read":
            # Upgrading a read snapshot fails if another process wrote since; start afresh.
            self._db.execute("COMMIT")
        else:
            loop.call_soon(self._end)
        self._db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        self._txn = "write" if write else "read"

    def _end(self) -> None:
        if self._txn is None:
            return
        wrote, self._txn = self._txn == "write", None
        try:
            self._db.execute("COMMIT")
        except sqlite3.Error as error:
            self._db.rollback()
            if wrote:
                self._not_memoized("the tasks that just ended", f"the commit failed ({error})")

    def _corrupt(self, key: bytes, name: str, why: str) -> Any:
        warnings.warn(
            f"plait memo {self.path}: the entry for {name} (key {key.hex()[:12]}) is unreadable, "
            f"{why}; computing it again",
            CorruptEntryWarning,
            stacklevel=3,
        )
        return MISSING

    def _not_memoized(self, name: str, why: str) -> None:
        warnings.warn(
            f"plait memo {self.path}: the result of {name} is not memoized: {why}", CorruptEntryWarning, stacklevel=3
        )

    def __repr__(self) -> str:
        return f"SQLiteMemo({str(self.path)!r})"


def _connect(path: Path) -> sqlite3.Connection:
    if path.is_dir():
        raise ValueError(f"plait memo: {path} is a directory; give the path of a file such as {path / 'plait.db'}")
    if path.is_file() and path.stat().st_size and (what := _not_a_memo(path)):
        raise ValueError(f"plait memo: {path} is not a plait cache: it is {what}; give the cache another path")
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(_CREATE)
        db.execute("INSERT OR IGNORE INTO plait_meta VALUES ('schema', ?)", (str(_SCHEMA),))
        (schema,) = db.execute("SELECT value FROM plait_meta WHERE name = 'schema'").fetchone()
    except sqlite3.DatabaseError as error:
        db.close()
        raise ValueError(f"plait memo: {path} is not a usable plait cache ({error}); give another path") from None
    if schema != str(_SCHEMA):
        db.close()
        raise ValueError(f"plait memo: {path} has schema {schema}, this plait writes {_SCHEMA}; use another file")
    return db


_SQLITE_MAGIC = b"SQLite format 3\x00"


def _not_a_memo(path: Path) -> str | None:
    """What the file at ``path`` is, said for an error message; None when it is a plait memo.

    Reads without writing anything: a file that turns out not to be a memo is left as it was.
    """
    with path.open("rb") as file:
        head = file.read(512)
    if not head.startswith(_SQLITE_MAGIC):
        return _what_file(head)
    try:
        tables = _tables(path)
    except sqlite3.DatabaseError as error:
        return f"an SQLite database that cannot be read ({error})"
    return _what_database(tables)


def _what_file(head: bytes) -> str:
    if not head:
        return "an empty file"
    try:
        head.decode()
    except UnicodeDecodeError:
        return "not an SQLite database"
    return "not an SQLite database" if b"\x00" in head else "a text file"


def _what_database(tables: set[str]) -> str | None:
    if tables >= {"plait_meta", "plait_results"}:
        return None
    if tables >= CORE_TABLES:
        return "a plait monitoring database (what Runtime(monitor=...) writes; `plait report` reads it)"
    if not tables:
        return "an SQLite database with no tables"
    return f"an SQLite database with other tables ({', '.join(sorted(tables))})"


def _tables(path: Path) -> set[str]:
    # Read-only still makes -wal and -shm files for a WAL database; `immutable` makes none,
    # and is exact when there is no -wal file (all the data is then in the main file).
    mode = "ro" if _files(path)[1].exists() else "ro&immutable=1"
    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode={mode}", uri=True)
    try:
        return {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        db.close()


def _memo_file(path: Path) -> None:
    """Raise, naming the file and what it is, unless ``path`` is a plait memo."""
    if not path.is_file():
        raise FileNotFoundError(f"no plait cache at {path}")
    if what := _not_a_memo(path):
        raise ValueError(f"{path} is not a plait cache: it is {what}; nothing was changed")


@attrs.frozen
class CacheInfo:
    """What a memo file holds: entries and pickled bytes, in total and per app."""

    path: Path
    entries: int
    bytes: int
    file_bytes: int
    apps: tuple[tuple[str, int, int], ...]  # (app name, entries, bytes), most entries first


def cache_info(path: str | os.PathLike[str]) -> CacheInfo:
    """Count what the memo at ``path`` holds; raises FileNotFoundError naming it if absent."""
    path = Path(path)
    _memo_file(path)
    db = _connect(path)
    try:
        apps = tuple(
            db.execute(
                "SELECT name, COUNT(*), COALESCE(SUM(LENGTH(value)), 0) FROM plait_results "
                "GROUP BY name ORDER BY COUNT(*) DESC, name"
            ).fetchall()
        )
    finally:
        db.close()
    size = sum(p.stat().st_size for p in _files(path) if p.exists())
    return CacheInfo(path, sum(a[1] for a in apps), sum(a[2] for a in apps), size, apps)


def clear_cache(path: str | os.PathLike[str], app: str | None = None) -> int:
    """Delete the entries of ``app`` (all entries when None) from the memo at ``path``.

    Returns how many were deleted. Clearing everything removes the files. A file that
    is not a plait memo (a monitoring db, another SQLite db, a text file) is refused,
    untouched: the path may well be a slip.
    """
    path = Path(path)
    _memo_file(path)
    if app is None:
        count = cache_info(path).entries
        for file in _files(path):
            file.unlink(missing_ok=True)
        return count
    db = _connect(path)
    try:
        return db.execute("DELETE FROM plait_results WHERE name = ?", (app,)).rowcount
    finally:
        db.close()


def _files(path: Path) -> tuple[Path, ...]:
    return (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm"))
