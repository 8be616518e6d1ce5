"""Parsl's providers (``parsl.providers``), mapped to plait's.

A provider here holds Parsl's arguments; loading the configuration makes plait's provider
of the same scheduler from them. Arguments plait's provider does not take are an error
naming them, except Parsl's tuning knobs that have no meaning here (``parallelism``,
``cmd_timeout`` is plait's ``command_timeout``).
"""

from __future__ import annotations

from typing import Any

import plait as pl

__all__ = [
    "CondorProvider",
    "GridEngineProvider",
    "LSFProvider",
    "LocalProvider",
    "PBSProProvider",
    "SlurmProvider",
]

# Parsl's name -> plait's name for the same setting
_RENAMED = {"cmd_timeout": "command_timeout"}
# Parsl settings that change nothing here: plait scales blocks on queue depth itself
_NO_EFFECT = ("parallelism", "move_files", "channel")


class _Provider:
    """Parsl's arguments for one provider, turned into plait's provider at load time."""

    plait_class: Any = None

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.init_blocks = kwargs.get("init_blocks", 1)
        self.min_blocks = kwargs.get("min_blocks", 0)
        self.max_blocks = kwargs.get("max_blocks", 1)

    def to_plait(self, workers_per_block: int | None) -> Any:
        """plait's provider; ``workers_per_block`` is the executor's workers per node."""
        kwargs = {_RENAMED.get(k, k): v for k, v in self.kwargs.items() if k not in _NO_EFFECT}
        if "launcher" in kwargs:
            kwargs["launcher"] = _launcher(kwargs["launcher"])
        try:
            return self.plait_class(**kwargs)
        except TypeError as error:
            theirs = self.plait_class.__name__
            raise TypeError(f"{type(self).__name__}: {error} (plait's {theirs} has no such setting)") from None

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.kwargs.items())
        return f"{type(self).__name__}({args})"


def _launcher(launcher: object) -> str:
    """plait's name for a Parsl launcher object (or a name already)."""
    if isinstance(launcher, str):
        return launcher
    known = {
        "SingleNodeLauncher": "single",
        "SimpleLauncher": "single",
        "SrunLauncher": "srun",
        "MpiExecLauncher": "mpiexec",
    }
    name = type(launcher).__name__
    if name not in known:
        raise TypeError(f"launcher {name} has no plait equivalent; plait has {sorted(set(known.values()))}")
    return known[name]


class LocalProvider(_Provider):
    """Worker pools as processes on this machine."""

    def to_plait(self, workers_per_block: int | None) -> Any:
        # one node, this one: how jobs are launched on nodes means nothing here
        dropped = (*_NO_EFFECT, "launcher", "cmd_timeout", "nodes_per_block")
        kwargs = {k: v for k, v in self.kwargs.items() if k not in dropped}
        if kwargs.pop("worker_init", ""):
            raise TypeError(
                "LocalProvider(worker_init=...): plait's LocalProvider starts pools in this environment; drop it"
            )
        try:
            return pl.LocalProvider(workers_per_block, **kwargs)
        except TypeError as error:
            raise TypeError(f"LocalProvider: {error}") from None


class SlurmProvider(_Provider):
    plait_class = pl.SlurmProvider


class PBSProProvider(_Provider):
    plait_class = pl.PBSProProvider


class LSFProvider(_Provider):
    plait_class = pl.LSFProvider


class CondorProvider(_Provider):
    plait_class = pl.CondorProvider


class GridEngineProvider(_Provider):
    plait_class = pl.GridEngineProvider
