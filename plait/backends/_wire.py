"""Turning calls, values and exceptions into bytes for another process, and back.

Exceptions travel with their traceback (tblib), so ``result()`` in the driver shows
the frames of the worker; one that cannot be pickled becomes a RemoteError with the
same type name, message and traceback text.
"""

from __future__ import annotations

import inspect
import pickle
import struct
import traceback
from collections.abc import Callable
from typing import Any

import cloudpickle
from tblib import Traceback

from plait.backends._errors import RemoteError
from plait.backends._functions import dumps_function_payload
from plait.backends._task import TaskResult, TaskSpec
from plait.backends._usage import usage_of

# (task_id, name, fn_key, function payload or None if sent before, call payload)
WireTask = tuple[int, str, bytes, bytes | None, bytes]
# (task_id, ok, value or error payload, started, ended, (cpu_seconds, peak_rss) or None);
# the payload may be a view into the message that brought it
WireResult = tuple[int, bool, bytes | memoryview, float, float, tuple[float, int] | None]

__all__ = [
    "HEADER",
    "WireResult",
    "WireTask",
    "decode_result",
    "dumps",
    "dumps_call",
    "dumps_error",
    "dumps_function",
    "error_text",
    "frame",
    "loads",
    "loads_call",
    "loads_error",
    "loads_function",
]

HEADER = struct.Struct("<I")


def frame(payload: bytes) -> bytes:
    """``payload`` preceded by its length, for a byte stream."""
    return HEADER.pack(len(payload)) + payload


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
    try:
        return dumps((spec.args, dict(spec.kwargs)))
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


def decode_result(spec: TaskSpec, result: WireResult, worker: str) -> TaskResult:
    """The TaskResult of what a worker sent back for ``spec``.

    A value that cannot be unpickled here (its class is not importable in the driver,
    say) is that task's failure, not the executor's.
    """
    _, ok, payload, started, ended, used = result
    usage = usage_of(used)
    try:
        value, error = (loads(payload), None) if ok else (None, loads_error(payload))
    except Exception as failure:
        value, error = None, TypeError(f"{spec.name}: its result could not be unpickled in the driver: {failure}")
    return TaskResult(spec.task_id, value=value, error=error, worker=worker, started=started, ended=ended, usage=usage)


def loads_error(payload: bytes | memoryview) -> BaseException:
    """The exception ``dumps_error`` sent, carrying the remote traceback."""
    try:
        error, tb = pickle.loads(payload)
    except Exception as failure:  # e.g. the exception's class is not importable here
        return RemoteError("unknown", f"the remote exception could not be read: {failure}", "")
    if tb is not None:
        error = error.with_traceback(Traceback.from_dict(tb).as_traceback())
    return error  # type: ignore[no-any-return]
