"""Executors and providers that other packages add, found through entry points.

A package declares them in its metadata, in the group ``plait.executors`` or
``plait.providers``; the entry point's value is a callable that returns the executor
(given the number of workers, or nothing) or the provider (given nothing)::

    [project.entry-points."plait.executors"]
    gpus = "my_package:GpuExecutor"

so ``plait run flow.py:result --executor gpus:4`` runs on ``GpuExecutor(4)``.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable
from typing import Any

from plait.backends._task import Executor
from plait.backends.providers._base import Provider

__all__ = ["EXECUTORS", "PROVIDERS", "executor_plugin", "plugin_names", "provider_plugin"]

EXECUTORS = "plait.executors"
PROVIDERS = "plait.providers"


def plugin_names(group: str) -> list[str]:
    """The names installed packages give plugins in ``group``, sorted."""
    return sorted({entry.name for entry in importlib.metadata.entry_points(group=group)})


def executor_plugin(name: str, workers: int | None = None) -> Executor:
    """The executor the plugin ``name`` makes, with ``workers`` workers (None: its default)."""
    factory, where = _load(EXECUTORS, name)
    executor = factory() if workers is None else factory(workers)
    if not isinstance(executor, Executor):
        raise TypeError(f"{where} returned {_lacking(executor, Executor)}")
    return executor


def provider_plugin(name: str) -> Provider:
    """The provider the plugin ``name`` makes."""
    factory, where = _load(PROVIDERS, name)
    provider = factory()
    if not isinstance(provider, Provider):
        raise TypeError(f"{where} returned {_lacking(provider, Provider)}")
    return provider


def _lacking(made: object, protocol: type) -> str:
    """What ``made`` is, and what of ``protocol`` it lacks.

    >>> _lacking(42, Executor)
    'a int, not a plait Executor (it has no can_kill, cancel, capacity, label, shutdown, start, submit)'
    """
    members = {name for name in vars(protocol) if not name.startswith("_")} | set(protocol.__annotations__)
    missing = sorted(name for name in members if not hasattr(made, name))
    lacks = f" (it has no {', '.join(missing)})" if missing else ""
    return f"a {type(made).__qualname__}, not a plait {protocol.__name__}{lacks}"


def _load(group: str, name: str) -> tuple[Callable[..., Any], str]:
    """The plugin's callable, and how to name it in an error."""
    entries = importlib.metadata.entry_points(group=group, name=name)
    if not entries:
        installed = ", ".join(plugin_names(group)) or "none"
        raise LookupError(f"no {group} plugin named {name!r} is installed (installed: {installed})")
    entry = next(iter(entries))
    where = f"the {group} plugin {name!r} ({entry.value})"
    try:
        factory = entry.load()
    except Exception as error:
        raise ImportError(f"{where} cannot be loaded: {type(error).__name__}: {error}") from error
    if not callable(factory):
        raise TypeError(f"{where} is a {type(factory).__qualname__}, not a callable that makes one")
    return factory, where
