"""Counting the turns of an asyncio loop, for tests that pin how many a task takes."""

from __future__ import annotations

from typing import Any


class Turns:
    """Counts the turns of a loop (its ``_run_once``)."""

    def __init__(self, loop: Any) -> None:
        self.count = 0
        run_once = loop._run_once

        def counted() -> None:
            self.count += 1
            run_once()

        loop._run_once = counted
