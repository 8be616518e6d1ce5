"""plait: parallel workflows as functional expressions.

Decorate functions with :func:`app`; calling an app builds an :class:`Expr` and runs
nothing. Compose Exprs with ``map``, ``bind``, :func:`gather` and :func:`traverse`,
then :func:`run` them, or submit them to a :class:`Runtime` with the executors you
choose.
"""

from plait import monitoring
from plait._version import __version__ as __version__
from plait.backends import (
    Executor,
    ProcessExecutor,
    RemoteError,
    SamplingExecutor,
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
    JobState,
    KubernetesProvider,
    LocalProvider,
    LSFProvider,
    PBSProProvider,
    Provider,
    SchedulerError,
    SlurmProvider,
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
    "JobState",
    "Provider",
    "SamplingExecutor",
    "KubernetesProvider",
    "PackedEnvironment",
    "LSFProvider",
    "PBSProProvider",
    "SchedulerError",
    "SlurmProvider",
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
    "ShellError",
    "ShellResult",
    "shell",
]
