"""Turning calls, values and exceptions into bytes for another process, and back.

Exceptions travel with their traceback (tblib), so ``result()`` in the driver shows
the frames of the worker; one that cannot be pickled becomes a RemoteError with the
same type name, message and traceback text.
"""

from __future__ import annotations

import inspect
import pickle
import traceback
from collections.abc import Callable
from typing import Any, Protocol

import cloudpickle
from tblib import Traceback

from plait.backends._errors import RemoteError
from plait.backends._functions import dumps_function_payload
from plait.backends._task import TaskResult, TaskSpec
from plait.backends._usage import TaskUsage

__all__ = [
    "Ran",
    "decode_result",
    "dumps",
    "dumps_call",
    "dumps_error",
    "dumps_function",
    "error_text",
    "loads",
    "loads_call",
    "loads_error",
    "loads_function",
]


def dumps(value: Any) -> bytes:
    """Pickle ``value``: plain pickle when it can (fast), cloudpickle when it must."""
    try:
        return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError):
        return bytes(cloudpickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))


loads = pickle.loads


def loads_function(payload: bytes) -> Callable[..., Any]:
    """The function ``dumps_function`` pickled: what a worker (and ``plait debug``) calls."""
    return pickle.loads(payload)  # type: ignore[no-any-return]


def loads_call(payload: bytes) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The arguments ``dumps_call`` pickled, as a worker (and ``plait debug``) reads them."""
    args, kwargs = pickle.loads(payload)
    return args, kwargs


def dumps_function(spec: TaskSpec) -> bytes:
    """The task's function, by value when it lives in ``__main__`` or a closure (see _functions)."""
    try:
        return dumps_function_payload(spec.fn)
    except Exception as error:
        raise TypeError(f"{spec.name}: the function cannot be pickled to send to a worker: {error}") from error


def dumps_call(spec: TaskSpec) -> bytes:
    """The task's arguments; an unpicklable one is named in the error."""
    kwargs = spec.kwargs
    try:  # a copy only of a mapping that is not a dict: a worker gets a dict
        call = (spec.args, kwargs if type(kwargs) is dict else dict(kwargs))
        payload = dumps(call)
        # Pickle's reference into our __main__, which a worker's is not: by value. Only on the
        # call's way out: a result that names the driver's __main__ must stay a reference to it.
        if b"__main__" in payload:
            payload = bytes(cloudpickle.dumps(call, protocol=pickle.HIGHEST_PROTOCOL))
        return payload
    except Exception as error:
        raise TypeError(_unpicklable_argument(spec, error)) from error


def _unpicklable_argument(spec: TaskSpec, error: Exception) -> str:
    try:
        bound = inspect.signature(spec.fn).bind(*spec.args, **spec.kwargs).arguments
    except (TypeError, ValueError):
        bound = {f"#{i}": a for i, a in enumerate(spec.args)} | dict(spec.kwargs)
    for name, value in bound.items():
        try:
            dumps(value)
        except Exception as inner:
            return (
                f"{spec.name}(): argument {name!r} ({type(value).__qualname__}) cannot be "
                f"pickled to send to a worker: {inner}"
            )
    return f"{spec.name}(): its arguments cannot be pickled to send to a worker: {error}"


def dumps_error(error: BaseException) -> bytes:
    """An exception with its traceback; a RemoteError when it does not pickle."""
    try:
        tb = Traceback(error.__traceback__).as_dict() if error.__traceback__ else None
        payload = bytes(cloudpickle.dumps((error, tb), protocol=pickle.HIGHEST_PROTOCOL))
        pickle.loads(payload)  # an exception whose __init__ differs from its args fails here
        return payload
    except Exception:
        text = "".join(traceback.format_exception(error))  # it copes with a __str__ that raises
        remote = RemoteError(type(error).__qualname__, error_text(error), text)
        return pickle.dumps((remote, None), protocol=pickle.HIGHEST_PROTOCOL)


def error_text(error: BaseException) -> str:
    """``str(error)``, or why there is none: an exception's ``__str__`` is user code too.

    >>> class Mute(Exception):
    ...     def __str__(self) -> str:
    ...         raise RuntimeError("no")
    >>> error_text(Mute())
    '<its __str__ raised RuntimeError>'
    """
    try:
        return str(error)
    except Exception as failure:
        return f"<its __str__ raised {type(failure).__name__}>"


class Ran(Protocol):
    """How a task ran: what a ``_records.Result`` and a zmq ``ResultRow`` both say."""

    @property
    def ok(self) -> bool: ...
    @property
    def started(self) -> float: ...
    @property
    def ended(self) -> float: ...
    @property
    def cpu_seconds(self) -> float | None: ...
    @property
    def peak_rss(self) -> int | None: ...


def decode_result(spec: TaskSpec, ran: Ran, payload: bytes | memoryview, worker: str) -> TaskResult:
    """The TaskResult of what a worker sent back for ``spec``: how it ran, and its pickled
    value or error (a view into the message that brought it will do).

    A value that cannot be unpickled here (its class is not importable in the driver,
    say) is that task's failure, not the executor's.
    """
    cpu, peak_rss = ran.cpu_seconds, ran.peak_rss
    usage = None if cpu is None or peak_rss is None else TaskUsage(cpu, peak_rss)
    try:
        value, error = (loads(payload), None) if ran.ok else (None, loads_error(payload))
    except Exception as failure:
        value, error = None, TypeError(f"{spec.name}: its result could not be unpickled in the driver: {failure}")
    return TaskResult(spec.task_id, value, error, worker, ran.started, ran.ended, usage)  # by position: once a task


def loads_error(payload: bytes | memoryview) -> BaseException:
    """The exception ``dumps_error`` sent, carrying the remote traceback."""
    try:
        error, tb = pickle.loads(payload)
    except Exception as failure:  # e.g. the exception's class is not importable here
        return RemoteError("unknown", f"the remote exception could not be read: {failure}", "")
    if tb is not None:
        error = error.with_traceback(Traceback.from_dict(tb).as_traceback())
    return error  # type: ignore[no-any-return]
