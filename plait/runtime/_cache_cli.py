"""``plait cache info|clear``: look into and empty a memo file from the shell."""

from __future__ import annotations

from pathlib import Path

import click

from plait.runtime._memo import cache_info, clear_cache

__all__ = ["cache"]

_DEFAULT = Path("plait-cache.db")
_PATH = click.argument("path", type=click.Path(dir_okay=False, path_type=Path), default=_DEFAULT)


def _refuse(error: OSError | ValueError, path: Path) -> click.ClickException:
    message = str(error)
    if isinstance(error, FileNotFoundError) and path == _DEFAULT:
        message += " (the default PATH): give the file your Runtime(cache=...) names"
    return click.ClickException(message)


@click.group()
def cache() -> None:
    """Inspect or clear a memo file (the Runtime's cache="path.db").

    PATH defaults to plait-cache.db in the current directory.
    """


@cache.command()
@_PATH
def info(path: Path) -> None:
    """Entries and sizes in the memo at PATH (default: plait-cache.db), per app."""
    try:
        found = cache_info(path)
    except (FileNotFoundError, ValueError) as error:
        raise _refuse(error, path) from None
    sizes = f"{_size(found.bytes)} of results, {_size(found.file_bytes)} on disk"
    click.echo(f"{found.path}: {found.entries} entries, {sizes}")
    width = max((len(name) for name, _, _ in found.apps), default=0)
    for name, entries, size in found.apps:
        click.echo(f"  {name:<{width}}  {entries:>8} entries  {_size(size):>10}")


@cache.command()
@_PATH
@click.option("--app", "app_name", default=None, help="Remove only this app's entries (its qualified name).")
def clear(path: Path, app_name: str | None) -> None:
    """Remove the memo at PATH (default: plait-cache.db), or only one app's entries in it."""
    try:
        removed = clear_cache(path, app_name)
    except (FileNotFoundError, ValueError) as error:
        raise _refuse(error, path) from None
    what = f"entries of {app_name}" if app_name else "entries"
    click.echo(f"{path}: removed {removed} {what}")


def _size(n: int) -> str:
    """Bytes for people.

    >>> _size(512), _size(2048), _size(5 * 1024**3)
    ('512 B', '2.0 KiB', '5.0 GiB')
    """
    if n < 1024:
        return f"{n} B"
    value = n / 1024
    for unit in ("KiB", "MiB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"
