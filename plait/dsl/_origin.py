"""Where a module comes from: the user's own code, the standard library, or a distribution.

The user's code is what an app's key reads the code of; a distribution is keyed by its
name and version; the standard library by neither (it changes with the interpreter).
"""

from __future__ import annotations

import functools
import importlib.util
import os
import sys
import sysconfig

__all__ = ["STDLIB", "USER", "origin_of"]

USER = "user"
STDLIB = "stdlib"


@functools.cache
def origin_of(module: str | None) -> str:
    """``"user"``, ``"stdlib"``, or ``"name==version"`` of the distribution ``module`` is in."""
    top = (module or "builtins").partition(".")[0]
    if top in ("__main__", "plait"):  # a script; plait is a distribution even when installed editable
        return USER if top == "__main__" else _distribution("plait")
    if module is None or module in sys.builtin_module_names:
        return STDLIB
    path = _path_of(module) or _path_of(top)
    if path is None:  # the user's module made in memory, or a compiled module's made-up name
        return USER if module in sys.modules and top not in sys.stdlib_module_names else STDLIB
    if _in_site_packages(path):
        return _distribution(top)
    if any(path.startswith(p) for p in _stdlib_dirs()) or (top in sys.stdlib_module_names and "." not in path):
        return STDLIB
    return USER


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
