"""Apps: functions whose calls build Exprs instead of running."""

from __future__ import annotations

import functools
import inspect
import os
import re
import sys
import types
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, ClassVar, Generic, ParamSpec, SupportsIndex, TypeVar, overload

import attrs

from plait._collector import collecting_less
from plait._spelling import did_you_mean
from plait._tracebacks import user_facing, user_frames
from plait.dsl._args import find_refs, snapshot
from plait.dsl._by_name import takes_files
from plait.dsl._combinators import as_expr, gather
from plait.dsl._expr import Call, Expr, new_call, ref_key
from plait.dsl._file import declare_outputs_hint, output_token
from plait.dsl._identity import SELF, identity_of, unique
from plait.dsl._options import AppOptions
from plait.dsl._pickling import reduce_app
from plait.dsl._reach import NO_REACH, ImpureAppWarning, MemoKeyWarning, Reach, reach_of, user_function
from plait.dsl._token import REF_TAG, SCALAR_TOKENS, Untokenizable, digest, registered_token, token_of

__all__ = ["App", "traverse"]

P = ParamSpec("P")
T = TypeVar("T")
U = TypeVar("U")


# The keyword arguments of every call made with positional arguments only: shared, never
# mutated (a task gets them unpacked), so a million calls do not hold a million empty dicts.
_NO_KWARGS: dict[str, Any] = {}


@attrs.frozen(eq=False, repr=False)
class App(Generic[P, T]):
    """A function whose calls build ``Expr[T]``; run them with ``plait.run``."""

    decorator: ClassVar[str] = "pl.app"  # what makes one, as errors show it

    fn: Callable[P, T]
    options: AppOptions
    name: str = attrs.field(init=False)
    signature: inspect.Signature = attrs.field(init=False)
    _plain: tuple[str, ...] | None = attrs.field(init=False)
    # ``name=`` of each parameter, when a call of positional arguments may be keyed without
    # binding it (plain parameters, none an output): see _simple_call.
    _simple_names: tuple[bytes, ...] | None = attrs.field(init=False)
    # Found at the first call, not at definition: the helpers and constants an app reads
    # are often defined below it in the same file.
    _identity: bytes | None = attrs.field(init=False, default=None)
    _reach: Reach | None = attrs.field(init=False, default=None)
    _bare_calls: int = attrs.field(init=False, default=0)

    def __attrs_post_init__(self) -> None:
        setattr_ = object.__setattr__
        setattr_(self, "name", getattr(self.fn, "__qualname__", repr(self.fn)))
        setattr_(self, "signature", _signature(self.fn, self.name))
        _check_ignored(self.name, self.signature, self.options.ignore_for_cache)
        setattr_(self, "_plain", _plain_parameters(self.signature, self.options))
        plain = self._plain if not self.options.outputs else None
        setattr_(self, "_simple_names", tuple(_name_tokens[name] for name in plain) if plain else None)

    @property
    def identity(self) -> bytes:
        """Module, name, and a hash of the code and of what it reaches (or ``version=``)."""
        found = self._identity
        if found is None:
            # An app that calls itself holds itself in its closure or globals: while its
            # identity is being made, it stands for itself by name.
            object.__setattr__(self, "_identity", SELF + self.name.encode())
            try:
                reach = self.reach
                found = identity_of(self.fn, self.options, self.name, reach.token)
            finally:
                object.__setattr__(self, "_identity", found)
            self._warn_about(reach)
        return found

    @property
    def reach(self) -> Reach:
        """What this app's key covers beyond its own body: see ``plait cache why``."""
        found = self._reach
        if found is None:
            fn = user_function(self.fn)
            found = reach_of(fn) if isinstance(fn, types.FunctionType) else NO_REACH
            object.__setattr__(self, "_reach", found)
        return found

    def _warn_about(self, reach: Reach) -> None:
        if reach.nondeterministic and self.options.pure is None:
            _warn(
                f"app {self.name} reads {', '.join(reach.nondeterministic)}: its calls with equal "
                "arguments are the same work and share one result. Pass what varies (a seed, an "
                f"index) as an argument, or mark it @pl.app(pure=False) so each call runs",
                ImpureAppWarning,
            )
        keyed_by_what_it_says = self.options.pure is not None or self.options.version is not None
        if reach.files and self.options.memoized and not keyed_by_what_it_says and not takes_files(self.signature):
            _warn(
                f"app {self.name} uses files by name ({', '.join(reach.files)}): the memo knows a file only "
                "as a pl.File, so a result it keeps for this app is served after a file the app reads has "
                "changed, and a file the app writes is not made again. Pass the files as pl.File arguments "
                "(what it writes in outputs=), or give the app a new version= when they change (pure=True: "
                "its arguments alone decide its result)",
                MemoKeyWarning,
            )
        if self.options.memoized and self.options.version is None and (reach.not_covered or reach.truncated):
            beyond = ["what lies beyond its first 5 000 functions"] if reach.truncated else []
            missing = [*reach.not_covered, *beyond]
            _warn(
                f"app {self.name}: its memo key does not cover {'; '.join(missing)}; when those "
                "change, give the app a new version=...",
                MemoKeyWarning,
            )

    @property
    def __plait_identity__(self) -> bytes:
        return self.identity

    @property
    def __wrapped__(self) -> Callable[P, T]:
        return self.fn

    @property
    def __doc__(self) -> str | None:  # type: ignore[override]
        return self.fn.__doc__

    def __call__(self, *args: Any, **kwargs: Any) -> Expr[T]:
        """Build the Expr of this call; nothing runs.

        Arguments are typed ``Any`` on purpose: each may be the value the function
        takes, or an Expr or future of it. Arity and names are checked here, at call time.
        """
        try:  # free until something raises: the build's every node passes here
            if not kwargs and self._simple_names is not None and len(args) == len(self._simple_names) and args:
                call = self._simple_call(args)
                if call is not None:
                    return call
            if not args and not kwargs and self.options.pure is None:
                self._count_bare_call()
            call_args, call_kwargs, names, values = self._bind(args, kwargs)
            call_args = tuple(map(snapshot, call_args))
            call_kwargs = {k: snapshot(v) for k, v in call_kwargs.items()} if call_kwargs else call_kwargs
            refs: list[Any] = []
            apps: list[App[..., Any]] = []
            for value in call_args:
                find_refs(value, refs, apps)
            for value in call_kwargs.values():
                find_refs(value, refs, apps)
            if apps:
                self._check_apps_passed(call_args, call_kwargs)
            deps = tuple(map(as_expr, refs)) if refs else ()
            # With no argument left out of the key, the key sees exactly these references.
            in_key = None if self.options.ignore_for_cache else len(refs)
            return Call(self._key(names, values, in_key), self, call_args, call_kwargs, deps)
        except BaseException as error:
            user_frames(error)  # a wrong argument points at the user's call, not at plait's frames
            raise

    def _simple_call(self, args: tuple[Any, ...]) -> Call[T] | None:
        """This call when each argument is a scalar or an Expr (the common call, the hot path
        of a build), keyed byte for byte as ``_key`` keys it but without binding the call or
        walking the arguments; None for any other argument."""
        names = self._simple_names
        assert names is not None
        parts = [b"C", self._identity or self.identity]  # the slot, once made: a property costs a call
        deps: tuple[Expr[Any], ...] = ()
        # enumerate, not zip(..., strict=False): a keyword to a builtin costs ~0.25 µs a call.
        for i, value in enumerate(args):  # as many as names: the caller checked
            token = SCALAR_TOKENS.get(type(value))
            if token is not None:
                parts += (names[i], token(value))
            elif isinstance(value, Expr) and registered_token(type(value)) is None:
                parts += (names[i], REF_TAG + value._key)
                deps += (value,)
            else:
                return None
        if self.options.pure is False:
            parts.append(unique())
        return new_call(digest(*parts), self, args, _NO_KWARGS, deps)

    def _count_bare_call(self) -> None:
        calls = self._bare_calls + 1
        object.__setattr__(self, "_bare_calls", calls)
        if calls == 2 and not self.reach.nondeterministic:  # that warning said it already
            _warn(
                f"app {self.name} is called with no arguments more than once: the calls are the "
                "same work and share one result. If each call should run, mark it "
                "@pl.app(pure=False); if sharing is right, @pl.app(pure=True) says so",
                ImpureAppWarning,
            )

    def _bind(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any], Sequence[str], Sequence[Any]]:
        """The canonical form of a call, and the names and values its key covers.

        Defaults filled and each argument where the signature puts it, so f(1) and
        f(x=1) are the same work.
        """
        if not kwargs and self._plain is not None and len(args) == len(self._plain):
            return args, _NO_KWARGS, self._plain, args  # the common call: nothing to build
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as error:
            if "outputs" in kwargs and "outputs" not in self.signature.parameters:  # a Parsl habit
                hint = declare_outputs_hint(self.decorator, self.name, "outputs", kwargs["outputs"])
                raise TypeError(f"{self.name}() takes no argument 'outputs': {hint}") from None
            raise TypeError(f"{self.name}(): {self._unknown_keyword(kwargs) or error}{self._method_hint()}") from None
        bound.apply_defaults()
        ignored = self.options.ignore_for_cache
        keyed = [k for k in bound.arguments if k not in ignored]
        return bound.args, bound.kwargs, keyed, [bound.arguments[k] for k in keyed]

    def _unknown_keyword(self, kwargs: dict[str, Any]) -> str | None:
        """What is wrong with a keyword the function does not take (a typo, most often),
        which ``Signature.bind`` reports only after whatever argument it left missing."""
        params = self.signature.parameters.values()
        if any(p.kind is p.VAR_KEYWORD for p in params):
            return None
        names = [p.name for p in params if p.kind not in (p.POSITIONAL_ONLY, p.VAR_POSITIONAL)]
        for name in kwargs:
            if name not in names:
                hint = did_you_mean(name, names) or f"its arguments are {', '.join(names) or 'positional'}"
                return f"got an unexpected keyword argument {name!r}; {hint}"
        return None

    def _method_hint(self) -> str:
        """Why ``self`` went missing: an app made in a class body is no method."""
        first = next(iter(self.signature.parameters), None)
        owner = getattr(self.fn, "__qualname__", "").rpartition(".")[0]
        if first not in ("self", "cls") or not owner or owner.endswith("<locals>"):
            return ""
        return (
            f"; an app in a class body is not a method: nothing binds {first}. Define the app at "
            "module level and pass it what it needs from the object"
        )

    def _check_apps_passed(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Refuse an app passed where its call was meant (``mean([point, point])``): on the
        worker it is a function, not a number. A parameter annotated as a callable or an
        App takes apps."""
        for name, value in self.signature.bind(*args, **kwargs).arguments.items():
            apps: list[App[..., Any]] = []
            find_refs(value, [], apps)
            if apps and not _takes_callables(self.signature.parameters[name]):
                raise TypeError(
                    f"{self.name}(): argument {name!r} holds the app {apps[0].name} itself, not a call "
                    f"of it; call it ({apps[0].name}(...)) to pass its result, or annotate {name!r} as a "
                    "Callable if the task really takes a function"
                )

    def _key(self, names: Sequence[str], values: Sequence[Any], refs_in_key: int | None = None) -> bytes:
        """The key of a call of this app on ``values`` (named ``names``), which hold
        ``refs_in_key`` references where ``find_refs`` looks (None: count them)."""
        if refs_in_key is None:
            refs: list[Any] = []
            find_refs(values, refs)
            refs_in_key = len(refs)
        seen = 0

        def on_ref(value: object) -> bytes:
            nonlocal seen
            key = ref_key(value)
            seen += bool(key)
            return key

        parts = [b"C", self.identity]
        try:
            # Most calls hold no reference: those need no counting closure, only to refuse a hidden one.
            self._tokens(names, values, on_ref if refs_in_key else _no_ref, parts)
        except _HiddenRef:
            seen = -1
        except Untokenizable as error:
            if not self.options.memoized:
                return digest(b"C", self.identity, *parts[2:], unique())
            raise TypeError(
                f"{self.name}(): argument {error.where!r} is a {error.value_type.__qualname__}, "
                f"which plait cannot hash for the memo; {_untokenizable_hint(error.value_type)}"
            ) from None
        if seen != refs_in_key:
            raise TypeError(
                f"{self.name}(): an Expr or future is nested inside an object plait does not "
                "look into; pass it directly or inside a list, tuple, dict or set"
            )
        if self.options.pure is False:
            parts.append(unique())
        return digest(*parts)

    def _tokens(
        self, names: Sequence[str], values: Sequence[Any], on_ref: Callable[[object], bytes], parts: list[bytes]
    ) -> None:
        """Append ``name=`` and the token of each argument to ``parts``."""
        outputs = self.options.outputs
        try:
            for name, value in zip(names, values, strict=True):
                token = token_of(output_token(value) if name in outputs else value, on_ref, where=name)
                parts += (_name_tokens[name], token)
        except FileNotFoundError as error:
            message = f"{self.name}(): argument {name!r}: {error}"
            if "out" in name.lower():  # named as an output (Parsl's outputs=): say how plait declares one
                message += f"; if {self.name} writes it, {declare_outputs_hint(self.decorator, self.name, name, value)}"
            raise FileNotFoundError(message) from None

    def __reduce_ex__(self, protocol: SupportsIndex) -> str | tuple[Any, ...]:
        """By reference to where its module holds it, as pickle does functions (see _pickling)."""
        return reduce_app(self, int(protocol), sys._getframe(1))

    def __copy__(self) -> App[P, T]:
        return self  # a value: copying it would make a second identity of one app

    def __deepcopy__(self, memo: dict[int, Any]) -> App[P, T]:
        return self

    def __repr__(self) -> str:
        return f"<plait app {self.name}>"


class _HiddenRef(Exception):
    """A reference inside an object ``find_refs`` does not look into, in a call it found none in."""


def _no_ref(value: object) -> bytes:
    if ref_key(value):
        raise _HiddenRef
    return b""


class _NameTokens(dict[str, bytes]):
    """``name=`` as bytes, for each parameter name: made once, not once per call."""

    def __missing__(self, name: str) -> bytes:
        token = self[name] = name.encode() + b"="
        return token


_name_tokens = _NameTokens()


def _untokenizable_hint(cls: type) -> str:
    """What to do about an argument of type ``cls`` that has no token.

    >>> _untokenizable_hint(type(iter([])))
    'pass a list or tuple: an iterator can be read only once'
    """
    if issubclass(cls, Iterator):
        return "pass a list or tuple: an iterator can be read only once"
    return f"register a token with plait.register_token({cls.__qualname__}, fn), or mark the app cache=False"


def _takes_callables(parameter: inspect.Parameter) -> bool:
    """Whether ``parameter`` is annotated to take functions: ``Callable[...]`` or an ``App``.

    >>> def f(fn: Callable[[int], int], n: int, *more: "App[..., int]") -> None: ...
    >>> [_takes_callables(p) for p in inspect.signature(f).parameters.values()]
    [True, False, True]
    """
    text = parameter.annotation if isinstance(parameter.annotation, str) else repr(parameter.annotation)
    return re.search(r"\b(Callable|App)\b", text) is not None


def _signature(fn: Callable[..., Any], name: str) -> inspect.Signature:
    """``fn``'s signature, by which a call is checked and keyed; a builtin may have none."""
    try:
        return inspect.signature(fn)
    except ValueError as error:
        raise TypeError(
            f"app {name}: plait cannot read the parameters it takes ({error}), which check and key its "
            "calls; make the app a def that calls it, with those parameters"
        ) from None


def _check_ignored(name: str, signature: inspect.Signature, ignored: tuple[str, ...]) -> None:
    """A name in ``ignore_for_cache`` that is no parameter (a typo) would leave the one meant in the key."""
    for parameter in ignored:
        if parameter not in signature.parameters:
            raise ValueError(
                f"app {name}: ignore_for_cache names parameter {parameter!r}, which it does not have "
                f"(it has {', '.join(signature.parameters) or 'none'})"
            )


def _plain_parameters(sig: inspect.Signature, options: AppOptions) -> tuple[str, ...] | None:
    """The parameter names, when every parameter is positional-or-keyword and none is ignored."""
    params = list(sig.parameters.values())
    plain = all(p.kind is p.POSITIONAL_OR_KEYWORD for p in params) and not options.ignore_for_cache
    return tuple(p.name for p in params) if plain else None


def _warn(message: str, category: type[Warning]) -> None:
    """Warn at the user's line: the first frame outside plait."""
    frame, level = sys._getframe(1), 2
    while frame.f_back is not None and frame.f_code.co_filename.startswith(_PLAIT_DIR):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)


_PLAIT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


# traverse lives with App, where it always has: a traverse over an Expr binds _traverse_now,
# and its module and name are part of that Bind's key, which memos written before look for.
@overload
def traverse(fn: Callable[[T], Expr[U]], items: Iterable[T]) -> Expr[list[U]]: ...


@overload
def traverse(fn: Callable[[T], Expr[U]], items: Expr[Iterable[T]]) -> Expr[list[U]]: ...


@user_facing
def traverse(fn: Callable[[Any], Expr[Any]], items: Any) -> Expr[list[Any]]:
    """``gather(fn(x) for x in items)``: ``fn`` is an app, or a function returning an Expr.

    ``items`` may itself be an Expr of a list: the calls are made when it is known.
    """
    if not callable(fn):
        raise TypeError(f"traverse needs an app or a function returning an Expr, not {fn!r}")
    if not isinstance(items, Expr | Iterable):
        name = fn.name if isinstance(fn, App) else getattr(fn, "__qualname__", fn)
        raise TypeError(
            f"traverse({name}, items): items is a list (or any iterable) or an Expr of one, not {items!r:.60}"
        )
    if isinstance(items, Expr):
        return items.bind(functools.partial(_traverse_now, fn))
    return _traverse_now(fn, items)


def _traverse_now(fn: Callable[[Any], Expr[Any]], items: Iterable[Any]) -> Expr[list[Any]]:
    exprs = []
    with collecting_less():  # everything made here lives on: young collections would be wasted
        for item in items:
            expr = fn(item)
            if not isinstance(expr, Expr):
                name = getattr(fn, "__qualname__", repr(fn))
                raise TypeError(
                    f"traverse: {name}({item!r}) returned a {type(expr).__name__}, not an Expr; "
                    "decorate it with @plait.app"
                )
            exprs.append(expr)
        return gather(exprs)
