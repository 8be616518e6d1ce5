"""Reading a function's bytecode for what it names: globals, imports, module attributes.

Nothing is run: the instructions are read in order, following ``np.random.rand`` chains
through modules and classes, and an import in the body binds a local the reader follows.
A user's module an import names is imported (it is part of the user's code); a
distribution's is not, only named by its distribution.
"""

from __future__ import annotations

import dis
import importlib
import importlib.util
import sys
import types
from collections import deque
from collections.abc import Iterator
from typing import Any

import attrs

from plait.dsl._origin import STDLIB, USER, origin_of

__all__ = ["Unimported", "references"]

_LOADS = frozenset({"LOAD_GLOBAL", "LOAD_NAME"})
_LOCAL_LOADS = frozenset({"LOAD_FAST", "LOAD_DEREF", "LOAD_CLOSURE", "LOAD_FAST_CHECK", "LOAD_FAST_AND_CLEAR"})
_ATTRS = frozenset({"LOAD_ATTR", "LOAD_METHOD"})
_STORES = frozenset({"STORE_FAST", "STORE_DEREF", "STORE_NAME", "STORE_GLOBAL"})


def references(
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
            yield from references(const, globals_, module, scan.imported)


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
        if isinstance(self.pending, Unimported):
            yield self.module, name, self.pending


_MISSING = object()


@attrs.frozen
class Unimported:
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
        origin = origin_of(top)
        if origin != USER:
            return None if origin == STDLIB else Unimported(origin)
        try:
            importlib.import_module(full)
        except Exception:  # the task will say so when it runs; nothing here to key on
            return None
    return sys.modules.get(top if binds_top else full)
