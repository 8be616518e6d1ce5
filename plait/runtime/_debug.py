"""Calling a failed task again where you sit, under pdb's post-mortem.

The interpreter hangs the call of a task that failed for good on its exception, so a
live session's ``future.debug()`` finds it; ``plait debug`` reads the same call back
from a monitoring db (``EventLog`` keeps it) long after the run.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Mapping
from typing import Any

from returns.result import Failure, Result, Success

from plait.backends import TaskSpec
from plait.runtime._errors import root_cause

__all__ = ["call_text", "debug_error", "remember_call", "rerun"]

_ATTRIBUTE = "__plait_failed_call__"


class _FailedCall:
    """Holds a failed call on its exception. It pickles to an empty holder: an exception
    sent elsewhere must not drag the task's arguments (or fail on them) along."""

    __slots__ = ("spec",)

    def __init__(self, spec: TaskSpec | None) -> None:
        self.spec = spec

    def __reduce__(self) -> tuple[type[_FailedCall], tuple[None]]:
        return (_FailedCall, (None,))


def remember_call(error: BaseException, spec: TaskSpec) -> None:
    """Keep ``spec`` with ``error``, the exception its task failed with for good."""
    with contextlib.suppress(AttributeError, TypeError):  # an exception class that refuses attributes
        setattr(error, _ATTRIBUTE, _FailedCall(spec))


def debug_error(error: BaseException, *, post_mortem: bool = True) -> Result[Any, BaseException]:
    """Call again, here, the task ``error`` (or the failure it depends on) started from."""
    root = root_cause(error)
    holder = getattr(root, _ATTRIBUTE, None)
    spec = holder.spec if isinstance(holder, _FailedCall) else None
    if spec is None:
        raise ValueError(
            f"{type(root).__name__}: {root} did not come from a task's call (a map or bind function, "
            "a cancellation or the runtime raised it): there is no call to run again"
        )
    print(f"{spec.name} failed with {type(root).__name__}: {root}")
    print(f"re-running {call_text(spec.fn, spec.args, spec.kwargs)}")
    return rerun(spec.fn, spec.args, spec.kwargs, post_mortem=post_mortem)


def rerun(
    fn: Callable[..., Any], args: tuple[Any, ...], kwargs: Mapping[str, Any], *, post_mortem: bool
) -> Result[Any, BaseException]:
    """``fn(*args, **kwargs)`` here; on an exception, pdb's post-mortem on it first when asked."""
    try:
        return Success(fn(*args, **kwargs))
    except Exception as error:
        if error.__traceback__ is not None:  # start at the task's own frame, not this one
            error = error.with_traceback(error.__traceback__.tb_next)
        if post_mortem:
            import pdb  # only here: ~3.5 ms of every driver's start-up otherwise

            pdb.post_mortem(error.__traceback__)
        return Failure(error)


def call_text(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: Mapping[str, Any], width: int = 200) -> str:
    """The call as a person reads it, each argument by name with its value.

    >>> def f(x, y=2): ...
    >>> call_text(f, (1,), {"y": [3]})
    'f(x=1, y=[3])'
    """
    try:
        bound: Mapping[str, Any] = inspect.signature(fn).bind(*args, **kwargs).arguments
        parts = [f"{name}={_short(value, width)}" for name, value in bound.items()]
    except (TypeError, ValueError):  # no signature, or one the arguments do not fit
        parts = [_short(a, width) for a in args] + [f"{k}={_short(v, width)}" for k, v in kwargs.items()]
    return f"{getattr(fn, '__name__', 'task')}({', '.join(parts)})"


def _short(value: Any, width: int) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 1] + "…"
