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
``time.time``, …): an app that reads one is likely impure.
"""

from __future__ import annotations

import dis
import functools
import importlib
import importlib.util
import os
import sys
import sysconfig
import types
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

import attrs

from plait.dsl._token import Untokenizable, code_token, digest, token_of

__all__ = [
    "NO_REACH",
    "ImpureAppWarning",
    "MemoKeyWarning",
    "Reach",
    "class_token",
    "nondeterminism",
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


NO_REACH = Reach(b"", (), (), (), (), ())


class ImpureAppWarning(UserWarning):
    """An app reads a source of varying results, or is called bare twice: calls would share."""


class MemoKeyWarning(UserWarning):
    """Something an app reads has no token, so the memo cannot see it change."""


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
        if _origin(cls.__module__) != _USER:
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


_NON_DETERMINISTIC_TIME = (
    "time", "time_ns", "perf_counter", "perf_counter_ns", "monotonic", "monotonic_ns",
    "process_time", "process_time_ns", "thread_time", "thread_time_ns", "clock_gettime",
)  # fmt: skip


def nondeterminism(obj: object) -> str | None:
    """The name of a common source of varying results that ``obj`` is, or None.

    >>> import random, time
    >>> nondeterminism(random.random), nondeterminism(time.time), nondeterminism(time.sleep)
    ('random.random', 'time.time', None)
    >>> nondeterminism(random.Random(3).random) is None
    True
    """
    owner = getattr(obj, "__self__", None)
    name = getattr(obj, "__name__", "")
    rng = sys.modules.get("random")
    if rng is not None and (owner is getattr(rng, "_inst", None) or _is_subclass(obj, rng.SystemRandom)):
        return f"random.{name}"
    nprandom = sys.modules.get("numpy.random")
    if nprandom is not None and owner is getattr(getattr(nprandom, "mtrand", None), "_rand", None):
        return f"numpy.random.{name}"
    for module, names in _KNOWN:
        found = sys.modules.get(module)
        if found is not None and name in names and getattr(found, name, None) is obj:
            return f"{module}.{name}"
    dt = sys.modules.get("datetime")
    if dt is not None and owner in (dt.datetime, dt.date) and name in ("now", "today", "utcnow"):
        return f"datetime.{owner.__name__}.{name}"
    return None


_KNOWN: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("time", _NON_DETERMINISTIC_TIME),
    ("os", ("urandom", "getrandom")),
    ("uuid", ("uuid1", "uuid4")),
    ("secrets", ("token_bytes", "token_hex", "token_urlsafe", "randbelow", "randbits", "choice")),
)


def _is_subclass(obj: object, cls: type) -> bool:
    return isinstance(obj, type) and issubclass(obj, cls)


@attrs.define
class _Walk:
    """One breadth-first walk over what a function reaches, with its findings."""

    parts: set[tuple[str, bytes]] = attrs.field(factory=set)
    code: set[str] = attrs.field(factory=set)
    constants: set[str] = attrs.field(factory=set)
    distributions: set[str] = attrs.field(factory=set)
    not_covered: set[str] = attrs.field(factory=set)
    nondeterministic: set[str] = attrs.field(factory=set)
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
        for holder, attr, obj in _references(fn.__code__, fn.__globals__, fn.__module__):
            self.reached(holder, attr, obj, via)

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
        if isinstance(obj, _Unimported):
            self.distributions.add(obj.distribution)
            return
        if (found := nondeterminism(obj)) is not None:
            self.nondeterministic.add(found if via == "" else f"{found} (in {via})")
        obj = _function_behind(obj)
        if isinstance(obj, functools.partial):
            self.reached(holder, attr, obj.func, via)
            self.constant(holder, attr, (obj.args, obj.keywords))
        elif hasattr(obj, "__wrapped__"):  # a decorated function (lru_cache, wraps): what it wraps
            self.reached(holder, attr, obj.__wrapped__, via)
        elif isinstance(obj, (types.FunctionType, type)) or _library_callable(obj):
            self.code_of(obj, via)
        else:
            self.value(holder, attr, obj, via)

    def code_of(self, obj: Any, via: str) -> None:
        origin = _origin(getattr(obj, "__module__", None) or _module_of_builtin(obj))
        if origin == _USER and isinstance(obj, (types.FunctionType, type)):
            self.enqueue(obj, via)
        elif origin not in (_USER, _STDLIB):
            self.distributions.add(origin)

    def value(self, holder: str, attr: str, obj: object, via: str) -> None:
        origin = _origin(holder)
        if origin == _USER:
            self.constant(holder, attr, obj)
        elif origin != _STDLIB:
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


def _library_callable(obj: object) -> bool:
    """A callable that is not an instance of the user's own class: a builtin, a ufunc, …"""
    module = getattr(obj, "__module__", None)
    return callable(obj) and _origin(module if isinstance(module, str) else type(obj).__module__) != _USER


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


def _module_of_builtin(obj: object) -> str | None:
    owner = getattr(obj, "__self__", None)
    if isinstance(owner, types.ModuleType):
        return owner.__name__
    return getattr(type(owner), "__module__", None) if owner is not None else None


_LOADS = frozenset({"LOAD_GLOBAL", "LOAD_NAME"})
_LOCAL_LOADS = frozenset({"LOAD_FAST", "LOAD_DEREF", "LOAD_CLOSURE", "LOAD_FAST_CHECK", "LOAD_FAST_AND_CLEAR"})
_ATTRS = frozenset({"LOAD_ATTR", "LOAD_METHOD"})
_STORES = frozenset({"STORE_FAST", "STORE_DEREF", "STORE_NAME", "STORE_GLOBAL"})


def _references(
    code: types.CodeType, globals_: dict[str, Any], module: str, imported: dict[str, Any] | None = None
) -> Iterator[tuple[str, str, object]]:
    """``(holder module, name, object)`` for each global, import and module attribute ``code`` names.

    A chain ``np.random.rand`` yields every object along it but the modules; a name not
    found yields nothing (it may be a global defined later, or a typo the call will show).
    """
    scan = _Scan(globals_, module, dict(imported or {}))
    for ins in dis.get_instructions(code):
        yield from scan.step(ins.opname, ins.argval)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _references(const, globals_, module, scan.imported)


@attrs.define
class _Scan:
    """The state of reading one code object's instructions in order."""

    globals_: dict[str, Any]
    module: str
    imported: dict[str, Any]  # locals bound by an import in this body (or an enclosing one)
    chain: tuple[str, object] | None = None  # (holder, object) of the attribute chain being followed
    pending: object = None  # what an IMPORT_NAME/IMPORT_FROM left on the stack
    consts: deque[object] = attrs.field(factory=lambda: deque([0, None], maxlen=2))  # an import's level, fromlist

    def step(self, op: str, name: Any) -> Iterator[tuple[str, str, object]]:
        if op in _ATTRS and self.chain is not None and isinstance(self.chain[1], (types.ModuleType, type)):
            yield from self.attribute(name)
            return
        self.chain = None
        if op == "LOAD_CONST":
            self.consts.append(name)
        elif op in _LOADS:
            yield from self.global_(name)
        elif op in _LOCAL_LOADS and name in self.imported:
            self.chain = (self.module, self.imported[name])
        elif op == "IMPORT_NAME":
            yield from self.import_(name)
        elif op == "IMPORT_FROM" and isinstance(self.pending, types.ModuleType):
            obj = _attribute(self.pending, name)
            if obj is not _MISSING:
                yield self.pending.__name__, name, obj
            self.pending = None if obj is _MISSING else obj
        elif op in _STORES and self.pending is not None:
            self.imported[name], self.pending = self.pending, None

    def attribute(self, name: str) -> Iterator[tuple[str, str, object]]:
        assert self.chain is not None
        holder, owner = self.chain
        holder = owner.__name__ if isinstance(owner, types.ModuleType) else holder
        obj = _attribute(owner, name)
        self.chain = None if obj is _MISSING else (holder, obj)
        if obj is not _MISSING:
            yield holder, name, obj

    def global_(self, name: str) -> Iterator[tuple[str, str, object]]:
        builtins_ = self.globals_.get("__builtins__", {})
        builtins_ = vars(builtins_) if isinstance(builtins_, types.ModuleType) else builtins_
        obj = self.globals_.get(name, builtins_.get(name, _MISSING))
        if obj is not _MISSING:
            self.chain = (self.module, obj)
            yield self.module, name, obj

    def import_(self, name: str) -> Iterator[tuple[str, str, object]]:
        level, fromlist = self.consts
        self.pending = _import(name, level if isinstance(level, int) else 0, fromlist is None, self.globals_)
        if isinstance(self.pending, _Unimported):
            yield self.module, name, self.pending


_MISSING = object()


@attrs.frozen
class _Unimported:
    """A distribution's module that a function imports and this process has not."""

    distribution: str


def _attribute(obj: object, name: str) -> object:
    try:
        return getattr(obj, name)
    except Exception:  # a module or class attribute that raises: nothing to follow
        return _MISSING


def _import(name: str, level: int, binds_top: bool, globals_: dict[str, Any]) -> object:
    """The module an ``import`` in a function body binds, imported only if it is the user's own.

    A distribution's module is not imported here (the driver may not even have it): its
    version is found from its name. ``import a.b`` binds ``a``; ``from a.b import c`` and
    ``import a.b as c`` take ``a.b``.
    """
    try:
        full = importlib.util.resolve_name("." * level + name, globals_.get("__package__") or "") if level else name
    except (ImportError, ValueError):
        return None
    top = full.partition(".")[0]
    if full not in sys.modules:
        origin = _origin(top)
        if origin != _USER:
            return None if origin == _STDLIB else _Unimported(origin)
        try:
            importlib.import_module(full)
        except Exception:  # the task will say so when it runs; nothing here to key on
            return None
    return sys.modules.get(top if binds_top else full)


_USER = "user"
_STDLIB = "stdlib"


@functools.cache
def _origin(module: str | None) -> str:
    """``"user"``, ``"stdlib"``, or ``"name==version"`` of the distribution ``module`` is in."""
    top = (module or "builtins").partition(".")[0]
    if top in ("__main__", "plait"):  # a script; plait is a distribution even when installed editable
        return _USER if top == "__main__" else _distribution("plait")
    if module is None or module in sys.builtin_module_names:
        return _STDLIB
    path = _path_of(module) or _path_of(top)
    if path is None:  # the user's module made in memory, or a compiled module's made-up name
        return _USER if module in sys.modules and top not in sys.stdlib_module_names else _STDLIB
    if _in_site_packages(path):
        return _distribution(top)
    if any(path.startswith(p) for p in _stdlib_dirs()) or (top in sys.stdlib_module_names and "." not in path):
        return _STDLIB
    return _USER


def _path_of(module: str) -> str | None:
    found = sys.modules.get(module)
    path = getattr(found, "__file__", None)
    if path is None:
        try:
            spec = importlib.util.find_spec(module) if "." not in module else None
        except (ImportError, ValueError):
            return None
        path = spec.origin if spec is not None and spec.has_location else None
    return os.path.realpath(path) if path else None


def _in_site_packages(path: str) -> bool:
    parts = path.split(os.sep)
    return "site-packages" in parts or "dist-packages" in parts


@functools.cache
def _stdlib_dirs() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    return tuple(os.path.realpath(paths[k]) + os.sep for k in ("stdlib", "platstdlib") if k in paths)


@functools.cache
def _distributions() -> dict[str, list[str]]:
    import importlib.metadata  # here, not at the top: it costs start-up ~20 ms, and most apps reach no distribution

    return dict(importlib.metadata.packages_distributions())


def _distribution(top: str) -> str:
    import importlib.metadata

    for name in _distributions().get(top, []):
        try:
            return f"{name}=={importlib.metadata.version(name)}"
        except importlib.metadata.PackageNotFoundError:
            continue
    version = getattr(sys.modules.get(top), "__version__", "?")
    return f"{top}=={version}"
