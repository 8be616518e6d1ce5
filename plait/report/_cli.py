"""``plait report``: look at a run afterwards."""

from __future__ import annotations

import click

from plait.report import write_report

__all__ = ["report"]


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
