"""Expressions: immutable descriptions of work, identified by Merkle keys.

Nothing here runs anything: ``==`` and ``hash`` compare keys. An interpreter
(``plait.runtime``) registers itself with :func:`set_interpreter` so that
``awaitable()`` can interpret, which ``returns``' interfaces need.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import uuid
from collections.abc import Awaitable, Callable, Generator, Iterator
from typing import Any, ClassVar, Generic, Never, NoReturn, Protocol, TypeVar, cast, final

import attrs
from returns.interfaces.container import ContainerN
from returns.primitives.hkt import Kind1, SupportsKind1
from returns.result import Result, Success

from plait._tracebacks import user_facing
from plait.dsl._refusals import refuse_result_operations
from plait.dsl._token import Untokenizable, digest, token_of

__all__ = [
    "Attempt",
    "Await",
    "Bind",
    "CALL_FIELDS",
    "Call",
    "Expr",
    "Gather",
    "Interpreter",
    "Map",
    "Pure",
    "key_or_fresh",
    "new_call",
    "ref_key",
    "set_interpreter",
]

T = TypeVar("T")
U = TypeVar("U")
T_co = TypeVar("T_co", covariant=True)


class Interpreter(Protocol):
    """What the DSL needs from a runtime to give ``awaitable()`` meaning."""

    def awaitable(self, expr: Expr[T]) -> Awaitable[T]: ...


_interpreter: list[Interpreter] = []


def set_interpreter(interpreter: Interpreter) -> None:
    """Let ``Expr.awaitable`` run expressions with ``interpreter``."""
    _interpreter[:] = [interpreter]


def _the_interpreter() -> Interpreter:
    if not _interpreter:
        raise RuntimeError("no plait runtime is registered; import plait, not plait.dsl alone")
    return _interpreter[0]


def _fresh_key() -> bytes:
    # For values with no deterministic token: unique, so never shared and never served
    # from a memo, but still a key. Apps refuse such arguments instead (see _app).
    return b"\xff" + uuid.uuid4().bytes[1:]


def key_or_fresh(*parts: object) -> bytes:
    try:
        return digest(*(p if isinstance(p, bytes) else token_of(p, ref_key) for p in parts))
    except Untokenizable:
        return _fresh_key()


@attrs.frozen(eq=False, repr=False)
class Expr(ContainerN[T_co, Never, Never], SupportsKind1["Expr[Any]", T_co]):  # type: ignore[type-var]
    """A lazy value of type ``T``: build it by calling apps, run it with ``plait.run``.

    Two Exprs are ``==`` when their keys are equal, that is when they describe the same
    work; comparing or hashing runs nothing. To compare results, run them
    (``plait.testing.same_outcome``).
    """

    _key: bytes = attrs.field(alias="key")
    kind: ClassVar[str] = "expr"

    @property
    def key(self) -> str:
        """The Merkle key as hex: equal keys are the same work, in any run."""
        return self._key.hex()

    def children(self) -> tuple[Expr[Any], ...]:
        """The expressions this one needs before it can run."""
        return ()

    def label(self) -> str:
        """A short human description, used in errors and drawings.

        It shows a few levels of inputs, so it costs the same for a node at the end of
        a chain of a million.
        """
        return self.kind

    def brief(self) -> str:
        """The label of this node as an input of another: its inputs elided."""
        return self.label()

    def to_dot(self, name: str = "plait") -> str:
        """This graph as Graphviz DOT text (``dot -Tsvg``); each shared node is drawn once."""
        from plait.dsl._dot import to_dot  # _dot imports this module

        return to_dot(self, name)

    def _repr_svg_(self) -> str:
        """The graph, drawn for Jupyter; repeated calls of one app show as one box with a count."""
        from plait.dsl._svg import draw  # _svg imports this module

        return draw(self)

    @user_facing
    def map(self, function: Callable[[T_co], U]) -> Expr[U]:
        """Apply a plain function to the result; runs in the runtime, not on a worker.

        Keep it cheap: use an app for real work.
        """
        if _is_app(function):
            name = getattr(function, "name", "app")
            raise TypeError(
                f"{self.label()}.map({name}): {name} is an app, whose call builds an Expr rather than "
                f"a value; use .bind({name}) to run it on the result"
            )
        self._check_callable("map", function)
        return Map(key_or_fresh(b"M", self._key, function), self, function)

    @user_facing
    def bind(self, function: Callable[[T_co], Kind1[Expr[Any], U]]) -> Expr[U]:
        """Continue with the expression ``function(result)``: the dynamic part of a graph."""
        self._check_callable("bind", function)
        return Bind(key_or_fresh(b"B", self._key, function), self, cast(Callable[[Any], Expr[U]], function))

    def _check_callable(self, method: str, function: object) -> None:
        # Found here, the error names the graph being built; at run time it was only
        # "'int' object is not callable", raised on the runtime's loop.
        if not callable(function):
            what = f"{type(function).__name__} {function!r:.60}"
            of = "the exception" if method == "recover" else "the result"
            raise TypeError(f"{self.label()}.{method}(...) takes a function of {of}, not {what}")

    @user_facing
    def apply(self, container: Kind1[Expr[Any], Callable[[T_co], U]]) -> Expr[U]:
        """Apply the function that ``container`` computes to this result."""
        from plait.dsl._combinators import gather  # _combinators imports this module

        if not isinstance(container, Expr):
            raise TypeError(
                f"{self.label()}.apply(...) takes an Expr whose result is a function, not "
                f"{type(container).__name__} {container!r:.60}; to apply a plain function, use .map(fn)"
            )
        fn = cast(Expr[Callable[[T_co], U]], container)
        return gather(fn, self).map(_apply_pair)

    @classmethod
    def from_value(cls, inner_value: U) -> Expr[U]:
        """The expression whose result is ``inner_value``; same as ``plait.pure``."""
        from plait.dsl._combinators import pure  # _combinators imports this module

        return pure(inner_value)

    def attempt(self) -> Expr[Result[T_co, BaseException]]:
        """Turn failure into a value: ``Success(result)`` or ``Failure(exception)``."""
        return Attempt(digest(b"A", self._key), self)

    @user_facing
    def recover(self, function: Callable[[BaseException], U]) -> Expr[T_co | U]:
        """On failure, the result is ``function(exception)`` instead."""
        self._check_callable("recover", function)
        return self.attempt().map(_Recovery(function))

    def awaitable(self) -> Awaitable[T_co]:
        """Interpret this expression from async code: ``await expr.awaitable()``."""
        return _the_interpreter().awaitable(self)

    def __await__(self) -> Generator[Any, None, T_co]:
        """``await expr`` in async code or a notebook cell: submits it and waits without blocking the loop."""
        return self.awaitable().__await__()

    @user_facing
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Expr):  # a future too: its hash is not its work's, so it never equals
            raise TypeError(
                f"{self.label()} == {_short(other)}: an Expr is work not done yet, not its result, so it "
                "compares only with other Exprs (by key: the same work). Compare its result after it "
                "runs: plait.run(expr) == value, or expr.map(lambda v: v == value)"
            )
        return self._key == other._key

    def __hash__(self) -> int:
        return hash(self._key)

    @user_facing
    def __bool__(self) -> NoReturn:
        raise TypeError(
            f"{self.label()} has no truth value before it runs: use .map(fn) or .bind(fn) to act on its result"
        )

    @user_facing
    def __iter__(self) -> Iterator[Any]:
        raise TypeError(
            f"{self.label()} cannot be iterated before it runs: use .map(fn), .bind(fn) or plait.traverse(app, expr)"
        )

    @user_facing
    def __format__(self, format_spec: str) -> str:
        raise TypeError(
            f"{self.label()} in a string: an Expr is work not done yet, so its text would be a "
            "description, not its result. Format the result where it is known: "
            "expr.map(lambda v: f'...{v}...'), or inside an app; {expr!r} shows the description"
        )

    def __repr__(self) -> str:
        return f"<Expr {self.brief() if _label_depth.get() >= _LABEL_DEPTH else self.label()} {self._key.hex()[:12]}>"


refuse_result_operations(Expr)


def _apply_pair(pair: list[Any]) -> Any:
    return pair[0](pair[1])


@final
@attrs.frozen
class _Recovery(Generic[U]):
    function: Callable[[BaseException], U]

    def __call__(self, result: Result[Any, BaseException]) -> Any:
        if isinstance(result, Success):
            return result.unwrap()
        return self.function(result.failure())


def _is_app(value: object) -> bool:
    """Whether ``value`` is an app (its class is in ``_app``, which imports this module)."""
    return hasattr(type(value), "__plait_identity__")


@final
@attrs.frozen(eq=False, repr=False)
class Pure(Expr[T_co]):
    """A value known now."""

    value: T_co
    kind: ClassVar[str] = "pure"

    def label(self) -> str:
        return f"pure({_short(self.value)})"


@final
@attrs.frozen(eq=False, repr=False)
class Call(Expr[T_co]):
    """An app applied to arguments, which may hold Exprs and futures at any depth."""

    app: Any  # an App; typed loosely so the DSL's modules do not import each other in cycles
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    deps: tuple[Expr[Any], ...]
    kind: ClassVar[str] = "call"

    def children(self) -> tuple[Expr[Any], ...]:
        return self.deps

    def label(self) -> str:
        parts = [_short(a) for a in self.args] + [f"{k}={_short(v)}" for k, v in self.kwargs.items()]
        return f"{self.app.name}({', '.join(parts)})"

    def brief(self) -> str:
        return f"{self.app.name}(…)"


# What attrs' frozen ``__init__`` does through ``object.__setattr__`` by name, done by the
# slots' own descriptors: ~0.14 µs sooner a call, on a build's hot path (App._simple_call).
# By name, so a field moved in the class still gets its own value; a field added breaks
# the unpacking below at import (and tests/dsl/test_expr.py names every field).
CALL_FIELDS = ("_key", "app", "args", "kwargs", "deps")
_set_key, _set_app, _set_args, _set_kwargs, _set_deps = (
    getattr(Call if name in Call.__slots__ else Expr, name).__set__ for name in CALL_FIELDS
)


def new_call(
    key: bytes, app: Any, args: tuple[Any, ...], kwargs: dict[str, Any], deps: tuple[Expr[Any], ...]
) -> Call[Any]:
    """``Call(key, app, args, kwargs, deps)``, made sooner."""
    call: Call[Any] = object.__new__(Call)
    _set_key(call, key)
    _set_app(call, app)
    _set_args(call, args)
    _set_kwargs(call, kwargs)
    _set_deps(call, deps)
    return call


@final
@attrs.frozen(eq=False, repr=False)
class Map(Expr[T_co]):
    """A plain function applied to a result, in the runtime."""

    src: Expr[Any]
    fn: Callable[[Any], T_co]
    kind: ClassVar[str] = "map"

    def children(self) -> tuple[Expr[Any], ...]:
        return (self.src,)

    def label(self) -> str:
        return f"map({_name(self.fn)})"


@final
@attrs.frozen(eq=False, repr=False)
class Bind(Expr[T_co]):
    """A function from a result to the next Expr: the graph grows as it runs."""

    src: Expr[Any]
    fn: Callable[[Any], Expr[T_co]]
    kind: ClassVar[str] = "bind"

    def children(self) -> tuple[Expr[Any], ...]:
        return (self.src,)

    def label(self) -> str:
        return f"bind({_name(self.fn)})"


@final
@attrs.frozen(eq=False, repr=False)
class Gather(Expr[T_co]):
    """Many results as one list; its items run concurrently."""

    items: tuple[Expr[Any], ...]
    kind: ClassVar[str] = "gather"

    def children(self) -> tuple[Expr[Any], ...]:
        return self.items

    def label(self) -> str:
        return f"gather({len(self.items)} items)"


@final
@attrs.frozen(eq=False, repr=False)
class Attempt(Expr[T_co]):
    """The result or the failure of ``src`` as a ``returns`` Result: never fails."""

    src: Expr[Any]
    kind: ClassVar[str] = "attempt"

    def children(self) -> tuple[Expr[Any], ...]:
        return (self.src,)

    def label(self) -> str:
        return f"attempt({_short(self.src, 60)})"

    def brief(self) -> str:
        return "attempt(…)"


@final
@attrs.frozen(eq=False, repr=False)
class Await(Expr[T_co]):
    """A future that is already running, used as an Expr."""

    future: concurrent.futures.Future[T_co]
    kind: ClassVar[str] = "await"

    def label(self) -> str:
        inner = getattr(self.future, "__plait_expr__", None)
        return inner.label() if isinstance(inner, Expr) else "future"

    def brief(self) -> str:
        inner = getattr(self.future, "__plait_expr__", None)
        return inner.brief() if isinstance(inner, Expr) else "future"


def ref_key(value: object) -> bytes:
    """The key of an Expr or a future used as a value, or ``b""`` for anything else.

    A plait future has the key of the work it computes, so passing the future or the
    Expr itself gives the same key. Any other future has a key of its own.
    """
    if isinstance(value, Expr):
        return value._key
    inner = getattr(value, "__plait_expr__", None)
    if isinstance(inner, Expr):
        return inner._key
    if isinstance(value, concurrent.futures.Future):
        return _foreign_key(value)
    return b""


_foreign_keys: dict[int, tuple[concurrent.futures.Future[Any], bytes]] = {}


def _foreign_key(future: concurrent.futures.Future[Any]) -> bytes:
    # One key per foreign future, kept only while the future is pending: a finished
    # future cannot change, so a second Await of it needs no shared key.
    entry = _foreign_keys.get(id(future))
    if entry is None or entry[0] is not future:
        entry = (future, _fresh_key())
        _foreign_keys[id(future)] = entry
        future.add_done_callback(lambda f: _foreign_keys.pop(id(f), None))
    return entry[1]


def _short(value: object, limit: int = 24) -> str:
    # Inputs of inputs show to _LABEL_DEPTH levels, then briefly: a label never walks down a chain.
    depth = _label_depth.get()
    if depth >= _LABEL_DEPTH and isinstance(value, Expr):
        text = value.brief()
    else:
        token = _label_depth.set(depth + 1)
        try:
            text = value.label() if isinstance(value, Expr) else repr(value)
        finally:
            _label_depth.reset(token)
    return text if len(text) <= limit else text[: limit - 1] + "…"


_LABEL_DEPTH = 3
# How many levels of inputs the label being built has shown (an Expr inside an argument's
# repr counts too); beyond _LABEL_DEPTH, inputs show by their brief label.
_label_depth = contextvars.ContextVar("plait_label_depth", default=0)


def _name(fn: object) -> str:
    return getattr(fn, "__qualname__", None) or type(fn).__name__
