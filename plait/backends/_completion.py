"""Telling the runtime each task's end by a call, instead of an asyncio future per task.

A future per task costs the driver a few µs of a no-op's ~20: the future, its done
callback, and a Handle in the loop's ready queue for each result. An executor with
``submit_calling`` takes the runtime's callback with each task instead. What it needs of
a future to keep its books (``done``, ``cancel``, ``set_result``) a ``Completion`` does;
the ends of one turn of the loop are told together at the next, in the order they came,
never from inside the executor's own code (the callback may submit and cancel).

The callback is one per runtime and executor, told the tasks that ended in one turn
together, each by its ``tag`` (the runtime's node) with its result: no callable made, and
no call made, per task.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from plait.backends._task import TaskResult, TaskSpec

__all__ = ["CallingExecutor", "Completion", "Done", "Ended", "Endings"]

Ended = list[tuple[Any, TaskResult | None]]  # tasks' tags, each with its result, or None when it was cancelled
Done = Callable[[Ended], None]


@runtime_checkable
class CallingExecutor(Protocol):
    """An executor that can tell each task's end to ``done`` rather than through a future: as
    ``(tag, result)`` in the list ``done`` is given, once a task, on the runtime's loop, never
    from within ``submit_calling``."""

    def submit_calling(self, spec: TaskSpec, done: Done, tag: Any) -> None: ...


class Endings:
    """The task ends one executor has to tell, told together at the next turn of the loop:
    one call of each callback, with its tasks' ends in the order they came."""

    __slots__ = ("_ended", "_scheduled")

    def __init__(self) -> None:
        self._ended: dict[Done, Ended] = {}
        self._scheduled = False

    def add(self, done: Done, tag: Any, result: TaskResult | None) -> None:
        ended = self._ended.get(done)
        if ended is None:
            ended = self._ended[done] = []
            if not self._scheduled:
                self._scheduled = True
                asyncio.get_running_loop().call_soon(self._tell)
        ended.append((tag, result))

    def _tell(self) -> None:
        told, self._ended = self._ended, {}
        self._scheduled = False
        for done, ended in told.items():
            try:
                done(ended)
            except Exception as error:  # as a future's callback: reported, and the other callbacks still told
                asyncio.get_running_loop().call_exception_handler(
                    {"message": f"telling tasks' ends to {done!r} raised", "exception": error}
                )


class Completion:
    """One task's end, to be told through ``Endings``: what an executor's books use of a future
    (``_encoding.CallingTask`` is one, with the task it ends)."""

    __slots__ = ("_done", "_ended", "_endings", "_tag")

    def __init__(self, endings: Endings, done: Done, tag: Any) -> None:
        self._endings, self._done, self._tag, self._ended = endings, done, tag, False

    def done(self) -> bool:
        return self._ended

    def cancel(self) -> bool:
        if self._ended:
            return False
        self._ended = True
        self._endings.add(self._done, self._tag, None)
        return True

    def set_result(self, result: TaskResult) -> None:
        if self._ended:
            raise asyncio.InvalidStateError("the task has ended already")
        self._ended = True
        self._endings.add(self._done, self._tag, result)
