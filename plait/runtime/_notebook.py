"""What plait does differently inside a Jupyter kernel.

Two things. The progress bar becomes one cell output updated in place (a display with an
id), where a terminal gets rich's Live: the kernel routes output from the runtime's
thread to the cell that is running. And interrupting a cell cancels the work that cell
submitted: IPython's ``pre_run_cell`` starts a list of the cell's futures and
``post_run_cell`` cancels those still unfinished when the cell ended interrupted, so the
runtime stays usable and its workers free for the next cell.

IPython is never imported here: if the user's process has not loaded it, there is no
kernel, and nothing in this module does anything.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import io
import sys
import weakref
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import RenderableType

__all__ = ["NotebookScreen", "in_kernel", "track"]

# How an interrupt ends a cell: KeyboardInterrupt, or CancelledError in a cell that was in
# an ``await`` (ipykernel delivers it only once the await is over: ipython/ipykernel#881).
_INTERRUPTED = (KeyboardInterrupt, asyncio.CancelledError)
_WIDTH = 100
_PRE = '<pre style="white-space: pre; line-height: 1.3; font-family: monospace">{code}</pre>'


def _shell() -> Any:
    ipython = sys.modules.get("IPython")
    return ipython.get_ipython() if ipython is not None else None


def in_kernel() -> bool:
    """True in a Jupyter kernel (a notebook, JupyterLab, VS Code), False in a terminal IPython."""
    return hasattr(_shell(), "kernel")


class NotebookScreen:
    """Draws ``renderable`` as one notebook output, replaced on each refresh: Live's part in a cell.

    The output belongs to the cell that was running when it started; when another cell runs,
    the next refresh starts a new output there.
    """

    def __init__(self, renderable: RenderableType) -> None:
        self.renderable = renderable
        self._handle: Any = None
        self._cell: object = None

    def start(self) -> None:
        from IPython import display as ipython  # loaded: we are in its kernel

        show: Any = ipython.display  # untyped; it returns the handle that updates this output
        self._cell = _running_cell()
        self._handle = show(self._bundle(), raw=True, display_id=True)

    def refresh(self) -> None:
        if self._handle is None:
            return
        if _running_cell() != self._cell:  # the user ran another cell: draw there, leave the old output be
            self.start()
        else:
            self._handle.update(self._bundle(), raw=True)

    def stop(self) -> None:
        if self._handle is not None and _running_cell() == self._cell:  # its last count, where it was
            self._handle.update(self._bundle(), raw=True)
        self._handle = None

    def _bundle(self) -> dict[str, str]:
        """The renderable as text and as HTML with its colours: a frontend shows the richest it can."""
        from rich.console import Console

        console = Console(file=io.StringIO(), record=True, width=_WIDTH, force_terminal=True, force_jupyter=False)
        console.print(self.renderable)
        text = console.export_text(clear=False).rstrip("\n")
        return {"text/plain": text, "text/html": console.export_html(inline_styles=True, code_format=_PRE)}


def _running_cell() -> object:
    """The id of the execute request the kernel is running (or last ran)."""
    header = getattr(_shell(), "parent_header", None) or {}
    return header.get("header", {}).get("msg_id")


class _Cell:
    """The futures the running cell submitted, while it runs."""

    def __init__(self) -> None:
        self.futures: weakref.WeakSet[concurrent.futures.Future[Any]] = weakref.WeakSet()

    def begin(self, *info: object) -> None:
        self.futures = weakref.WeakSet()

    def end(self, result: Any) -> None:
        futures, self.futures = self.futures, weakref.WeakSet()
        if isinstance(getattr(result, "error_in_exec", None), _INTERRUPTED):
            for future in list(futures):
                future.cancel()


_cells: dict[int, _Cell] = {}  # by id(shell): one kernel has one shell, tests may make more


def track(future: concurrent.futures.Future[Any]) -> None:
    """Remember ``future`` as the running cell's, if there is a cell: its interrupt cancels it."""
    shell = _shell()
    if shell is None or not hasattr(shell, "events"):
        return
    cell = _cells.get(id(shell))
    if cell is None:
        cell = _cells[id(shell)] = _Cell()
        shell.events.register("pre_run_cell", cell.begin)
        shell.events.register("post_run_cell", cell.end)
    cell.futures.add(future)
