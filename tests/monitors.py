"""A Monitor for tests: it keeps every task event, to ask afterwards what came with some."""

from __future__ import annotations

from typing import Any


class Events:
    """Keeps each event's state and keywords (``Monitor.task_event``'s ``**info``)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, Any]]] = []

    def task_event(self, state: str, task_id: int, name: str, key: bytes, **info: Any) -> None:
        self.seen.append((state, info))

    def close(self) -> None:
        pass

    def kept(self, state: str, keyword: str) -> list[Any]:
        """What the events of ``state`` came with as ``keyword``, in order."""
        return [info[keyword] for seen, info in self.seen if seen == state]
