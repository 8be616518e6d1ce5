"""The progress bar: a monitor that counts tasks as they end and draws a line on a terminal
or in a notebook cell. On the loop thread it only bumps counters; it redraws at most a
few times a second."""

from __future__ import annotations

import asyncio
import functools
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from plait.runtime._notebook import NotebookScreen, in_kernel

if TYPE_CHECKING:  # rich is imported when a bar is drawn: a runtime without one starts ~20 ms sooner
    from rich.console import Console, RenderableType

__all__ = ["ProgressMonitor", "Screen", "clock", "progress_monitor"]

_TERMINAL = {"done", "failed", "cached", "cancelled"}
_REDRAW_EVERY = 0.2
_SHOW_AFTER = 0.5  # seconds of outstanding work before the bar appears


class Screen(Protocol):
    """Where the bar is drawn: rich's Live on a terminal, a cell's output in a notebook."""

    def start(self) -> None: ...

    def refresh(self) -> None: ...

    def stop(self) -> None: ...


class ProgressMonitor:
    """A progress bar on stderr: done, failed, cached and running counts, rate and ETA.

    It shows once work has been outstanding for half a second (a quick call draws
    nothing), redraws on the runtime's loop while tasks are outstanding (a long task
    still ticks the clock), and leaves its last line on the terminal when the work
    settles, so an idle runtime draws nothing. Written to a file or a pipe (a batch
    job's log) it prints only that last line: rich's Live redraws terminals only.
    ``screen`` draws it elsewhere (a notebook's output); ``console`` is for tests.
    """

    def __init__(
        self, console: Console | None = None, screen: Callable[[ProgressMonitor], Screen] | None = None
    ) -> None:
        self._console = console
        self.screen = screen or self._terminal
        self.total = self.done = self.failed = self.cached = self.cancelled = 0
        self.running: set[int] = set()
        self.started = 0.0
        self._busy = False
        self._live: Screen | None = None
        self._drawn = 0.0
        self._tick: asyncio.TimerHandle | None = None

    def task_event(self, state: str, task_id: int, name: str, key: bytes, **info: Any) -> None:
        if state in {"pending", "cached"}:
            self.total += 1
        if state == "dispatched":
            self.running.add(task_id)
        elif state in _TERMINAL or state == "retried":
            self.running.discard(task_id)
            if state != "retried":
                setattr(self, state, getattr(self, state) + 1)
        if not self._busy:
            self._busy = True
            self.started = time.monotonic()
            self._schedule(_SHOW_AFTER)
        elif self._live is not None:
            now = time.monotonic()
            if now - self._drawn >= _REDRAW_EVERY or self.finished >= self.total:  # the last count shows at once
                self._draw(now)

    @functools.cached_property
    def console(self) -> Console:
        from rich.console import Console

        return self._console or Console(stderr=True)

    def _terminal(self, renderable: ProgressMonitor) -> Screen:
        from rich.live import Live

        return Live(renderable, console=self.console, auto_refresh=False, transient=False)

    @property
    def finished(self) -> int:
        return self.done + self.failed + self.cached + self.cancelled

    def _schedule(self, delay: float) -> None:
        self._tick = asyncio.get_running_loop().call_later(delay, self._on_tick)

    def _on_tick(self) -> None:
        self._tick = None
        if self.finished >= self.total and not self.running:
            self._end()  # settled: leave the last line and stop drawing until more work comes
            return
        if self._live is None:
            self._live = self.screen(self)
            self._live.start()
        self._draw(time.monotonic())
        self._schedule(_REDRAW_EVERY * 2)

    def _draw(self, now: float) -> None:
        self._drawn = now
        if self._live is not None:
            self._live.refresh()

    def _end(self) -> None:
        live, self._live = self._live, None
        if live is not None:
            live.stop()
        self._busy = False
        self.total = self.done = self.failed = self.cached = self.cancelled = 0
        self.running.clear()

    def settled(self) -> None:
        """A result is about to reach the program: if nothing else is outstanding, leave the
        last line now, before the program prints what it got."""
        if self.finished >= self.total and not self.running:
            self.close()

    def close(self) -> None:
        if self._tick is not None:
            self._tick.cancel()
            self._tick = None
        self._end()

    def __rich__(self) -> RenderableType:
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        elapsed = max(time.monotonic() - self.started, 1e-9)
        finished = self.finished
        rate = finished / elapsed
        left = self.total - finished
        eta = clock(left / rate) if rate > 0 and left > 0 else "-:--:--"
        line = Text.assemble((f"{finished}/{self.total} ", "bold"), (f"done {self.done} ", "green"))
        # Counts that are zero stay out of the way, so the line fits 80 columns.
        for label, count, style in (("failed", self.failed, "red"), ("cached", self.cached, "cyan")):
            if count:
                line.append(f"{label} {count} ", style)
        line.append(f"running {len(self.running)} ", "yellow")
        line.append(f"· {rate:,.0f}/s · ETA {eta}")
        row = Table.grid(padding=(0, 1))
        row.add_column(width=20)
        row.add_column(no_wrap=True, overflow="ellipsis")
        # Named colours, not rich's default RGB ones: a 16-colour terminal shows those all grey.
        done = "red" if self.failed else "green"
        bar = ProgressBar(
            total=max(self.total, 1), completed=finished, width=20, complete_style="blue", finished_style=done
        )
        row.add_row(bar, line)
        return row


def clock(seconds: float) -> str:
    """``h:mm:ss``.

    >>> clock(3725.4)
    '1:02:05'
    """
    whole = int(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def progress_monitor(progress: bool | None) -> ProgressMonitor | None:
    """The progress bar ``Runtime(progress=...)`` asks for: None means on a terminal or in a notebook.

    In a Jupyter kernel the bar is a cell output, updated in place.
    """
    notebook = in_kernel()
    show = (sys.stderr.isatty() or notebook) if progress is None else progress
    if not show:
        return None
    return ProgressMonitor(screen=NotebookScreen if notebook else None)
