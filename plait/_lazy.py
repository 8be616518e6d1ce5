"""A package's names, imported when first used: ``import plait`` costs next to nothing,
and a worker pool (``plait worker``) imports only the modules it runs. A name's modules
are imported with no young collection of what they make (``_collector.importing``)."""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from plait._collector import importing

__all__ = ["exports"]


def exports(
    package: str,
    modules: Mapping[str, Sequence[str]],
    imported: Callable[[], None] | None = None,
    habits: Mapping[str, str] | None = None,
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A module ``__getattr__`` and ``__dir__`` for ``package``, which exports the names
    ``modules`` lists under the module defining each (a name that is itself the module
    ``package.name`` is that module); ``imported`` is called after each name's first import.
    A name it does not export is refused at the user's line alone, saying what ``habits``
    says of it (a name users bring from elsewhere), or else naming the closest public ones.

    >>> getattr_, dir_ = exports("json", {"json.decoder": ["JSONDecodeError"]})
    >>> getattr_("JSONDecodeError").__name__, "JSONDecodeError" in dir_()
    ('JSONDecodeError', True)
    >>> getattr_("JSONDecodeErorr")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    AttributeError: module 'json' has no attribute 'JSONDecodeErorr'; did you mean 'JSONDecodeError', ...?
    """
    where = {name: module for module, names in modules.items() for name in names}

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            caller = sys._getframe(1)
            # A tool's probe (``__wrapped__``), or the import system's for a submodule (``from
            # plait import testing`` asks first whether plait has one): answered plainly, at once.
            if name.startswith("_") or caller.f_code.co_filename.startswith("<frozen importlib."):
                raise AttributeError(f"module {package!r} has no attribute {name!r}", obj=sys.modules[package])
            try:
                raise _misspelt(sys.modules[package], name, [*where], caller, (habits or {}).get(name))
            except (AttributeError, ImportError) as error:
                from plait._tracebacks import user_frames  # for the error only, as the hint

                user_frames(error)  # this frame, cut: a bare raise does not add it back
                raise
        with importing():
            value = importlib.import_module(module)
        if module != f"{package}.{name}":
            value = getattr(value, name)
        setattr(sys.modules[package], name, value)  # found once: later lookups skip this function
        if imported is not None:
            imported()
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *where})

    return __getattr__, __dir__


def _misspelt(
    package: types.ModuleType, name: str, exported: list[str], caller: types.FrameType, habit: str | None
) -> AttributeError | ImportError:
    """The error for a name ``package`` does not have, with ``habit`` (what to use instead)
    or the closest names it has: an ImportError to a ``from package import name``, whose
    opcode would replace an AttributeError with its own and drop the hint."""
    import opcode

    from plait._spelling import did_you_mean

    public = getattr(package, "__all__", exported)
    hint = habit or did_you_mean(name, public) or f"dir({package.__name__}) lists its names"
    if caller.f_code.co_code[caller.f_lasti] == opcode.opmap["IMPORT_FROM"]:
        return ImportError(f"cannot import name {name!r} from {package.__name__!r}; {hint}", name=package.__name__)
    # obj= set, so that Python adds no suggestion of its own (it reads name= for that)
    return AttributeError(f"module {package.__name__!r} has no attribute {name!r}; {hint}", obj=package)
