"""``AppFuture``: what calling an app returns, a future with Parsl's face over plait's."""

from __future__ import annotations

import concurrent.futures
import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from plait.compat.parsl.app.futures import DataFuture

__all__ = ["AppFuture"]


class AppFuture(concurrent.futures.Future[Any]):
    """The future of one app call; it has started when the call returns.

    It is a ``concurrent.futures.Future`` (``result(timeout)``, ``done()``,
    ``exception()``, ``add_done_callback``) with Parsl's ``tid``, ``outputs`` (a
    :class:`DataFuture` per ``outputs=`` File), ``stdout`` and ``stderr``. Getting an
    item or a public attribute gives a new AppFuture of that item or attribute.
    Its settled state is copied from the plait future that computes it.
    """

    def __init__(self, tid: int, kwargs: Mapping[str, Any], record: dict[str, Any]) -> None:
        super().__init__()
        self._tid = tid
        self._kwargs = kwargs
        self._record = record
        self._outputs: Sequence[DataFuture] = ()
        self._streams: dict[str, DataFuture] = {}
        self._source: concurrent.futures.Future[Any] | None = None
        self._lift: Callable[[AppFuture, Callable[[Any], Any]], AppFuture] | None = None

    @property
    def tid(self) -> int:
        """The task's id, counted from 0 in each loaded configuration."""
        return self._tid

    @property
    def task_record(self) -> dict[str, Any]:
        """What Parsl documents of a task: ``id``, ``func``, ``func_name``, ``args``, ``kwargs``,
        ``try_id``, ``fail_count``, ``fail_cost``, ``fail_history``."""
        return self._record

    @property
    def outputs(self) -> Sequence[DataFuture]:
        return self._outputs

    @property
    def stdout(self) -> Any:
        """The ``stdout=`` the call was given: a path, or a DataFuture when it was a File."""
        return self._streams.get("stdout", self._kwargs.get("stdout"))

    @property
    def stderr(self) -> Any:
        return self._streams.get("stderr", self._kwargs.get("stderr"))

    def cancel(self) -> bool:
        """Cancel the work if it has not finished: what only it needs stops."""
        source = self._source
        if not super().cancel():
            return False
        if source is not None:
            source.cancel()
        return True

    def _follow(self, source: concurrent.futures.Future[Any]) -> None:
        self._source = source
        source.add_done_callback(self._settle)

    def _settle(self, source: concurrent.futures.Future[Any]) -> None:
        if self.done():  # cancelled here first
            return
        if source.cancelled():
            super().cancel()
            self.set_running_or_notify_cancel()
            return
        error = source.exception()
        if error is not None:
            self.set_exception(error)
        else:
            self.set_result(source.result())

    def __getitem__(self, key: Any) -> AppFuture:
        return self._lifted(operator.itemgetter(key))

    def __getattr__(self, name: str) -> AppFuture:
        # Private and dunder names are this object's own (Future's internals, protocols).
        if name.startswith("_"):
            raise AttributeError(name)
        return self._lifted(operator.attrgetter(name))

    def _lifted(self, get: Callable[[Any], Any]) -> AppFuture:
        lift: Callable[[AppFuture, Callable[[Any], Any]], AppFuture] | None = self.__dict__.get("_lift")
        if lift is None:
            raise TypeError("this AppFuture was not made by an app call")
        return lift(self, get)
