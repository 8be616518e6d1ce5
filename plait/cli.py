"""The ``plait`` command. Each subcommand lives beside the feature it serves."""

from __future__ import annotations

import errno
import importlib
import os
from typing import Any

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

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except OSError as error:  # a file it was given to read or write: said in a line, no traceback
            if error.errno == errno.EPIPE or error.filename is None:  # click ends a closed pipe quietly
                raise
            if os.environ.get("PLAIT_TRACEBACK") == "full":  # debugging plait itself
                raise
            raise click.ClickException(f"{error.strerror}: {error.filename}") from None


@click.group(cls=_Commands)
@click.version_option(__version__, prog_name="plait")
def main() -> None:
    """plait: parallel workflows as functional expressions."""


@main.command(context_settings={"ignore_unknown_options": True}, add_help_option=False)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def worker(args: tuple[str, ...]) -> None:
    """Run a pool of worker processes for a ZMQExecutor (what its providers start)."""
    # Its options are parsed by the pool's own command, which providers run without
    # this one: importing click is ~15 ms of every pool's start.
    from plait.backends.zmq._pool_start import command

    command(list(args))
