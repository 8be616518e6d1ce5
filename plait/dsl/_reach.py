"""What an app reaches: the user's code and constants it reads, the distributions it uses.

An app's memo key must change when anything that decides its result changes, and only
then. Its own body is not enough: ``work(x)`` that returns ``scale(x) + FACTOR`` must rerun
when ``scale``'s body or ``FACTOR`` changes. So the app's identity also covers a *reach*,
found by reading bytecode, never by running anything:

- the functions and classes of the user's own code it names through globals, closures,
  imports in its body and attributes of modules, transitively (their code, defaults,
  closures, class attributes);
- the values of module-level constants of the user's code it reads;
- for code of an installed distribution, that distribution's name and version (its code
  is not read: a version is what an installed library promises).

The standard library counts as neither: it changes with the interpreter. The same walk
notes what the app reads that varies from call to call (``random.random``,
``time.time``, …): an app that reads one is likely impure; and what opens files by name
(``open``, …), which the key covers by name only.
"""

from __future__ import annotations

import functools
import types
from collections import deque
from collections.abc import Callable
from typing import Any

import attrs

from plait.dsl._by_name import file_reads_in, reads_files_by_name
from plait.dsl._bytecode import Unimported, references
from plait.dsl._nondeterminism import nondeterminism
from plait.dsl._origin import STDLIB, USER, origin_of
from plait.dsl._token import Untokenizable, code_token, digest, token_of

__all__ = [
    "NO_REACH",
    "ImpureAppWarning",
    "MemoKeyWarning",
    "Reach",
    "class_token",
    "reach_of",
    "reach_token",
    "user_function",
]

# Past this many user functions and classes a reach is cut short, with a warning: a key
# must stay cheap to make, and an app that reaches this far should say version=.
MAX_REACH = 5_000


@attrs.frozen
class Reach:
    """What an app's key covers beyond its own body, and what it reads that varies."""

    token: bytes
    code: tuple[str, ...]  # qualified names of the user's functions and classes
    constants: tuple[str, ...]  # ``module.NAME`` of module constants read
    distributions: tuple[str, ...]  # ``name==version``
    not_covered: tuple[str, ...]  # constants that have no token, names not found
    nondeterministic: tuple[str, ...]  # ``random.random (through helper)``
    truncated: bool = False
    files: tuple[str, ...] = ()  # what opens files by name: ``open (in helper)``


NO_REACH = Reach(b"", (), (), (), (), ())


class ImpureAppWarning(UserWarning):
    """An app reads a source of varying results, or is called bare twice: calls would share."""

    __module__ = "plait"  # tracebacks name it as users import it, not by its private module


class MemoKeyWarning(UserWarning):
    """Something an app reads has no token, so the memo cannot see it change."""

    __module__ = "plait"  # tracebacks name it as users import it, not by its private module


def reach_of(fn: Callable[..., Any]) -> Reach:
    """Walk what ``fn`` reaches (``fn``'s own code is its identity's, not part of this)."""
    walk = _Walk()
    walk.function(fn, root=True)
    return walk.result()


def reach_token(fn: types.FunctionType) -> bytes:
    """The token of what a function given as a value (to ``map``, or as an argument) reaches.

    Cached by code object and module, once per process: a lambda made anew for each of a
    million calls is walked once. Its closure is not walked here (the caller tokenizes it).
    """
    code = fn.__code__
    found = _reach_tokens.get(code)
    if found is not None and found[0] is fn.__globals__:
        return found[1]
    token = _walked(code, lambda walk: walk.function(fn, root=True, closure=False))
    _remember(_reach_tokens, code, (fn.__globals__, token))
    return token


def class_token(cls: type) -> bytes:
    """The token of a user class's code and what it reaches; nothing for a library's class.

    Part of the token of an argument that is an instance of the class: a method the app
    calls on it is the class's code. Cached per class, once per process.
    """
    found = _class_tokens.get(cls)
    if found is None:
        if origin_of(cls.__module__) != USER:
            return b""
        found = _walked(cls, lambda walk: walk.enqueue(cls, ""))
        _remember(_class_tokens, cls, found)
    return found


def _walked(start: object, begin: Callable[[_Walk], None]) -> bytes:
    """The token of a walk from ``start``; nothing for one already being walked (it reaches itself)."""
    if start in _walking:
        return b""
    _walking.add(start)
    try:
        walk = _Walk()
        begin(walk)
        return walk.result().token
    finally:
        _walking.discard(start)


def _remember(cache: dict[Any, Any], key: object, value: object) -> None:
    if len(cache) >= 4096:  # bounded: a process that makes functions without end
        cache.clear()
    cache[key] = value


# By code object, with the module's globals it was walked in (a code object can run in
# several: the same file exec'd twice).
_reach_tokens: dict[types.CodeType, tuple[dict[str, Any], bytes]] = {}
_class_tokens: dict[type, bytes] = {}
_walking: set[object] = set()


@attrs.define
class _Walk:
    """One breadth-first walk over what a function reaches, with its findings."""

    parts: set[tuple[str, bytes]] = attrs.field(factory=set)
    code: set[str] = attrs.field(factory=set)
    constants: set[str] = attrs.field(factory=set)
    distributions: set[str] = attrs.field(factory=set)
    not_covered: set[str] = attrs.field(factory=set)
    nondeterministic: set[str] = attrs.field(factory=set)
    files: set[str] = attrs.field(factory=set)
    seen: set[int] = attrs.field(factory=set)
    todo: deque[tuple[Any, str]] = attrs.field(factory=deque)
    truncated: bool = False

    def result(self) -> Reach:
        while self.todo:
            obj, via = self.todo.popleft()
            if isinstance(obj, type):
                self.cls(obj, via)
            else:
                self.function(obj, via=via)
        parts = sorted(self.parts | {(f"d {name}", b"") for name in self.distributions})
        return Reach(
            token=digest(*(label.encode() + b"\0" + token for label, token in parts)),
            code=tuple(sorted(self.code)),
            constants=tuple(sorted(self.constants)),
            distributions=tuple(sorted(self.distributions)),
            not_covered=tuple(sorted(self.not_covered)),
            nondeterministic=tuple(sorted(self.nondeterministic)),
            truncated=self.truncated,
            files=tuple(sorted(self.files)),
        )

    def enqueue(self, obj: Any, via: str) -> None:
        if id(obj) in self.seen:
            return
        if len(self.seen) >= MAX_REACH:
            self.truncated = True
            return
        self.seen.add(id(obj))
        self.todo.append((obj, via))

    def function(self, fn: Any, root: bool = False, via: str = "", closure: bool = True) -> None:
        name = _name(fn)
        if root:
            self.seen.add(id(fn))
        else:
            self.code.add(name)
            self.parts.add((f"f {name}", code_token(fn.__code__)))
            self.constant(name, "<defaults>", (fn.__defaults__, fn.__kwdefaults__), listed=False)
        via = "" if root else via or name
        cells = dict(zip(fn.__code__.co_freevars, fn.__closure__ or (), strict=False)) if closure else {}
        for cell_name, cell in cells.items():
            try:
                value = cell.cell_contents
            except ValueError:  # an empty cell: a name bound later in the enclosing function
                continue
            self.reached(fn.__module__, f"{fn.__qualname__}.<closure {cell_name}>", value, via)
        for holder, attr, obj in references(fn.__code__, fn.__globals__, fn.__module__):
            self.reached(holder, attr, obj, via)
        self.files.update(_in(via, found) for found in file_reads_in(fn.__code__))

    def cls(self, cls: type, via: str) -> None:
        name = _name(cls)
        self.code.add(name)
        data = []
        for attr, value in sorted(vars(cls).items()):
            inner = _unwrap(value)
            if inner:
                for fn in inner:
                    self.reached(cls.__module__, attr, fn, via)
            elif not attr.startswith("__"):
                data.append((attr, value))
        for base in cls.__bases__:
            self.reached(cls.__module__, base.__name__, base, via)
        tokens = [f"{attr}=".encode() + token for attr, token in map(_class_token, data) if token is not None]
        self.parts.add((f"c {name}", b"".join(tokens)))
        # A private attribute with no token is the class's machinery (ABC caches, enum maps), not data.
        self.not_covered.update(
            f"{name}.{attr}" for attr, token in map(_class_token, data) if token is None and not attr.startswith("_")
        )

    def reached(self, holder: str, attr: str, obj: object, via: str) -> None:
        """``obj``, found as ``holder.attr`` in code reached through ``via``."""
        if isinstance(obj, types.ModuleType):
            return
        if isinstance(obj, Unimported):
            self.distributions.add(obj.distribution)
            return
        if (found := nondeterminism(obj)) is not None:
            self.nondeterministic.add(_in(via, found))
        if (found := reads_files_by_name(obj)) is not None:
            self.files.add(_in(via, found))
        obj = _function_behind(obj)
        if isinstance(obj, functools.partial):
            self.reached(holder, attr, obj.func, via)
            self.constant(holder, attr, (obj.args, obj.keywords))
        elif hasattr(obj, "__wrapped__"):  # a decorated function (lru_cache, wraps): what it wraps
            self.reached(holder, attr, obj.__wrapped__, via)
            # and the decorator's wrapper, which runs too: a function, or an object whose class's
            # __call__ it is (the standard library's, lru_cache's, counts as neither)
            self.code_of(obj if isinstance(obj, types.FunctionType) else type(obj), via)
        elif isinstance(obj, (types.FunctionType, type)) or _library_callable(obj):
            self.code_of(obj, via)
        else:
            self.value(holder, attr, obj, via)

    def code_of(self, obj: Any, via: str) -> None:
        origin = origin_of(_defining_module(obj))
        if origin == USER and isinstance(obj, (types.FunctionType, type)):
            self.enqueue(obj, via)
        elif origin not in (USER, STDLIB):
            self.distributions.add(origin)

    def value(self, holder: str, attr: str, obj: object, via: str) -> None:
        origin = origin_of(holder)
        if origin == USER:
            self.constant(holder, attr, obj)
        elif origin != STDLIB:
            self.distributions.add(origin)
        self.code_of(type(obj), via)

    def constant(self, holder: str, attr: str, value: object, listed: bool = True) -> None:
        if type(value).__module__.partition(".")[0] in _HANDLES:
            return
        label = f"{holder}.{attr}"
        if listed:
            self.constants.add(label)
        try:
            self.parts.add((f"k {label}", token_of(value)))
        except Untokenizable:
            self.not_covered.add(f"{label} (a {type(value).__qualname__}, which has no token)")


# Modules whose objects are handles on state (locks, loggers, files, queues), not values
# that decide a result: a global of one is not a constant to key on.
_HANDLES = frozenset(
    {"threading", "_thread", "logging", "multiprocessing", "asyncio", "queue", "io", "_io", "socket",
     "concurrent", "subprocess", "sqlite3", "weakref", "contextvars", "selectors"}
)  # fmt: skip


def _in(via: str, found: str) -> str:
    """``found``, and the function of the user's that it is in when not the app's own."""
    return found if via == "" else f"{found} (in {via})"


def _library_callable(obj: object) -> bool:
    """A callable that is not an instance of the user's own class: a builtin, a ufunc, …"""
    module = getattr(obj, "__module__", None)
    return callable(obj) and origin_of(module if isinstance(module, str) else type(obj).__module__) != USER


def _class_token(item: tuple[str, object]) -> tuple[str, bytes | None]:
    attr, value = item
    try:
        return attr, token_of(value)
    except Untokenizable:
        return attr, None


def _function_behind(obj: object) -> object:
    """The plain function of an app (apps may call each other), a shell app or a bound method."""
    if hasattr(type(obj), "__plait_identity__") and hasattr(obj, "fn"):  # the class: not the lazy property
        obj = obj.fn
    obj = user_function(obj)
    return obj.__func__ if isinstance(obj, types.MethodType) else obj


def user_function(fn: Any) -> Any:
    """The user's function behind a wrapper plait made (a shell command, an output check)."""
    inner = getattr(fn, "__plait_inner__", None)
    return fn if inner is None else user_function(inner[0])


def _unwrap(value: object) -> tuple[Any, ...]:
    """The functions behind a class attribute: methods, static and class methods, properties."""
    if isinstance(value, (staticmethod, classmethod)):
        return (value.__func__,)
    if isinstance(value, property):
        return tuple(f for f in (value.fget, value.fset, value.fdel) if f is not None)
    if isinstance(value, types.FunctionType):
        return (value,)
    return ()


def _name(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', '?')}"


def _defining_module(obj: object) -> str | None:
    """Where ``obj``'s code is: for a function, its globals' module, not the ``__module__``
    that ``functools.wraps`` copies from the function a decorator wraps."""
    if isinstance(obj, types.FunctionType):
        return obj.__globals__.get("__name__")
    return getattr(obj, "__module__", None) or _module_of_builtin(obj)


def _module_of_builtin(obj: object) -> str | None:
    owner = getattr(obj, "__self__", None)
    if isinstance(owner, types.ModuleType):
        return owner.__name__
    return getattr(type(owner), "__module__", None) if owner is not None else None
