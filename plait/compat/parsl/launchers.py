"""Parsl's launchers (``parsl.launchers``): how a block starts its workers on its nodes.

A provider given one of these uses plait's launcher of the same kind (``single``,
``srun``, ``mpiexec``); the others have no plait equivalent and are refused by name.
"""

from __future__ import annotations

__all__ = ["MpiExecLauncher", "SimpleLauncher", "SingleNodeLauncher", "SrunLauncher"]


class _Launcher:
    def __init__(self, *args: object, **kwargs: object) -> None:
        self.args, self.kwargs = args, kwargs

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class SingleNodeLauncher(_Launcher):
    """Workers on the block's one node."""


class SimpleLauncher(_Launcher):
    """The worker command as it is, once per block."""


class SrunLauncher(_Launcher):
    """Workers on every node of the block, through ``srun``."""


class MpiExecLauncher(_Launcher):
    """Workers on every node of the block, through ``mpiexec``."""
