"""What users see of a failure: their own frames, not plait's machinery around them.

A task's error crosses the worker loop, the wire, the interpreter and a future before
it reaches the user; each adds frames that say nothing about their code. They are cut
from the error's traceback (and those of its causes), also from an error plait raised
itself (a ``DependencyError``, a failed shell command, an unknown executor): its message
says what went wrong, and the user's own call of ``run`` is the frame that says where.
``PLAIT_TRACEBACK=full`` keeps them, for debugging plait itself. A helper below every
layer: building a graph raises the user's errors too (a wrong argument to an app, a
non-callable given to ``map``), which :func:`user_facing` marks where the user calls in.
"""

from __future__ import annotations

import concurrent.futures
import functools
import importlib
import os
import types
from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec, TypeVar, overload

__all__ = ["user_facing", "user_frames"]

P = ParamSpec("P")
T = TypeVar("T")
C = TypeVar("C", bound=type)

# plait's own files, those of the futures that carry a result between threads, those of
# the import machinery that runs a file or module `plait run` loads (import_module is in
# importlib's package, the rest frozen), and the __init__ attrs writes for a class (it
# calls the validators, whose own frames say what is checked)
_MACHINERY = (
    str(Path(__file__).resolve().parent) + os.sep,
    str(Path(concurrent.futures.__file__).parent) + os.sep,
    str(Path(importlib.__file__).parent) + os.sep,
    "<frozen importlib.",
    "<attrs generated ",
)
# Frames rebuilt from a worker's traceback (tblib) run this stub: its column positions
# are the stub's, not the user's line's, so they are dropped rather than shown wrong.
_STUB = compile("raise __traceback_maker", "<string>", "exec").co_code


def user_frames(error: BaseException) -> BaseException:
    """``error`` with the tracebacks of it and its causes cut to the user's frames."""
    if os.environ.get("PLAIT_TRACEBACK") == "full":
        return error
    pending, seen = [error], set()
    while pending:  # a loop, not recursion: causes can chain deep
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        current.__traceback__ = _cut(current.__traceback__)
        pending += [e for e in (current.__cause__, current.__context__) if e is not None]
    return error


def _cut(tb: types.TracebackType | None) -> types.TracebackType | None:
    frames = []
    while tb is not None:
        frames.append(tb)
        tb = tb.tb_next
    kept = [f for f in frames if not f.tb_frame.f_code.co_filename.startswith(_MACHINERY)]
    head = None
    for frame in reversed(kept):
        lasti = -1 if frame.tb_frame.f_code.co_code == _STUB else frame.tb_lasti
        head = types.TracebackType(head, frame.tb_frame, lasti, frame.tb_lineno)
    return head


@overload
def user_facing(method: C) -> C: ...


@overload
def user_facing(method: Callable[P, T]) -> Callable[P, T]: ...


def user_facing(method: Callable[P, T]) -> Callable[P, T]:
    """``method``, whose errors reach the caller without plait's frames (its own included:
    an exception re-raised bare keeps the traceback it has, and this one has been cut).

    The one way plait's public callables show a wrong argument at the user's line: put on
    each place a user calls in (on a class: its ``__init__``, where its validators run).
    It costs ~0.2 µs a call; what a build calls per node cuts inline instead, as
    ``App.__call__`` does: a ``try`` costs nothing until it raises.
    """
    if isinstance(method, type):
        method.__init__ = user_facing(method.__init__)  # type: ignore[misc]
        return method

    @functools.wraps(method)
    def call(*args: P.args, **kwargs: P.kwargs) -> T:
        __tracebackhide__ = True  # for pytest and IPython when the frames are kept
        try:
            return method(*args, **kwargs)
        except BaseException as error:
            if isinstance(error, TypeError) and error.__traceback__ and error.__traceback__.tb_next is None:
                _name_the_keywords(error, method)  # its arguments did not bind: raised before it ran
            user_frames(error)
            raise

    return call


def _name_the_keywords(error: TypeError, method: Callable[..., object]) -> None:
    """Add to ``error``, an unexpected keyword's (``Runtime(executor=...)``), the nearest
    keyword ``method`` takes, or all of them."""
    text = str(error)
    _, found, rest = text.partition("unexpected keyword argument '")
    if not found:
        return
    import inspect

    from plait._spelling import did_you_mean

    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    keywords = [p.name for p in inspect.signature(method).parameters.values() if p.kind in kinds and p.name != "self"]
    hint = did_you_mean(rest.partition("'")[0], keywords) or f"it takes {', '.join(keywords) or 'no keywords'}"
    error.args = (f"{text}; {hint}",)
