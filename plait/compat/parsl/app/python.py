"""``parsl.app.python``: the Python app class and Parsl's ``timeout`` wrapper."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from plait.compat.parsl.app._walltime import call_within
from plait.compat.parsl.app.app import PythonApp

__all__ = ["PythonApp", "timeout"]


def timeout(f: Callable[..., Any], seconds: float) -> Callable[..., Any]:
    """``f`` raising AppTimeout in its thread once it has run ``seconds``, as Parsl's."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return call_within(seconds, f, *args, **kwargs)

    return wrapper
