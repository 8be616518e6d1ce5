"""``plait report`` and ``plait graph``: look at a run afterwards, or at a graph before."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import click

from plait.report import write_report

__all__ = ["graph", "report"]

_RENDERED = {".svg", ".png", ".pdf"}


@click.command()
@click.argument("db", type=click.Path(dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False), default="report.html", show_default=True)
@click.option("--run", "run_number", type=click.IntRange(min=1), help="Which run in DB [default: the latest].")
def report(db: str, output: str, run_number: int | None) -> None:
    """Write a self-contained HTML report of a run from its monitoring DB.

    DB is the file a Runtime(monitor="run.db") or plait run --monitor wrote. The page
    has a timeline of tasks per worker, per-app counts and durations, the failures
    with their tracebacks, the memo hit rate, CPU and memory charts per node, and per
    app the peak memory and CPU efficiency of its tasks, with the memory outliers.
    """
    try:
        data = write_report(db, output, run_number)
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    failed = data.states.get("failed", 0)
    click.echo(f"wrote {output}: run {data.run}, {data.tasks} tasks, {failed} failed")


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
    from plait.runtime._run_cli import load_expr

    text = load_expr(target).to_dot(target.rpartition(":")[2])
    if output is None:
        click.echo(text, nl=False)
        return
    path = Path(output)
    if path.suffix in _RENDERED:
        dot = shutil.which("dot")
        if dot is not None:
            subprocess.run(
                [dot, f"-T{path.suffix[1:]}", "-o", str(path)], input=text, text=True, check=True, timeout=600
            )
            click.echo(f"wrote {path}")
            return
        path = path.with_suffix(".dot")
        click.echo(f"Graphviz's dot is not installed: writing DOT text to {path} instead", err=True)
    path.write_text(text, encoding="utf-8")
    click.echo(f"wrote {path}")
