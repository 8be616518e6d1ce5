"""``plait run path.py:name``: compute an Expr defined in a file or module, from the shell."""

from __future__ import annotations

import importlib
import importlib.util
import pprint
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import cloudpickle

from plait._spelling import did_you_mean
from plait._tracebacks import user_frames
from plait.backends import Executor, ProcessExecutor, ThreadExecutor
from plait.backends._plugins import EXECUTORS, executor_plugin, plugin_names
from plait.dsl import App, Expr
from plait.runtime._monitor import DEFAULT_DEBUG_PAYLOAD_BYTES, EventLog
from plait.runtime._runtime import Runtime

__all__ = ["executor_option", "load_expr", "parse_executor", "run"]

T = TypeVar("T")

_EXECUTORS: dict[str, type[ProcessExecutor] | type[ThreadExecutor]] = {
    "processes": ProcessExecutor,
    "threads": ThreadExecutor,
}


def parse_executor(spec: str) -> Executor:
    """An executor from ``kind[:workers]``, e.g. ``processes:4`` or ``threads``; ``kind``
    may also name a plugin an installed package adds (entry point group ``plait.executors``).

    >>> executor = parse_executor("threads:3")
    >>> type(executor).__name__, executor.workers
    ('ThreadExecutor', 3)
    """
    kind, _, count = spec.partition(":")
    plugins = plugin_names(EXECUTORS)
    if (kind not in _EXECUTORS and kind not in plugins) or (count and not count.isdigit()) or count == "0":
        kinds = " or ".join(f"{k}[:N]" for k in [*_EXECUTORS, *plugins])
        raise click.BadParameter(f"{spec!r}: expected {kinds}, N a positive number", param_hint="--executor")
    workers = int(count) if count else None
    if kind in _EXECUTORS:
        return _EXECUTORS[kind](workers)
    try:
        return executor_plugin(kind, workers)
    except Exception as error:  # the plugin's own failure, even its constructor's: say whose it is
        raise click.BadParameter(f"{spec!r}: {error}", param_hint="--executor") from error


def load_expr(target: str) -> Expr[Any]:
    """The Expr that ``target`` (``path.py:name`` or ``package.module:name``) names.

    ``name`` may also be a function of no arguments that returns an Expr. A file is
    imported as a module named after it, its directory first on ``sys.path`` (as
    ``python path.py`` would), and its functions are sent to workers by value.
    """
    found = load_target(target)
    if isinstance(found, App):
        raise click.BadParameter(
            f"{target} is an app; name an Expr (an app called with its arguments)", param_hint="TARGET"
        )
    if callable(found) and not isinstance(found, Expr):
        found = _users_code(f"{target}()", found)
    if not isinstance(found, Expr):
        raise click.BadParameter(f"{target} is a {type(found).__name__}, not an Expr", param_hint="TARGET")
    return found


def load_target(target: str) -> Any:
    """What ``target`` (``path.py:name`` or ``package.module:name``) names, the module imported."""
    where, sep, name = target.rpartition(":")
    if not sep or not where or not name:
        raise click.BadParameter(f"{target!r}: expected path.py:name or package.module:name", param_hint="TARGET")
    found: Any = _load_module(where)
    for part in name.split("."):
        if not hasattr(found, part):
            hint = did_you_mean(part, [n for n in dir(found) if not n.startswith("_")])
            raise click.BadParameter(f"{where} has no {name!r}{f'; {hint}' if hint else ''}", param_hint="TARGET")
        found = getattr(found, part)
    return found


def _load_module(where: str) -> Any:
    path = Path(where)
    if path.suffix != ".py":
        try:
            missing = importlib.util.find_spec(where) is None
        except ImportError:  # its package is missing, or it is a relative name ('.py', a file's suffix alone)
            missing = True
        if missing:
            raise click.BadParameter(f"cannot import {where}: there is no such module", param_hint="TARGET")
        return _users_code(f"importing {where}", lambda: importlib.import_module(where))
    if not path.is_file():
        what = "not a file" if path.exists() else "no such file"
        raise click.BadParameter(f"{what}: {where}", param_hint="TARGET")
    name = path.stem if path.stem.isidentifier() and path.stem not in sys.modules else "__plait_target__"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    sys.path.insert(0, str(path.resolve().parent))
    # Workers cannot import a file that is not on their path; nor may they: a file that runs
    # a workflow as it is imported (no __main__ guard) would run it again in each worker,
    # whose workers would import it too. So by value, even for what its import runs.
    cloudpickle.register_pickle_by_value(module)
    _users_code(f"importing {where}", lambda: spec.loader.exec_module(module))  # type: ignore[union-attr]
    return module


def _users_code(what: str, code: Callable[[], T]) -> T:
    """``code()``, which runs the user's: its error is shown with their frames, not click's,
    importlib's or plait's, and ends the command with status 1."""
    try:
        return code()
    except Exception as error:
        raise _failed(what, error) from None


def _failed(what: str, error: Exception) -> click.ClickException:
    """The end of a command whose ``what`` failed with ``error``: the user's frames, if any
    are left once plait's are cut, then the error in one line. An error with no frame of
    theirs (a failed shell command) is that line alone: its traceback would only repeat it."""
    user_frames(error)
    shown = (error.__traceback__, error.__cause__, error.__context__)
    if any(part is not None for part in shown) or isinstance(error, SyntaxError):  # its caret under the line
        click.echo("".join(traceback.format_exception(error)).rstrip(), err=True)
    return click.ClickException(f"{what} failed: {type(error).__name__}: {error}")


executor_option = click.option(
    "--executor",
    "executor_spec",
    default="processes",
    show_default=True,
    help="Where tasks run: processes[:N], threads[:N] or a plugin's NAME[:N] (N workers; default one per core).",
)


@click.command()
@click.argument("target")
@executor_option
@click.option("--cache", type=click.Path(dir_okay=False), help="Memo file: results kept across runs (SQLite).")
@click.option("--monitor", type=click.Path(dir_okay=False), help="Record every task's states here, for plait report.")
@click.option("--progress/--no-progress", default=None, help="Progress bar on stderr [default: when it is a terminal].")
@click.option(
    "--debug-payload-bytes",
    type=click.IntRange(min=0),
    default=DEFAULT_DEBUG_PAYLOAD_BYTES,
    show_default=True,
    help="With --monitor: keep a failed task's arguments up to this size, for plait debug.",
)
def run(
    target: str,
    *,
    executor_spec: str,
    cache: str | None,
    monitor: str | None,
    progress: bool | None,
    debug_payload_bytes: int,
) -> None:
    """Compute the Expr TARGET and print its result.

    TARGET is path.py:name or package.module:name; name is an Expr, or a function
    of no arguments that returns one.
    """
    executor = parse_executor(executor_spec)
    expr = load_expr(target)
    try:
        log = EventLog(monitor, debug_payload_bytes=debug_payload_bytes) if monitor else None
        runtime = Runtime([executor], cache=cache, monitor=log, progress=progress)
    except ValueError as error:  # a --cache or --monitor file it cannot use
        raise click.ClickException(str(error)) from None
    with runtime:
        try:
            value = runtime.run(expr)
        except Exception as error:
            raise _failed(target, error) from None
    click.echo(value if isinstance(value, str) else pprint.pformat(value))
