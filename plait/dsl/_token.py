"""Deterministic tokens: the bytes a value contributes to a node's Merkle key.

A token depends only on a value's content, never on its identity or on the process
that computes it, so equal work gets equal keys in every run. A value with no such
token raises :class:`Untokenizable`; callers turn that into an error that names the
app and the argument, never into a silent random key.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import hashlib
import struct
import sys
import types
from collections.abc import Callable, Sequence
from pathlib import PurePath
from typing import Any

import attrs

from plait._tracebacks import user_facing

__all__ = [
    "REF_TAG",
    "SCALAR_TOKENS",
    "Untokenizable",
    "code_token",
    "digest",
    "register_token",
    "registered_token",
    "token_of",
]


class Untokenizable(TypeError):
    """A value whose content cannot be hashed deterministically."""

    def __init__(self, value: object, where: str = "") -> None:
        self.value_type = type(value)
        self.where = where
        name = f"{self.value_type.__module__}.{self.value_type.__qualname__}"
        at = f" at {where}" if where else ""
        super().__init__(
            f"cannot hash a {name}{at} deterministically; "
            f"register one with plait.register_token({self.value_type.__qualname__}, fn)"
        )


_registered: dict[type, Callable[[Any], object]] = {}
# What precedes the key of a reference to other work (an Expr or a future) in a token.
REF_TAG = b"K"


@user_facing
def register_token(cls: type, fn: Callable[[Any], object]) -> None:
    """Make instances of ``cls`` part of memo keys through ``fn(instance)``.

    ``fn`` returns any tokenizable value that captures what matters about the instance.

    >>> class Point:
    ...     def __init__(self, x, y): self.x, self.y = x, y
    >>> register_token(Point, lambda p: (p.x, p.y))
    >>> token_of(Point(1, 2)) == token_of(Point(1, 2)) != token_of(Point(2, 1))
    True
    """
    if not isinstance(cls, type):
        raise TypeError(f"register_token(cls, fn): cls is the class whose instances fn tokenizes, not {cls!r:.60}")
    if not callable(fn):
        raise TypeError(f"register_token({cls.__qualname__}, fn): fn is a function of an instance, not {fn!r:.60}")
    _registered[cls] = fn


def digest(*parts: bytes) -> bytes:
    """The 16-byte BLAKE2b digest of ``parts`` joined, for keys.

    >>> len(digest(b"a", b"b"))
    16
    """
    return hashlib.blake2b(b"".join(parts), digest_size=16).digest()


def digest_chunked(parts: Sequence[bytes]) -> bytes:
    """``digest(*parts)`` for many parts, joined a chunk at a time: joining them all at once
    holds a buffer view of 80 B per part while it joins (80 MB for a gather of a million).

    Not part by part: without the chunks' short-lived blocks of a few hundred kB, glibc kept
    handing later buffers of that size out as fresh mappings (its mmap threshold grows only
    when such a block is freed), and a small run's driver took a third more CPU a task.

    >>> parts = [bytes([i % 256]) * 16 for i in range(10_000)]
    >>> digest_chunked(parts) == digest(*parts)
    True
    """
    hasher = hashlib.blake2b(digest_size=16)
    for start in range(0, len(parts), _CHUNK):
        hasher.update(b"".join(parts[start : start + _CHUNK]))
    return hasher.digest()


_CHUNK = 4096


def token_of(value: object, on_ref: Callable[[object], bytes] | None = None, where: str = "") -> bytes:
    """A deterministic token for ``value``.

    ``on_ref`` is asked for the token of anything that is a reference to other work
    (an Expr or a future) and returns its key; without it such a value is untokenizable.

    >>> token_of({"b": 1, "a": [1.5, None]}) == token_of({"a": [1.5, None], "b": 1})
    True
    >>> token_of((1, 2)) == token_of([1, 2])
    False
    """
    scalar = SCALAR_TOKENS.get(type(value))
    if scalar is not None:  # most arguments: no writer, no list, no join
        return scalar(value)
    out: list[bytes] = []
    _Writer(out, on_ref).write(value, where)
    return b"".join(out)


@functools.lru_cache(maxsize=4096)
def code_token(code: types.CodeType) -> bytes:
    """A token for a code object: its bytecode, names and constants, recursively.

    Line numbers and file names are left out, so moving a function does not change
    its identity, while editing a literal in its body does. Code objects are immutable,
    so each one's token is computed once.
    """
    out = [b"c" + _len(len(code.co_code)) + code.co_code, "\0".join(code.co_names).encode() + b"\0"]
    writer = _Writer(out, None)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            out.append(code_token(const))
        else:
            writer.write(const, "a constant")
    return b"".join(out)


def _plain_function_token(fn: types.FunctionType) -> bytes:
    """The token of a function with no closure or defaults: one lookup for the same function again."""
    found = _plain_tokens.get(fn.__code__)
    if found is not None and found[0] is fn.__globals__ and found[1] == fn.__qualname__ and found[2] == fn.__module__:
        return found[3]
    token = b"F" + _qualified(fn) + b"\0" + code_token(fn.__code__) + reach_token(fn) + b"-"
    if len(_plain_tokens) >= 4096:
        _plain_tokens.clear()
    _plain_tokens[fn.__code__] = (fn.__globals__, fn.__qualname__, fn.__module__, token)
    return token


_plain_tokens: dict[types.CodeType, tuple[dict[str, Any], str, str, bytes]] = {}


def _len(n: int) -> bytes:
    return struct.pack("<Q", n)


def _qualified(obj: Any) -> bytes:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', '?')}".encode()


@attrs.define
class _Writer:
    out: list[bytes]
    on_ref: Callable[[object], bytes] | None
    active: set[int] = attrs.field(factory=set)

    def write(self, value: object, where: str) -> None:
        writer = SCALAR_TOKENS.get(type(value))
        if writer is not None:
            self.out.append(writer(value))
            return
        if id(value) in self.active:
            raise Untokenizable(value, where or "a cycle")
        self.active.add(id(value))
        try:
            self.write_compound(value, where)
        finally:
            self.active.discard(id(value))

    def write_compound(self, value: object, where: str) -> None:  # noqa: C901, PLR0912
        out = self.out
        cls = type(value)
        if cls in (list, tuple):
            seq: Any = value
            out.append((b"L" if cls is list else b"T") + _len(len(seq)))
            for i, item in enumerate(seq):
                self.write(item, f"{where}[{i}]")
        elif cls is dict:
            mapping: Any = value
            items = sorted((self.sub(k, where), self.sub(v, f"{where}[{k!r}]")) for k, v in mapping.items())
            out.append(b"D" + _len(len(items)))
            out.extend(k + v for k, v in items)
        elif cls in (set, frozenset):
            elems = sorted(self.sub(e, where) for e in value)  # type: ignore[attr-defined]
            out.append(b"S" + _len(len(elems)))
            out.extend(elems)
        elif isinstance(value, _CALLABLES) or hasattr(value, "__plait_identity__"):
            self.write_callable(value, where)
        elif (reg := registered_token(cls)) is not None:
            out.append(b"R" + _qualified(cls) + class_token(cls) + b"\0")
            self.write(reg(value), where)
        elif self.on_ref is not None and (ref := self.on_ref(value)):
            out.append(REF_TAG + ref)
        elif isinstance(value, enum.Enum):
            out.append(b"N" + _qualified(cls) + b"\0" + value.name.encode() + b"\0")
        elif attrs.has(cls):
            self.write_fields(value, [f.name for f in attrs.fields(cls)], where)
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            self.write_fields(value, [f.name for f in dataclasses.fields(value)], where)
        elif isinstance(value, PurePath):
            out.append(b"P" + str(value).encode() + b"\0")
        elif "numpy" in sys.modules and _is_ndarray(value):
            self.write_ndarray(value, where)
        elif isinstance(value, tuple) and hasattr(value, "_fields"):  # namedtuple
            self.write_fields(value, list(value._fields), where)
        else:
            raise Untokenizable(value, where)

    def sub(self, value: object, where: str) -> bytes:
        out: list[bytes] = []
        _Writer(out, self.on_ref, self.active).write(value, where)
        return b"".join(out)

    def write_fields(self, value: object, names: list[str], where: str) -> None:
        self.out.append(b"A" + _qualified(type(value)) + class_token(type(value)) + b"\0" + _len(len(names)))
        for name in names:
            self.out.append(name.encode() + b"\0")
            self.write(getattr(value, name), f"{where}.{name}")

    def write_callable(self, fn: Any, where: str) -> None:
        if isinstance(fn, functools.partial):
            self.out.append(b"p")
            self.write((fn.func, fn.args, fn.keywords), where)
        elif isinstance(fn, types.MethodType):
            self.out.append(b"m")
            self.write((fn.__func__, fn.__self__), where)
        elif isinstance(fn, types.FunctionType):
            if fn.__closure__ is None and fn.__defaults__ is None and fn.__kwdefaults__ is None:
                self.out.append(_plain_function_token(fn))  # the common case, kept cheap: maps
                return
            self.out.append(b"F" + _qualified(fn) + b"\0" + code_token(fn.__code__) + reach_token(fn))
            cells = tuple(c.cell_contents for c in fn.__closure__ or ())
            self.write((cells, fn.__defaults__, fn.__kwdefaults__), f"{where} (closure of {fn.__qualname__})")
        else:  # classes, builtins and apps are identified by name (apps add their code hash)
            identity = getattr(fn, "__plait_identity__", b"")
            self.out.append(b"C" + _qualified(fn) + b"\0" + identity)

    def write_ndarray(self, array: Any, where: str) -> None:
        if array.dtype.hasobject:  # its buffer holds addresses, not values
            raise Untokenizable(array, f"{where} (an array of objects)")
        # The memory order is part of the key (``tobytes``, ``ravel`` and C code see it);
        # a strided view counts as its values laid out in that order.
        order = "F" if array.flags.f_contiguous and not array.flags.c_contiguous else "C"
        header = f"{array.dtype.str}|{array.shape}|{order}".encode()
        self.out.append(b"n" + header + b"\0" + _len(array.nbytes))
        self.out.append(array.tobytes(order))


_CALLABLES = (
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    functools.partial,
    type,
)


def registered_token(cls: type) -> Callable[[Any], object] | None:
    """The function ``register_token`` gave for ``cls`` or its nearest base, if any."""
    if not _registered:
        return None
    for base in cls.__mro__:
        if base in _registered:
            return _registered[base]
    return None


def _is_ndarray(value: object) -> bool:
    return type(value).__module__ == "numpy" and type(value).__name__ == "ndarray"


# The token of each scalar type, by exact type: what most arguments are.
SCALAR_TOKENS: dict[type, Callable[[Any], bytes]] = {
    type(None): lambda _: b"0",
    bool: lambda v: b"t" if v else b"f",
    int: lambda v: b"i%d\0" % v,
    float: lambda v: b"d" + struct.pack("<d", v),
    complex: lambda v: b"j" + struct.pack("<dd", v.real, v.imag),
    str: lambda v: b"s" + _len(len(v)) + v.encode("utf-8", "surrogatepass"),
    bytes: lambda v: b"b" + _len(len(v)) + v,
    type(Ellipsis): lambda _: b"e",
    range: lambda v: b"r%d\0%d\0%d\0" % (v.start, v.stop, v.step),
}

# What a function reaches is part of its token; that walk tokenizes constants with this
# module, so it is imported once this module's names exist.
from plait.dsl._reach import class_token, reach_token  # noqa: E402
