"""``plait graph path.py:name``: draw the graph of an Expr before running it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import click

from plait.runtime._run_cli import load_expr

__all__ = ["graph"]

_RENDERED = {".svg", ".png", ".pdf"}


@click.command()
@click.argument("target")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    help="File to write: .svg, .png or .pdf, or .dot [default: stdout].",
)
def graph(target: str, output: str | None) -> None:
    """Draw the graph of the Expr TARGET (path.py:name or package.module:name).

    .svg, .png and .pdf are drawn by Graphviz's dot when it is installed; without it
    the DOT text is written next to them (name.dot) instead.
    """
    text = load_expr(target).to_dot(target.rpartition(":")[2])
    if output is None:
        click.echo(text, nl=False)
        return
    path = Path(output)
    if path.suffix in _RENDERED:
        dot = shutil.which("dot")
        if dot is not None:
            drawn = subprocess.run(
                [dot, f"-T{path.suffix[1:]}", "-o", str(path)], input=text, text=True, timeout=600, check=False
            )
            if drawn.returncode:  # it said why on stderr
                raise click.ClickException(f"Graphviz's dot could not write {path} (exit status {drawn.returncode})")
            click.echo(f"wrote {path}")
            return
        path = path.with_suffix(".dot")
        click.echo(f"Graphviz's dot is not installed: writing DOT text to {path} instead", err=True)
    path.write_text(text, encoding="utf-8")
    click.echo(f"wrote {path}")
