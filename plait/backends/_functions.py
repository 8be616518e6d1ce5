"""Pickling a task's function so that a failure on the worker names the user's file and line.

cloudpickle sends a function by value unless its module's attribute of that name is the
function itself, which is never true of an app's function: the name is bound to the App.
So every app went by value, and cloudpickle names by-value code ``<dynamic-code>``.
Here an app's function goes by reference (module, name) when it has one, with its
by-value form alongside for a worker that cannot import the module, or imports another
version of it (another host, an edited file); by-value code keeps its file name, so the
driver, which has the file, shows its lines.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import pickle
import sys
import types
from collections import ChainMap
from collections.abc import Callable
from typing import Any, ClassVar

import cloudpickle

__all__ = ["dumps_function_payload"]


def dumps_function_payload(fn: Callable[..., Any]) -> bytes:
    """``fn`` pickled for a worker: apps' functions by reference where they can be."""
    buffer = io.BytesIO()
    _Pickler(buffer).dump(fn)
    return buffer.getvalue()


def _by_value(fn: types.FunctionType) -> bytes:
    buffer = io.BytesIO()
    _Pickler(buffer, by_value=fn).dump(fn)
    return buffer.getvalue()


def _app_reference(fn: types.FunctionType) -> tuple[str, str] | None:
    """``(module, qualname)`` when that name holds an object wrapping ``fn`` (an app).

    A function in ``__main__``, or in a module registered to go by value (``plait run
    file.py`` does that: workers cannot import the file), has no reference.
    """
    module_name, qualname = fn.__module__, fn.__qualname__
    module = sys.modules.get(module_name) if module_name != "__main__" else None
    if module is None or module_name in cloudpickle.list_registry_pickle_by_value():
        return None
    found: Any = module
    for part in qualname.split("."):
        found = getattr(found, part, None)
    return (module_name, qualname) if getattr(found, "__wrapped__", None) is fn else None


def _fingerprint(code: types.CodeType) -> bytes:
    """What the code does: bytecode, names and constants, nested code included (a
    changed constant changes no bytecode). Line numbers and file names are left out.

    >>> _fingerprint(compile("x + 1", "a", "eval")) != _fingerprint(compile("x + 2", "b", "eval"))
    True
    """
    parts, pending = [], [code]
    while pending:
        current = pending.pop()
        constants = [c for c in current.co_consts if not isinstance(c, types.CodeType)]
        parts += [current.co_code, repr((current.co_names, constants)).encode()]
        pending += [c for c in current.co_consts if isinstance(c, types.CodeType)]
    return hashlib.sha256(b"\0".join(parts)).digest()


def _function_at(module: str, qualname: str, fingerprint: bytes, by_value: bytes) -> Any:
    """On the worker: the app function at ``module.qualname`` when it imports and its
    code is the driver's, else the by-value copy."""
    try:
        found: Any = importlib.import_module(module)
        for part in qualname.split("."):
            found = getattr(found, part)
        fn = found.__wrapped__
        if _fingerprint(fn.__code__) == fingerprint:
            return fn
    except Exception:  # not importable here: what was sent by value is the function
        pass
    return pickle.loads(by_value)


def _code_named(rebuild: Callable[..., types.CodeType], args: tuple[Any, ...], filename: str) -> types.CodeType:
    return rebuild(*args).replace(co_filename=filename)


def _reduce_code(code: types.CodeType) -> tuple[Any, ...]:
    rebuild, args = cloudpickle.cloudpickle._code_reduce(code)
    return _code_named, (rebuild, args, code.co_filename)


class _Pickler(cloudpickle.Pickler):  # type: ignore[misc]  # cloudpickle has no types
    dispatch_table: ClassVar[ChainMap[Any, Any]] = ChainMap(
        {types.CodeType: _reduce_code}, cloudpickle.Pickler.dispatch_table
    )

    def __init__(self, file: io.BytesIO, by_value: types.FunctionType | None = None) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._by_value = by_value

    def reducer_override(self, obj: Any) -> Any:
        if type(obj) is types.FunctionType and obj is not self._by_value:
            reference = _app_reference(obj)
            if reference is not None:
                return _function_at, (*reference, _fingerprint(obj.__code__), _by_value(obj))
        return super().reducer_override(obj)
