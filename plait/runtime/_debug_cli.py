"""``plait debug run.db [TASK]``: call a failed task again here, as its worker did, under pdb."""

from __future__ import annotations

import sys
import traceback
import types
from typing import Any

import click
from returns.result import Failure

from plait.backends._wire import loads_call, loads_function
from plait.monitoring import FailedCall, open
from plait.runtime._debug import call_text, rerun

__all__ = ["debug"]

_RAISE_CAP = (
    "To keep bigger calls, record the run with plait run --debug-payload-bytes N, or "
    "Runtime(monitor=plait.runtime.EventLog('run.db', debug_payload_bytes=N))."
)


@click.command()
@click.argument("database", type=click.Path(dir_okay=False))
@click.argument("task", required=False)
@click.option("--run", "run", type=int, default=None, help="Which run of the file [default: the latest].")
@click.option("--pdb/--no-pdb", "post_mortem", default=True, help="Open pdb where it fails, or print the traceback.")
def debug(database: str, task: str | None, run: int | None, post_mortem: bool) -> None:
    """Re-run a failed task of DATABASE (a monitoring db) here, with the arguments it had.

    TASK is a task number, or an app's name (its latest failure); without it, the run's
    latest failure. It runs in this process, under pdb's post-mortem where it raises
    (--no-pdb: print the traceback). Exits 1 when it fails again, 0 when it does not.
    """
    try:
        with open(database, run) as db:
            failed = db.failed_call(int(task) if task is not None and task.isdigit() else task)
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    fn, args, kwargs = _decode(failed)
    click.echo(f"task {failed.task} ({failed.name}) of run {failed.run} failed on {failed.worker or '?'} with:")
    click.echo(f"  {_last_line(failed.error)}")
    click.echo(f"re-running {call_text(fn, args, kwargs)} here")
    outcome = rerun(fn, args, kwargs, post_mortem=post_mortem)
    if not isinstance(outcome, Failure):
        click.echo(f"it did not fail this time; it returned {outcome.unwrap()!r}")
        return
    if not post_mortem:
        click.echo("".join(traceback.format_exception(outcome.failure())).rstrip(), err=True)
    raise SystemExit(1)


def _decode(failed: FailedCall) -> tuple[Any, tuple[Any, ...], dict[str, Any]]:
    """The function and arguments, read back with the worker's own decoders."""
    where = f"task {failed.task} ({failed.name}) of run {failed.run}"
    if failed.fn is None or failed.call is None:
        hint = f" {_RAISE_CAP}" if failed.call_bytes is not None and failed.call is None else ""
        raise click.ClickException(f"{where}: cannot re-run it: {failed.problem}.{hint}")
    # Its function may be pickled by reference to a module the driver imported from its path.
    sys.path[:0] = [entry for entry in failed.path if entry not in sys.path]
    try:
        fn = loads_function(failed.fn)
        args, kwargs = loads_call(failed.call)
    except Exception as error:
        why = f"{type(error).__name__}: {error}"
        raise click.ClickException(f"{where}: its call cannot be read back here: {why}") from None
    return _with_source(fn), args, kwargs


def _with_source(fn: Any) -> Any:
    """``fn`` with its code pointing at its file again, so tracebacks and pdb show the lines.

    cloudpickle names code it sends by value ``<dynamic-code>``; the function's globals
    still know the file.
    """
    path = getattr(fn, "__globals__", {}).get("__file__")
    if isinstance(fn, types.FunctionType) and path and fn.__code__.co_filename == "<dynamic-code>":
        fn.__code__ = _renamed(fn.__code__, path)
    return fn


def _renamed(code: types.CodeType, path: str) -> types.CodeType:
    consts = tuple(_renamed(c, path) if isinstance(c, types.CodeType) else c for c in code.co_consts)
    return code.replace(co_filename=path, co_consts=consts)


def _last_line(text: str) -> str:
    """The ``Type: message`` line of a formatted exception (its last one, when chained).

    >>> _last_line("Traceback (most recent call last):\\n  File 'f.py', line 1\\nKeyError: 3\\nnote")
    'KeyError: 3'
    """
    last = text.rpartition("Traceback (most recent call last):")[2]
    lines = [line for line in last.splitlines() if line and not line[0].isspace()]
    return lines[0] if lines else "(no error recorded)"
