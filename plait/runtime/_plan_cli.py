"""``plait plan path.py:name``: what ``plait run`` would do with the same options, before it runs."""

from __future__ import annotations

from pathlib import Path

import click

from plait.runtime._run_cli import executor_option, load_expr, parse_executor
from plait.runtime._runtime import Runtime

__all__ = ["plan"]


@click.command()
@click.argument("target")
@executor_option
@click.option("--cache", type=click.Path(dir_okay=False), help="Memo file the run would be served from.")
@click.option("--monitor", type=click.Path(dir_okay=False), help="Monitoring db of earlier runs: their task times.")
def plan(target: str, executor_spec: str, cache: str | None, monitor: str | None) -> None:
    """Print what computing the Expr TARGET would do, running none of it.

    Per app: distinct tasks, how many the memo serves, how many would run, and their
    median time in earlier runs; then the critical path and a time estimate. A bind
    whose input has to run first is reported as unknown beyond that point.
    """
    executor = parse_executor(executor_spec)
    expr = load_expr(target)
    if cache is not None and not Path(cache).is_file():  # before a first run: everything runs
        click.echo(f"no memo at {cache} yet: nothing is cached", err=True)
        cache = None
    if monitor is not None and not Path(monitor).is_file():
        click.echo(f"no monitoring db at {monitor}: no times from earlier runs", err=True)
    try:
        runtime = Runtime([executor], cache=cache, progress=False)  # never started: no worker runs
    except ValueError as error:  # a --cache file it cannot use
        raise click.ClickException(str(error)) from None
    try:
        click.echo(runtime.plan(expr, history=monitor))
    except ValueError as error:  # a --monitor file it cannot read
        raise click.ClickException(str(error)) from None
    finally:
        runtime.shutdown()
