"""The ``plait`` command. Each subcommand lives beside the feature it serves."""

from __future__ import annotations

import importlib
from pathlib import Path

import click

from plait._version import __version__

__all__ = ["main"]

# The subcommands defined elsewhere, imported only when one is run (or help lists them):
# a pool started as ``plait worker`` loads none of them.
_ELSEWHERE = {
    "cache": "plait.runtime._cache_cli",
    "debug": "plait.runtime._debug_cli",
    "graph": "plait.runtime._graph_cli",
    "plan": "plait.runtime._plan_cli",
    "report": "plait.report._cli",
    "run": "plait.runtime._run_cli",
}


class _Commands(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *_ELSEWHERE})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = _ELSEWHERE.get(cmd_name)
        if module is None:
            return super().get_command(ctx, cmd_name)
        command: click.Command = getattr(importlib.import_module(module), cmd_name)
        return command


@click.group(cls=_Commands)
@click.version_option(__version__, prog_name="plait")
def main() -> None:
    """plait: parallel workflows as functional expressions."""


def _executor_url(ctx: click.Context, param: click.Parameter, url: str) -> str:
    from plait.backends.zmq._pool_start import check_url

    try:
        return check_url(url)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


@main.command()
@click.option("--url", required=True, callback=_executor_url, help="The executor's address, e.g. tcp://10.0.0.5:54321.")
@click.option("--pool-id", required=True, help="This pool's name, as the executor calls it.")
@click.option("--workers", type=click.IntRange(min=1), default=None, help="Worker processes [default: one per core].")
@click.option(
    "--key-file",
    "--keys",
    "key_file",
    type=click.Path(path_type=Path, allow_dash=True),
    default=None,
    help="The file with the run's CurveZMQ keys (mode 0600; what ZMQExecutor(key_file=...) writes), "
    "or - to read them from stdin [default: none, for an executor with encrypted=False].",
)
def worker(url: str, pool_id: str, workers: int | None, key_file: Path | None) -> None:
    """Run a pool of worker processes for a ZMQExecutor (what its providers start)."""
    from plait.backends.zmq._pool_start import main as pool_main

    raise SystemExit(pool_main(url, pool_id, workers, key_file))
