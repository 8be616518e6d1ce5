"""plait: parallel workflows as functional expressions.

Decorate functions with :func:`app`; calling an app builds an :class:`Expr` and runs
nothing. Compose Exprs with ``map``, ``bind``, :func:`gather` and :func:`traverse`,
then :func:`run` them, or submit them to a :class:`Runtime` with the executors you
choose.
"""

from typing import TYPE_CHECKING

from plait._version import __version__ as __version__

# Each name is imported when first used (see plait._lazy); type checkers read them here.
if TYPE_CHECKING:
    from plait import monitoring
    from plait.backends import (
        Executor,
        ProcessExecutor,
        RemoteError,
        TaskResult,
        TaskSpec,
        TaskTimeout,
        ThreadExecutor,
        WorkerLost,
    )
    from plait.backends._batch import BatchExecutor
    from plait.backends._dask import DaskExecutor
    from plait.backends._environment import PackedEnvironment
    from plait.backends._ray import RayExecutor
    from plait.backends.providers import (
        CondorProvider,
        Container,
        GridEngineProvider,
        KubernetesProvider,
        LocalProvider,
        LSFProvider,
        PBSProProvider,
        SchedulerError,
        SlurmProvider,
        SSHProvider,
    )
    from plait.backends.zmq import ZMQExecutor
    from plait.dsl import (
        App,
        Expr,
        ImpureAppWarning,
        MemoKeyWarning,
        Retry,
        app,
        constant,
        exponential,
        gather,
        pure,
        register_token,
        traverse,
    )
    from plait.dsl._file import File
    from plait.dsl._shell import ShellError, ShellResult, shell
    from plait.runtime import DependencyError, PlaitFuture, Plan, Runtime, root_cause, run
    from plait.staging import FsspecStager, Stager, Staging, StagingError
else:
    from plait._lazy import exports

    __getattr__, __dir__ = exports(
        __name__,
        {
            "plait.monitoring": ["monitoring"],
            "plait.backends": [
                "Executor",
                "ProcessExecutor",
                "RemoteError",
                "TaskResult",
                "TaskSpec",
                "TaskTimeout",
                "ThreadExecutor",
                "WorkerLost",
            ],
            "plait.backends._batch": ["BatchExecutor"],
            "plait.backends._dask": ["DaskExecutor"],
            "plait.backends._environment": ["PackedEnvironment"],
            "plait.backends._ray": ["RayExecutor"],
            "plait.backends.providers": [
                "CondorProvider",
                "Container",
                "GridEngineProvider",
                "KubernetesProvider",
                "LocalProvider",
                "LSFProvider",
                "PBSProProvider",
                "SchedulerError",
                "SlurmProvider",
                "SSHProvider",
            ],
            "plait.backends.zmq": ["ZMQExecutor"],
            "plait.dsl": [
                "App",
                "Expr",
                "ImpureAppWarning",
                "MemoKeyWarning",
                "Retry",
                "app",
                "constant",
                "exponential",
                "gather",
                "pure",
                "register_token",
                "traverse",
            ],
            "plait.dsl._file": ["File"],
            "plait.dsl._shell": ["ShellError", "ShellResult", "shell"],
            "plait.staging": ["FsspecStager", "Stager", "Staging", "StagingError"],
            "plait.runtime": ["DependencyError", "PlaitFuture", "Plan", "Runtime", "root_cause", "run"],
        },
    )

__all__ = [
    "App",
    "DependencyError",
    "Executor",
    "Expr",
    "ImpureAppWarning",
    "MemoKeyWarning",
    "LocalProvider",
    "BatchExecutor",
    "DaskExecutor",
    "RayExecutor",
    "CondorProvider",
    "Container",
    "GridEngineProvider",
    "KubernetesProvider",
    "PackedEnvironment",
    "LSFProvider",
    "PBSProProvider",
    "SchedulerError",
    "SlurmProvider",
    "SSHProvider",
    "PlaitFuture",
    "Plan",
    "ProcessExecutor",
    "RemoteError",
    "Retry",
    "Runtime",
    "TaskResult",
    "TaskSpec",
    "TaskTimeout",
    "ThreadExecutor",
    "WorkerLost",
    "ZMQExecutor",
    "app",
    "constant",
    "exponential",
    "gather",
    "monitoring",
    "pure",
    "register_token",
    "root_cause",
    "run",
    "traverse",
    "File",
    "FsspecStager",
    "Stager",
    "Staging",
    "StagingError",
    "ShellError",
    "ShellResult",
    "shell",
]
