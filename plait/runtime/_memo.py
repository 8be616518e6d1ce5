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

Contention is not damage: a file another process keeps locked past ``busy_timeout``,
or one on a read-only filesystem, is named as such, never called unusable.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
import warnings
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import cloudpickle

from plait.monitoring._schema import CORE_TABLES, migrate
from plait.runtime._hooks import MISSING

__all__ = ["CacheInfo", "CorruptEntryWarning", "MemoWarning", "SQLiteMemo", "cache_info", "clear_cache", "is_memo"]

_RESULTS = """CREATE TABLE IF NOT EXISTS plait_results (
    key BLOB PRIMARY KEY,
    name TEXT NOT NULL,
    value BLOB NOT NULL,
    digest INTEGER NOT NULL,
    created REAL NOT NULL
) WITHOUT ROWID"""


def _versioned(db: sqlite3.Connection) -> None:
    """Version 1: the results table. A memo from before versions said its schema in a
    ``plait_meta`` row, always "1", this same table: ``user_version`` says it now."""
    db.execute("DROP TABLE IF EXISTS plait_meta")
    db.execute(_RESULTS)


# Each step takes the file from one ``user_version`` to the next (see plait.monitoring's
# migrate); a change of layout is a new step at the end.
_STEPS: tuple[Callable[[sqlite3.Connection], None], ...] = (_versioned,)
# (key, name, pickled value, digest, created)
_Row = tuple[bytes, str, bytes, int, float]
# Damaged entries named one by one in a run; beyond, one warning says how to repair the file.
_CORRUPT_ENTRIES_SHOWN = 3
_REPAIR = (
    "To repair it: `sqlite3 {path} .recover | sqlite3 repaired.db` keeps what is readable "
    "(then use repaired.db); `plait cache clear {path}` starts afresh"
)


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
        self._db = _connect(self.path, busy_timeout)
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
        kind = _kind(error, self.path)
        if kind == "damaged":
            self._damaged, self._unwritten = True, {}
            consequence = "this run computes everything again without it"
        if kind in self._warned:
            return
        self._warned.add(kind)
        category = MemoWarning if kind in ("locked", "read-only") else CorruptEntryWarning
        message = f"plait memo: {_explain(self.path, error, self.busy_timeout)}; {consequence}"
        warnings.warn(message, category, stacklevel=4)

    def _corrupt(self, key: bytes, name: str, why: str) -> Any:
        self._corrupt_entries += 1
        if self._corrupt_entries <= _CORRUPT_ENTRIES_SHOWN:
            message = f"the entry for {name} (key {key.hex()[:12]}) is unreadable, {why}; computing it again"
        elif self._corrupt_entries == _CORRUPT_ENTRIES_SHOWN + 1:
            message = (
                "more entries are unreadable; each is computed again and replaced, without more warnings. "
                + _REPAIR.format(path=self.path)
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


def _connect(path: Path, busy_timeout: float = 30.0) -> sqlite3.Connection:
    if path.is_dir():
        raise ValueError(f"plait memo: {path} is a directory; give the path of a file such as {path / 'plait.db'}")
    if path.is_file() and path.stat().st_size and (what := _not_a_memo(path)):
        raise ValueError(f"plait memo: {path} is not a plait cache: it is {what}; give the cache another path")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        db = sqlite3.connect(path, timeout=busy_timeout, check_same_thread=False, isolation_level=None)
    except sqlite3.Error as error:
        raise ValueError(_unusable(path, error, busy_timeout)) from None
    try:
        _prepare(db)
    except sqlite3.Error as error:
        db.close()
        raise ValueError(_unusable(path, error, busy_timeout)) from None
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
    if "plait_results" in tables:
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


def is_memo(path: Path) -> bool:
    """Whether ``path`` is a plait memo file (read without writing anything)."""
    return path.is_file() and path.stat().st_size > 0 and _not_a_memo(path) is None


def _memo_file(path: Path) -> None:
    """Raise, naming the file and what it is, unless ``path`` is a plait memo."""
    if not path.is_file():
        raise FileNotFoundError(f"no plait cache at {path}")
    if what := _not_a_memo(path):
        raise ValueError(f"{path} is not a plait cache: it is {what}; nothing was changed")


def _unusable(path: Path, error: sqlite3.Error, busy_timeout: float) -> str:
    if _kind(error, path) in ("locked", "read-only", "damaged"):  # a live cache: never advise removing it
        return f"plait memo: {_explain(path, error, busy_timeout)}"
    return f"plait memo: {path} is not a usable plait cache ({error}); give another path"


def _prepare(db: sqlite3.Connection) -> None:
    """Bring the file to this plait's layout: a new file gets its table, an older one its
    migrations; one from a newer plait is refused (sqlite3.DatabaseError), never misread.

    A file already up to date is only read here: opening a memo that another run is
    writing takes no lock.
    """
    if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
        db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    (version,) = db.execute("PRAGMA user_version").fetchone()
    if version == len(_STEPS):
        return
    db.execute("BEGIN IMMEDIATE")  # migrate reads the version again: another run may have migrated since
    try:
        migrate(db, _STEPS)
    except BaseException:
        db.rollback()
        raise
    db.execute("COMMIT")


def _kind(error: sqlite3.Error, path: Path) -> str:
    """What an SQLite error says about the memo file: locked, read-only, damaged, or other."""
    name = getattr(error, "sqlite_errorname", "")
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return "locked"
    if name.startswith("SQLITE_READONLY") or (name.startswith("SQLITE_CANTOPEN") and not _writable(path)):
        return "read-only"
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
        return "damaged"
    return "other"


def _writable(path: Path) -> bool:
    # os.access sees a read-only mount even for root, whom permission bits do not stop.
    return os.access(path if path.exists() else path.parent, os.W_OK)


def _explain(path: Path, error: sqlite3.Error, busy_timeout: float) -> str:
    kind = _kind(error, path)
    if kind == "locked":
        return (
            f"{path} is locked by another process (waited {busy_timeout:g} s: {error}); "
            "let that run finish, or give this one another cache file"
        )
    if kind == "read-only":
        where = path if path.exists() else path.parent
        return f"{path} cannot be written: {where} is read-only here ({error}); give a cache path this run can write"
    if kind == "damaged":
        return f"{path} is damaged ({error}). {_REPAIR.format(path=path)}"
    return f"{path} could not be used ({error})"


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
