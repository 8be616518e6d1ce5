"""A Python app's walltime: AppTimeout raised in the app's own thread, as Parsl does it.

The exception is sent with ``PyThreadState_SetAsyncExc`` and raised between two bytecodes of
that thread, so it must reach only the call it limits: the timer sends it only while the
call runs, and a sent exception not yet raised when the call ends is taken in place, never
left for the thread's next task.

It is never withdrawn with ``PyThreadState_SetAsyncExc(thread, NULL)``: before CPython 3.13
that sets the interpreter's "async exception pending" signal, which only a delivered
exception clears. Left set, it makes the first Python call under a trace function (a
debugger, coverage, hypothesis explaining a failure) spin forever at 100 % CPU on 3.11.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from plait.compat.parsl.app.errors import AppTimeout

__all__ = ["call_within"]

T = TypeVar("T")


def call_within(seconds: float, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)``, with a bare AppTimeout raised in it once it has run ``seconds``.

    A call blocked in C (a long sleep) is interrupted when that C call returns.
    """
    limit = _Limit(threading.get_ident())
    timer = threading.Timer(seconds, limit.expire)
    timer.daemon = True
    try:
        timer.start()
        return fn(*args, **kwargs)
    finally:
        timer.cancel()
        limit.end()


class _Drained(BaseException):
    """Sent in place of a pending AppTimeout, to be raised and caught at once."""


class _Limit:
    """One call's limit: the lock orders the timer's one send against the call's end."""

    __slots__ = ("_lock", "_running", "_sent", "_thread")

    def __init__(self, thread: int) -> None:
        self._thread = thread
        self._lock = threading.Lock()
        self._running = True
        self._sent = False

    def expire(self) -> None:
        """The timer's: send AppTimeout into the call's thread, if the call still runs."""
        with self._lock:
            if self._running:
                _send(self._thread, AppTimeout)
                self._sent = True

    def end(self) -> None:
        """The call's thread's, as the call ends: from here nothing is sent, and nothing stays pending."""
        with self._lock:
            self._running = False
            sent = self._sent
        if sent:
            _take_pending(self._thread)


def _take_pending(thread: int) -> None:
    """Raise here, and catch, whatever was sent into this thread and not yet raised.

    An AppTimeout may still be pending (the call returned just as the timer fired, or another
    thread's delivery cleared the signal that would have raised it): it is replaced by
    ``_Drained``, which the loop below raises at its first bytecode boundary.
    """
    try:
        _send(thread, _Drained)
        while True:
            pass
    except _Drained:
        return


def _send(thread: int, error: type[BaseException]) -> None:
    if ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread), ctypes.py_object(error)) != 1:
        raise SystemError(f"no Python thread {thread} to raise {error.__name__} in")
