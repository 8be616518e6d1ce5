"""What people try on an Expr as if it were its result (``expr + 1``, ``expr.field``,
``len(expr)``), each refused with a message saying the Expr way to do it."""

from __future__ import annotations

from collections.abc import Callable
from typing import NoReturn, Protocol

from plait._tracebacks import user_facing, user_frames

__all__ = ["refuse_result_operations"]


class _Labelled(Protocol):
    def label(self) -> str: ...


def _refusal(shape: str, instead: str) -> Callable[..., NoReturn]:
    @user_facing
    def refuse(self: _Labelled, *_: object) -> NoReturn:
        raise TypeError(
            f"{shape.format(e=self.label())}: an Expr is work not done yet, not its result; "
            f"use expr{instead}, or pass the Expr to an app, which receives its result"
        )

    return refuse


_OPERATORS = [
    ("add", "+"), ("sub", "-"), ("mul", "*"), ("matmul", "@"), ("truediv", "/"), ("floordiv", "//"),
    ("mod", "%"), ("pow", "**"), ("and", "&"), ("or", "|"), ("xor", "^"), ("lshift", "<<"),
    ("rshift", ">>"),
]  # fmt: skip
_COMPARISONS = [("lt", "<"), ("le", "<="), ("gt", ">"), ("ge", ">=")]
# What people try on an Expr as if it were its result, with the Expr way to say it.
# Set on the class rather than written as methods, so that type checkers still flag them.
_REFUSED = {
    **{f"__{name}__": (f"{{e}} {op} ...", f".map(lambda v: v {op} ...)") for name, op in _OPERATORS + _COMPARISONS},
    **{f"__r{name}__": (f"... {op} {{e}}", f".map(lambda v: ... {op} v)") for name, op in _OPERATORS},
    **{f"__{name}__": (f"{name}({{e}})", f".map({name})") for name in ("float", "int", "complex", "abs", "len")},
    "__round__": ("round({e})", ".map(round)"),
    "__index__": ("...[{e}]", ".map(lambda v: items[v])"),
    "__neg__": ("-{e}", ".map(lambda v: -v)"),
    "__pos__": ("+{e}", ".map(lambda v: +v)"),
    "__invert__": ("~{e}", ".map(lambda v: ~v)"),
    "__getitem__": ("{e}[...]", ".map(lambda v: v[...])"),
    "__contains__": ("... in {e}", ".map(lambda v: ... in v)"),
}  # fmt: skip


# What other libraries call running a graph, or waiting for it (Dask's compute, Parsl's
# and concurrent.futures' result): on an Expr they mean "run it", not its result's attribute.
_RUN_IT = frozenset({"compute", "persist", "result"})


def _no_attribute(self: _Labelled, name: str) -> NoReturn:
    if name.startswith("_"):  # also what unpickling and copying probe for: plainly absent, and fast
        raise AttributeError(name)
    try:  # cut here, not by user_facing, whose cut (3 µs) those probes would pay
        raise AttributeError(_attribute_message(self, name))
    except AttributeError as error:
        user_frames(error)
        raise


def _attribute_message(expr: _Labelled, name: str) -> str:
    if name in _RUN_IT:
        return (
            f"{expr.label()}.{name}(): an Expr is not run by a method of its own: plait.run(expr) "
            "computes it and returns the result; rt.submit(expr) starts it and returns a future, "
            f"whose .result() waits for it"
        )
    return (
        f"{expr.label()}.{name}: an Expr has no attribute {name!r}; its result may, once it runs: "
        f"use .map(lambda v: v.{name}), or pass the Expr to an app, which receives its result"
    )


def refuse_result_operations(cls: type) -> None:
    """Make ``cls`` (Expr) refuse what works only on its result, each with the Expr way to say it."""
    for dunder, (what, instead) in _REFUSED.items():
        setattr(cls, dunder, _refusal(what, instead))
    setattr(cls, "__getattr__", _no_attribute)  # noqa: B010 - set here, type checkers still flag typos
