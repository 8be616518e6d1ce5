"""A package's names, imported when first used: ``import plait`` costs next to nothing,
and a worker pool (``plait worker``) imports only the modules it runs. A name's modules
are imported with no young collection of what they make (``_collector.importing``)."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from plait._collector import importing

__all__ = ["exports"]


def exports(package: str, modules: Mapping[str, Sequence[str]]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A module ``__getattr__`` and ``__dir__`` for ``package``, which exports the names
    ``modules`` lists under the module defining each (a name that is itself the module
    ``package.name`` is that module).

    >>> getattr_, dir_ = exports("json", {"json.decoder": ["JSONDecodeError"]})
    >>> getattr_("JSONDecodeError").__name__, "JSONDecodeError" in dir_()
    ('JSONDecodeError', True)
    >>> getattr_("nothing")
    Traceback (most recent call last):
    AttributeError: module 'json' has no attribute 'nothing'
    """
    where = {name: module for module, names in modules.items() for name in names}

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        with importing():
            value = importlib.import_module(module)
        if module != f"{package}.{name}":
            value = getattr(value, name)
        setattr(sys.modules[package], name, value)  # found once: later lookups skip this function
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *where})

    return __getattr__, __dir__
