"""The future a Runtime gives for a submitted Expr: a concurrent.futures.Future apps take as an argument."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Generator
from concurrent.futures._base import CANCELLED, CANCELLED_AND_NOTIFIED, FINISHED, PENDING  # the base class's states
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

_ENDED = frozenset({CANCELLED, CANCELLED_AND_NOTIFIED, FINISHED})

# Taken to make a future's Condition, and to resolve a future that has none: so a future
# is either resolved before its Condition exists, or resolved under it (see PlaitFuture).
_MAKING = threading.Lock()


class PlaitFuture(concurrent.futures.Future[T]):
    """The future of a submitted Expr. Pass it to apps like the value it will hold.

    ``cancel()`` stops the work that only this future needs, kills what of it is
    running, and fails what depends on it with ``CancelledError``.
    """

    # Why no ``super().__init__()``: its ``threading.Condition`` is most of a future's cost
    # (1.5 of 2.1 µs; its use another µs in each of ``set_result`` and ``result``), and the
    # seed's eager idiom makes one future per task, which mostly ends before anyone waits
    # on it. So the Condition is made when first asked for (a wait, a callback, a cancel,
    # ``concurrent.futures.wait``: the base class's methods all read ``_condition``), and a
    # future that ends before that is resolved without one. ``_MAKING`` orders the two.
    # The fields are the base class's (tests/runtime/test_future.py checks them).
    def __init__(self, expr: Expr[T], runtime: Runtime) -> None:
        self._made: threading.Condition | None = None
        self._state = PENDING
        self._result: T | None = None
        self._exception: BaseException | None = None
        self._waiters: list[Any] = []
        self._done_callbacks: list[Any] = []
        self.__plait_expr__ = expr
        self._runtime = runtime
        self._root: Root | None = None
        # Set once cancel() succeeds, before it looks for the root: the runtime's loop reads it
        # at each admission without taking the future's lock (two per submission otherwise).
        self._cancelling = False

    @property
    def _condition(self) -> threading.Condition:  # type: ignore[override]  # the base's attribute, made when first read
        made = self._made
        if made is None:
            with _MAKING:
                made = self._made
                if made is None:
                    made = self._made = threading.Condition()
        return made

    def _resolved_unwatched(self, result: Any, exception: BaseException | None) -> bool:
        """Resolve this future if nothing waits on it or holds its lock (it has no Condition
        yet); False if it has one, or has ended, for the base class's way (and its error)."""
        with _MAKING:
            if self._made is not None or self._state != PENDING:
                return False
            self._result = result
            self._exception = exception
            self._state = FINISHED
        return True

    def set_result(self, result: T) -> None:
        if not self._resolved_unwatched(result, None):
            super().set_result(result)

    def done(self) -> bool:
        return self._state in _ENDED  # one read: an ended future stays ended

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
        # Ended well (the state is set last): the value, without the Condition.
        if self._state == FINISHED and self._exception is None:
            return self._result  # type: ignore[return-value]  # a T, set with the state
        return super().result(timeout)

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

    def cancel(self) -> bool:
        if not super().cancel():
            return False
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
