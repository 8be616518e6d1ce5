"""What a graph is made of, read from type hints: apps' parameters and results, and the
typed functions given for ``map`` and ``bind``; and which types fit where."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Any, ClassVar

import attrs

from plait.dsl import App, Expr

__all__ = ["AppSignature", "Param", "TypedFunction", "fits", "list_item", "name_of", "signature_of", "typed_function"]


@attrs.frozen
class Param:
    name: str
    kind: inspect._ParameterKind
    type: Any
    default: Any  # inspect.Parameter.empty when required

    # inspect.Parameter's names, so a Param reads like one
    empty: ClassVar[Any] = inspect.Parameter.empty
    POSITIONAL_OR_KEYWORD: ClassVar[Any] = inspect.Parameter.POSITIONAL_OR_KEYWORD
    VAR_POSITIONAL: ClassVar[Any] = inspect.Parameter.VAR_POSITIONAL
    KEYWORD_ONLY: ClassVar[Any] = inspect.Parameter.KEYWORD_ONLY


@attrs.frozen
class AppSignature:
    app: App[..., Any]
    params: tuple[Param, ...]
    returns: Any


@attrs.frozen
class TypedFunction:
    """A typed user function for ``map`` (returns a value) or ``bind`` (returns an Expr)."""

    fn: Callable[[Any], Any]
    source: Any
    target: Any


def _hints(fn: Callable[..., Any], what: str) -> inspect.Signature:
    try:
        return inspect.signature(fn, eval_str=True)
    except (NameError, TypeError) as error:
        raise TypeError(f"exprs: cannot read the type hints of {what}: {error}") from None


def signature_of(app: App[..., Any]) -> AppSignature:
    if not isinstance(app, App):
        raise TypeError(f"exprs(apps=...) takes plait apps, not {app!r}")
    sig = _hints(app.fn, f"app {app.name}")
    if sig.return_annotation is inspect.Signature.empty:
        raise TypeError(f"exprs: app {app.name} has no return type hint; annotate it (-> T)")
    params = []
    for p in sig.parameters.values():
        if p.kind is p.VAR_KEYWORD:
            continue
        required = p.default is p.empty and p.kind is not p.VAR_POSITIONAL
        if p.annotation is p.empty and (required or p.kind is p.VAR_POSITIONAL):
            raise TypeError(f"exprs: app {app.name}, parameter {p.name!r} has no type hint; annotate it")
        params.append(Param(p.name, p.kind, p.annotation, p.default))
    return AppSignature(app, tuple(params), sig.return_annotation)


def typed_function(fn: Callable[[Any], Any], bind: bool) -> TypedFunction:
    what = f"{'bind' if bind else 'map'} function {getattr(fn, '__qualname__', fn)!r}"
    sig = _hints(fn, what)
    params = list(sig.parameters.values())
    if not params or params[0].annotation is params[0].empty or sig.return_annotation is sig.empty:
        raise TypeError(f"exprs: {what} needs type hints for its argument and its result")
    target = sig.return_annotation
    if bind:
        if typing.get_origin(target) is not Expr:
            raise TypeError(f"exprs: {what} must be annotated to return Expr[T], not {target!r}")
        target = typing.get_args(target)[0]
    return TypedFunction(fn, params[0].annotation, target)


def fits(provided: Any, wanted: Any) -> bool:
    """Whether a value of type ``provided`` may be passed where ``wanted`` is expected.

    >>> fits(bool, int), fits(int, float), fits(list[int], list[int]), fits(str, Any)
    (True, False, True, True)
    """
    if wanted is Any or provided == wanted:
        return True
    return isinstance(provided, type) and isinstance(wanted, type) and issubclass(provided, wanted)


def list_item(t: Any) -> Any:
    """``X`` when ``t`` is ``list[X]``, else None."""
    if typing.get_origin(t) is list:
        args = typing.get_args(t)
        return args[0] if args else None
    return None


def name_of(t: Any) -> str:
    return getattr(t, "__qualname__", None) or repr(t)
