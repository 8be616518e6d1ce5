"""What a report shows: a run's summary, read through ``plait.monitoring``."""

from __future__ import annotations

import os

from plait.monitoring import Database, RunSummary

__all__ = ["load"]


def load(path: str | os.PathLike[str], run: int | None = None) -> RunSummary:
    """Read run ``run`` (default: the latest) of the monitoring db at ``path``."""
    with Database(path, run) as db:
        return db.summary()
