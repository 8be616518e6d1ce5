"""The ``plait`` command. Each subcommand lives beside the feature it serves."""

from __future__ import annotations

from pathlib import Path

import click

import plait
from plait.report._cli import report
from plait.runtime._cache_cli import cache
from plait.runtime._debug_cli import debug
from plait.runtime._graph_cli import graph
from plait.runtime._plan_cli import plan
from plait.runtime._run_cli import run

__all__ = ["main"]


@click.group()
@click.version_option(plait.__version__, prog_name="plait")
def main() -> None:
    """plait: parallel workflows as functional expressions."""


def _executor_url(ctx: click.Context, param: click.Parameter, url: str) -> str:
    from plait.backends.zmq._pool import check_url

    try:
        return check_url(url)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


@main.command()
@click.option("--url", required=True, callback=_executor_url, help="The executor's address, e.g. tcp://10.0.0.5:54321.")
@click.option("--pool-id", required=True, help="This pool's name, as the executor calls it.")
@click.option("--workers", type=click.IntRange(min=1), default=None, help="Worker processes [default: one per core].")
@click.option(
    "--keys",
    "key_file",
    type=click.Path(path_type=Path),
    default=None,
    help="The file with the run's CurveZMQ keys (mode 0600) [default: none, for an executor with encrypted=False].",
)
def worker(url: str, pool_id: str, workers: int | None, key_file: Path | None) -> None:
    """Run a pool of worker processes for a ZMQExecutor (what its providers start)."""
    from plait.backends.zmq._pool import main as pool_main

    raise SystemExit(pool_main(url, pool_id, workers, key_file))


main.add_command(cache)
main.add_command(run)
main.add_command(report)
main.add_command(graph)
main.add_command(debug)
main.add_command(plan)
