"""``@app``: the decorator that makes a function an :class:`App`, refusing at once what
cannot be one."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ParamSpec, TypeVar, overload

from plait._tracebacks import user_facing
from plait.dsl._app import App
from plait.dsl._file import File, WithOutputs, outputs_spec
from plait.dsl._options import AppOptions, app_options, typed_signature
from plait.dsl._retry import Retry

__all__ = ["app"]

P = ParamSpec("P")
T = TypeVar("T")


@overload
def app(fn: Callable[P, T], /) -> App[P, T]: ...


@overload
def app(
    *,
    retries: int | Retry | None = None,
    timeout: float | None = None,
    executor: str | None = None,
    cache: bool = True,
    pure: bool | None = None,
    version: str | None = None,
    resources: Mapping[str, Any] | None = None,
    ignore_for_cache: Iterable[str] = (),
    outputs: Iterable[File | str] = (),
) -> Callable[[Callable[P, T]], App[P, T]]: ...


@typed_signature
@user_facing
def app(fn: Callable[P, T] | None = None, /, **options: Any) -> Any:
    """Make ``fn`` an app: calling it builds an ``Expr`` that a runtime runs on a worker.

    Use it bare (``@app``) or with options (``@app(retries=3, timeout=60)``):
    ``retries`` (a count or a :class:`Retry`), ``timeout`` (seconds; the task's process
    is killed), ``executor`` (a label), ``cache`` (memoize across runs), ``pure``
    (``False``: every call is its own work, never shared nor memoized; ``True``: says the
    app is a function of its arguments, which silences :class:`ImpureAppWarning`),
    ``version`` (replaces the code hash in the app's identity), ``resources`` (passed to the
    executor), ``ignore_for_cache`` (argument names left out of the key), ``outputs``
    (:class:`File` objects the task writes, or names of parameters whose arguments are
    paths it writes: keyed by path, checked to exist after the task).
    """
    opts = app_options(options, "@app")
    if fn is None:
        return user_facing(functools.partial(_make_app, options=opts))
    return _make_app(fn, opts)


def _make_app(fn: Callable[P, T], options: AppOptions) -> App[P, T]:
    if isinstance(fn, App):
        raise TypeError(f"{fn.name} is already an app")
    if not callable(fn):
        raise TypeError(f"@app decorates a function, not {fn!r}")
    _refuse_lazy_results(fn)
    if options.outputs:
        name = getattr(fn, "__qualname__", repr(fn))
        fn = WithOutputs(fn, outputs_spec(options.outputs, inspect.signature(fn), name))
    return App(fn, options)


def _refuse_lazy_results(fn: Callable[..., Any]) -> None:
    """A coroutine or generator function returns work not done yet, which a worker would
    have to send back unrun: refused when the app is made, not when each task fails."""
    name = getattr(fn, "__qualname__", repr(fn))
    if inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn):
        raise TypeError(
            f"@app {name} is an async function: a worker calls an app and sends back its result, so an "
            "app is a plain def (call asyncio.run(...) inside it if it needs await)"
        )
    if inspect.isgeneratorfunction(fn):
        raise TypeError(
            f"@app {name} is a generator function: its result, a generator, cannot be sent back from a "
            "worker; return a list (list(...) of what it yields)"
        )
