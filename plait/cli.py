"""The ``plait`` command. Each subcommand lives beside the feature it serves."""

from __future__ import annotations

import click

import plait

__all__ = ["main"]


@click.group()
@click.version_option(plait.__version__, prog_name="plait")
def main() -> None:
    """plait: parallel workflows as functional expressions."""
