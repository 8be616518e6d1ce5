"""The future a Runtime gives for a submitted Expr: a concurrent.futures.Future apps take as an argument."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any, NoReturn, SupportsIndex, TypeVar

from returns.result import Result

from plait._tracebacks import user_facing
from plait.dsl import Expr
from plait.runtime._debug import debug_error
from plait.runtime._display import future_repr
from plait.runtime._interpreter import Root

if TYPE_CHECKING:
    from plait.runtime._runtime import Runtime

__all__ = ["PlaitFuture"]

T = TypeVar("T")

_Future = concurrent.futures.Future

# Taken to make a future's base, and to resolve a future that has none: so a future is
# either resolved before its base is made (and the base made resolved), or resolved by it.
_MAKING = threading.Lock()


class PlaitFuture(concurrent.futures.Future[T]):
    """The future of a submitted Expr. Pass it to apps like the value it will hold.

    ``cancel()`` stops the work that only this future needs, kills what of it is
    running, and fails what depends on it with ``CancelledError``.
    """

    # Why not ``super().__init__()`` here: its ``threading.Condition`` is most of a future's
    # cost (1.5 of 2.1 µs; its use another µs in each of ``set_result`` and ``result``), and
    # the seed's eager idiom makes one future per task, which mostly ends before anyone waits
    # on it. Such a future ends and is read through fields of its own. The base class's
    # fields, whatever they are in this Python, are made by its own ``__init__`` when one is
    # first read (_BaseField): by a base method (a wait, a callback, a cancel) or by
    # ``concurrent.futures``' functions, which read them directly (``wait``, ``as_completed``);
    # the outcome so far is then given to the base by its public methods. Nothing here reads
    # or writes them, and our own are named so that no Python's are likely to be the same.
    def __init__(self, expr: Expr[T], runtime: Runtime) -> None:
        self._plait_based = False  # whether the base class's fields are made
        # The outcome, set once the future has ended (before _plait_ended), for done() and
        # result() to read without a lock: an ended future stays ended.
        self._plait_ended = False
        self._plait_value: T | None = None
        self._plait_error: BaseException | None = None
        self.__plait_expr__ = expr
        self._runtime = runtime
        self._root: Root | None = None
        # Set once cancel() succeeds, before it looks for the root: the runtime's loop reads it
        # at each admission without taking the future's lock (two per submission otherwise).
        self._cancelling = False
        # Locked while result() waits for an end that nothing else watches; opened by the end.
        self._plait_waiter: threading.Lock | None = None

    def _resolved_unwatched(self, result: Any, exception: BaseException | None) -> bool:
        """Resolve this future if nothing waits on it or holds its lock (its base is not
        made); False if it is, or if it has ended, for the base class's way (and its error)."""
        with _MAKING:
            if self._plait_based or self._plait_ended:
                return False
            self._plait_value = result
            self._plait_error = exception
            self._plait_ended = True
            if self._plait_waiter is not None:
                self._plait_waiter.release()
        return True

    def set_result(self, result: T) -> None:
        if not self._resolved_unwatched(result, None):
            super().set_result(result)
            self._plait_value = result  # how the base has ended, read as done() and result() read it
            self._plait_ended = True

    def done(self) -> bool:
        return self._plait_ended or (self._plait_based and super().done())

    @property
    def expr(self) -> Expr[T]:
        return self.__plait_expr__

    def debug(self, *, post_mortem: bool = True) -> Result[T, BaseException]:
        """Call the task this future failed from again, here, under pdb's post-mortem.

        With its arguments as it got them (for a failed dependency, the task that
        started it); ``post_mortem=False`` only reproduces. ``Failure(error)`` if it
        fails again. ``plait debug run.db`` does the same from a monitoring db.
        """
        if not self.done():
            raise ValueError("debug(): the future has not finished")
        error = self.exception()
        if error is None:
            raise ValueError("debug(): the future did not fail")
        return debug_error(error, post_mortem=post_mortem)

    @user_facing
    def result(self, timeout: float | None = None) -> T:
        if not self._plait_ended:
            timeout = self._wait_unwatched(timeout)
        # Ended well (_plait_ended is set last): the value, without the Condition.
        if self._plait_ended and self._plait_error is None:
            return self._plait_value  # type: ignore[return-value]  # a T, set before _plait_ended
        return super().result(timeout)

    def _wait_unwatched(self, timeout: float | None) -> float | None:
        """Wait for the end on a lock of our own while nothing else watches (the base is not
        made): a round trip's ``run`` would make the base's Condition, wait on a new lock in
        it, and the loop thread enter it and notify. What is left of ``timeout`` for the base."""
        with _MAKING:
            if self._plait_based or self._plait_ended:
                return timeout
            waiter = self._plait_waiter
            if waiter is None:
                waiter = self._plait_waiter = threading.Lock()
                waiter.acquire()
        if timeout is None:
            ended = waiter.acquire()
        else:  # as the base's Condition waits: no wait at all for a timeout at or below 0
            ended = waiter.acquire(timeout=timeout) if timeout > 0 else waiter.acquire(False)
        if not ended:
            return 0  # the time is up: the base says so, or how it ended meanwhile
        waiter.release()  # open for whoever else waits on it
        return timeout

    def set_exception(self, exception: BaseException | None) -> None:
        # A shutdown fails the work left with a bare CancelledError; this future knows its
        # work and its runtime, so it says what happened, to its caller and to whatever
        # awaits it (an app of another runtime gets this error as it is).
        if isinstance(exception, concurrent.futures.CancelledError) and not exception.args and self._runtime._closed:
            exception = concurrent.futures.CancelledError(
                f"the Runtime running {self.expr.label()} was shut down before it finished "
                "(its with block ended or shutdown() was called), which cancels the work left"
            )
        if not self._resolved_unwatched(None, exception):
            super().set_exception(exception)
            self._plait_error = exception
            self._plait_ended = True

    def cancel(self) -> bool:
        if not super().cancel():
            return False
        self._plait_error = concurrent.futures.CancelledError()
        self._plait_ended = True
        self._cancelling = True
        root = self._root
        if root is not None:
            self._runtime._call_soon(self._runtime._interpreter.cancel, root)
        return True

    def __await__(self) -> Generator[Any, None, T]:
        """``await future`` in async code or a notebook cell, on any event loop."""
        return asyncio.wrap_future(self).__await__()

    def __reduce_ex__(self, protocol: SupportsIndex) -> NoReturn:
        raise TypeError(
            f"the future of {self.expr.label()} cannot be pickled: it is work running in this process's "
            "Runtime. Pickle its Expr (future.expr), which a Runtime elsewhere can run, or its result"
        )

    def __repr__(self) -> str:
        return future_repr(self, self.expr.label(), self._root)


class _BaseField:
    """A field of the base class read before the base has made it: makes it, and reads it.

    Not a data descriptor: the base's ``__init__`` writes its fields to the instance, which
    then hides this one, so a made field is read as any other.
    """

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, future: PlaitFuture[Any] | None, owner: type | None = None) -> Any:
        if future is None:
            return self
        with _MAKING:
            if not future._plait_based:
                _Future.__init__(future)
                if future._plait_ended:  # resolved while nothing watched: the base ends the same way
                    if future._plait_error is None:
                        _Future.set_result(future, future._plait_value)
                    else:
                        _Future.set_exception(future, future._plait_error)
                elif future._plait_waiter is not None:  # result() waits on it: the base's end opens it
                    _Future.add_done_callback(future, _opener(future._plait_waiter))
                future._plait_based = True
        return future.__dict__[self.name]


def _opener(waiter: threading.Lock) -> Callable[[concurrent.futures.Future[Any]], None]:
    return lambda _: waiter.release()


# The fields this Python's Future has, as its own __init__ makes them.
for _name in vars(_Future()):
    setattr(PlaitFuture, _name, _BaseField(_name))
