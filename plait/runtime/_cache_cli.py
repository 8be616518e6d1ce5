"""``plait cache info|clear|why``: look into and empty a memo file, see what a key covers."""

from __future__ import annotations

import warnings
from pathlib import Path

import click

from plait._spelling import did_you_mean
from plait.dsl import App, Expr
from plait.runtime._memo_file import cache_info, clear_cache
from plait.runtime._run_cli import load_target

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
    if app_name and not removed:
        # A misspelt name must not look cleared; a second clear of the same app is no error
        # (scripts clear before they run), so this is said, not refused.
        apps = [name for name, _, _ in cache_info(path).apps]
        hint = did_you_mean(app_name, apps)
        click.echo(
            f"{path} has no entries of {app_name!r}, so none were removed{f'; {hint}' if hint else ''}"
            f" (its apps: {', '.join(apps) or 'none'})",
            err=True,
        )
        return
    what = f"entries of {app_name}" if app_name else "entries"
    click.echo(f"{path}: removed {removed} {what}")


@cache.command()
@click.argument("target")
def why(target: str) -> None:
    """What the memo key of the app TARGET (path.py:app or package.module:app) covers.

    Its results are served from the memo until one of these changes: so this is why a
    task reran, or did not.
    """
    app = load_target(target)
    if isinstance(app, Expr):  # a call, say: its app is what has a key's coverage
        raise click.BadParameter(f"{target} is an Expr, {app.label()}, not an app: name the app", param_hint="TARGET")
    if not isinstance(app, App):
        raise click.BadParameter(f"{target} is a {type(app).__name__}, not an app", param_hint="TARGET")
    with warnings.catch_warnings():  # what they would warn of is printed below
        warnings.simplefilter("ignore")
        lines = key_coverage(app)
    click.echo("\n".join(lines))


def key_coverage(app: App[..., object]) -> list[str]:
    """The lines ``plait cache why`` prints for ``app``."""
    reach, options = app.reach, app.options
    lines = [f"app {app.name} ({getattr(app.fn, '__module__', '?')}), identity {app.identity.hex()}"]
    if options.version is not None:
        return [*lines, f"  version={options.version!r}: its key changes only when you change the version"]
    if not options.memoized:
        lines.append("  not memoized: " + ("pure=False, every call runs" if options.pure is False else "cache=False"))
    lines.append("  its own code, closure and default arguments, and the arguments of each call")
    for title, names in (
        ("functions and classes of your code it reaches", reach.code),
        ("module constants it reads (their values)", reach.constants),
        ("installed distributions it uses (their versions)", reach.distributions),
        ("NOT covered (no token; give it a version= when they change)", reach.not_covered),
        ("uses files by name: NOT covered (pass them as pl.File, or give it a version=)", reach.files),
        ("reads what varies from call to call (mark it pure=False)" if options.pure is None else "reads what varies",
         reach.nondeterministic),
    ):  # fmt: skip
        if names:
            lines.append(f"  {title}:")
            lines.extend(f"    {name}" for name in names)
    lines.append("  never covered: files read by a name that is not a pl.File, environment variables, the network")
    return lines


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
