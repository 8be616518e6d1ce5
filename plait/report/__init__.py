"""Reports of runs from their monitoring db: ``plait report run.db -o report.html``.

This reads the SQLite file a ``Runtime(monitor="run.db")`` wrote; it is no part of
running a workflow.
"""

from __future__ import annotations

import os
from pathlib import Path

from plait.monitoring import RunSummary
from plait.report._data import load
from plait.report._html import render

__all__ = ["load", "render", "write_report"]


def write_report(db: str | os.PathLike[str], out: str | os.PathLike[str], run: int | None = None) -> RunSummary:
    """Write the HTML report of run ``run`` (default: the latest) of ``db`` to ``out``."""
    data = load(db, run)
    Path(out).write_text(render(data), encoding="utf-8")
    return data
