"""The memo's file: opened in this plait's layout (an older one migrated), told apart from
other files, what an SQLite error says about it, and what ``plait cache`` reads and clears.

Contention is not damage: a file another process keeps locked past ``busy_timeout``,
or one on a read-only filesystem, is named as such, never called unusable.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

import attrs

from plait.monitoring._schema import CORE_TABLES, migrate

__all__ = ["REPAIR", "CacheInfo", "cache_info", "clear_cache", "connect", "error_kind", "explain", "is_memo"]

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
# Said with a damaged file, or once its damaged entries are too many to name one by one.
REPAIR = (
    "To repair it: `sqlite3 {path} .recover | sqlite3 repaired.db` keeps what is readable "
    "(then use repaired.db); `plait cache clear {path}` starts afresh"
)


def connect(path: Path, busy_timeout: float = 30.0) -> sqlite3.Connection:
    """The memo at ``path``, in this plait's layout; ValueError naming the file if it is not one."""
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
    if error_kind(error, path) in ("locked", "read-only", "damaged"):  # a live cache: never advise removing it
        return f"plait memo: {explain(path, error, busy_timeout)}"
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


def error_kind(error: sqlite3.Error, path: Path) -> str:
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


def explain(path: Path, error: sqlite3.Error, busy_timeout: float) -> str:
    kind = error_kind(error, path)
    if kind == "locked":
        return (
            f"{path} is locked by another process (waited {busy_timeout:g} s: {error}); "
            "let that run finish, or give this one another cache file"
        )
    if kind == "read-only":
        where = path if path.exists() else path.parent
        return f"{path} cannot be written: {where} is read-only here ({error}); give a cache path this run can write"
    if kind == "damaged":
        return f"{path} is damaged ({error}). {REPAIR.format(path=path)}"
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
    db = connect(path)
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
    db = connect(path)
    try:
        return db.execute("DELETE FROM plait_results WHERE name = ?", (app,)).rowcount
    finally:
        db.close()


def _files(path: Path) -> tuple[Path, ...]:
    return (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm"))
