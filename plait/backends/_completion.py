"""Telling the runtime each task's end by a call, instead of an asyncio future per task.

A future per task costs the driver a few µs of a no-op's ~20: the future, its done
callback, and a Handle in the loop's ready queue for each result. An executor with
``submit_calling`` takes the runtime's callback with each task instead. What it needs of
a future to keep its books (``done``, ``cancel``, ``set_result``) a ``Completion`` does;
the ends of one turn of the loop are told together at the next (or sooner, see below), in
the order they came, never from inside the executor's own code (the callback may submit
and cancel).

The callback is one per runtime and executor, told the tasks that ended in one turn
together, each by its ``tag`` (the runtime's node) with its result: no callable made, and
no call made, per task. An executor that reads its results in bursts tells a burst's ends
as soon as the burst is read (``Endings.tell``), outside its own books, so what they free
is sent in that turn, not the next.

The other way, an executor that batches what it is submitted (``BatchingExecutor``) is
told when a drain of the runtime that submitted to it is over: it sends then, in the turn
the tasks were submitted, and a drain's many submissions still go together.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from plait.backends._task import TaskResult, TaskSpec

__all__ = ["BatchingExecutor", "CallingExecutor", "Completion", "Done", "Ended", "Endings", "NextTurn"]

Ended = list[tuple[Any, TaskResult | None]]  # tasks' tags, each with its result, or None when it was cancelled
Done = Callable[[Ended], None]


@runtime_checkable
class CallingExecutor(Protocol):
    """An executor that can tell each task's end to ``done`` rather than through a future: as
    ``(tag, result)`` in the list ``done`` is given, once a task, on the runtime's loop, never
    from within ``submit_calling``."""

    def submit_calling(self, spec: TaskSpec, done: Done, tag: Any) -> None: ...


@runtime_checkable
class BatchingExecutor(Protocol):
    """An executor that holds the tasks it is submitted to send them together: a runtime
    calls ``send_submitted`` at the end of each drain in which it submitted to it, on its
    loop, so they can leave in the turn of the loop they were submitted in, and together."""

    def send_submitted(self) -> None: ...


class NextTurn:
    """``call`` at the next turn of the loop, scheduled at most once, or made now instead
    (what was scheduled is then dropped): what one turn gathers is dealt with together, and
    no sooner than someone says it may be."""

    __slots__ = ("_call", "_scheduled")

    def __init__(self, call: Callable[[], None]) -> None:
        self._call = call
        self._scheduled: asyncio.Handle | None = None

    def schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._scheduled is None:
            self._scheduled = loop.call_soon(self._scheduled_call)

    def now(self) -> None:
        if self._scheduled is not None:
            self._scheduled.cancel()
            self._scheduled = None
        self._call()

    def _scheduled_call(self) -> None:
        self._scheduled = None
        self._call()


class Endings:
    """The task ends one executor has to tell, told together at the next turn of the loop:
    one call of each callback, with its tasks' ends in the order they came. An executor
    that tells them itself sooner sets ``held`` while it adds them (none is scheduled
    then) and calls ``tell``, which lets go of them."""

    __slots__ = ("_ended", "_next_turn", "held", "tell")

    def __init__(self) -> None:
        self._ended: dict[Done, Ended] = {}
        self._next_turn = NextTurn(self._tell)
        self.held = False
        # Tell every end added so far, now, and hold them no more: only from where the
        # callbacks may submit and cancel (not inside the executor's own bookkeeping).
        # Told now, so not again at the next turn; NextTurn's own call, not one around it.
        self.tell: Callable[[], None] = self._next_turn.now

    def add(self, done: Done, tag: Any, result: TaskResult | None) -> None:
        ended = self._ended.get(done)
        if ended is None:
            ended = self._ended[done] = []
            if not self.held:
                self._next_turn.schedule(asyncio.get_running_loop())
        ended.append((tag, result))

    def _tell(self) -> None:
        self.held = False
        told, self._ended = self._ended, {}
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

    def end(self, result: TaskResult) -> None:
        """``set_result``, unless the task has ended already (cancelled, or failed): one call
        where an executor's books would make three, per result."""
        if not self._ended:
            self._ended = True
            self._endings.add(self._done, self._tag, result)
