"""plait: parallel workflows as functional expressions.

Decorate functions with :func:`app`; calling an app builds an :class:`Expr` and runs
nothing. Compose Exprs with ``map``, ``bind``, :func:`gather` and :func:`traverse`,
then :func:`run` them, or submit them to a :class:`Runtime` with the executors you
choose.
"""

from typing import TYPE_CHECKING

from plait._version import __version__ as __version__

# Each name is imported when first used (see plait._lazy), from its subpackage's public
# face; type checkers read them here.
if TYPE_CHECKING:
    from plait import monitoring
    from plait.backends import (
        BatchExecutor,
        DaskExecutor,
        Executor,
        PackedEnvironment,
        ProcessExecutor,
        RayExecutor,
        RemoteError,
        SamplingExecutor,
        TaskResult,
        TaskSpec,
        TaskTimeout,
        ThreadExecutor,
        WorkerLost,
    )
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
        SSHProvider,
    )
    from plait.backends.zmq import ZMQExecutor
    from plait.dsl import (
        App,
        Expr,
        File,
        ImpureAppWarning,
        MemoKeyWarning,
        Retry,
        ShellError,
        ShellResult,
        app,
        constant,
        exponential,
        gather,
        pure,
        register_token,
        shell,
        traverse,
    )
    from plait.runtime import DependencyError, PlaitFuture, Plan, Runtime, root_cause, run
    from plait.staging import FsspecStager, Stager, Staging, StagingError
else:
    import importlib
    import sys
    from typing import Any

    from plait._lazy import exports

    class _RuntimeWhenAwaited:
        """``await expr`` with plait.runtime not yet imported (a script that only awaits): import
        it, which registers the real interpreter, and hand the expression to that one."""

        def awaitable(self, expr: Any) -> Any:
            importlib.import_module("plait.runtime")
            return expr.awaitable()

    def _await_with_runtime() -> None:
        expr = sys.modules.get("plait.dsl._expr")
        if expr is not None and not expr._interpreter:  # the first DSL name: plait.runtime has registered nothing yet
            expr.set_interpreter(_RuntimeWhenAwaited())

    __getattr__, __dir__ = exports(
        __name__,
        {
            "plait.monitoring": ["monitoring"],
            "plait.backends": [
                "BatchExecutor",
                "DaskExecutor",
                "Executor",
                "PackedEnvironment",
                "ProcessExecutor",
                "RayExecutor",
                "RemoteError",
                "SamplingExecutor",
                "TaskResult",
                "TaskSpec",
                "TaskTimeout",
                "ThreadExecutor",
                "WorkerLost",
            ],
            "plait.backends.providers": [
                "CondorProvider",
                "Container",
                "GridEngineProvider",
                "JobState",
                "KubernetesProvider",
                "LocalProvider",
                "LSFProvider",
                "PBSProProvider",
                "Provider",
                "SchedulerError",
                "SlurmProvider",
                "SSHProvider",
            ],
            "plait.backends.zmq": ["ZMQExecutor"],
            "plait.dsl": [
                "App",
                "Expr",
                "File",
                "ImpureAppWarning",
                "MemoKeyWarning",
                "Retry",
                "ShellError",
                "ShellResult",
                "app",
                "constant",
                "exponential",
                "gather",
                "pure",
                "register_token",
                "shell",
                "traverse",
            ],
            "plait.staging": ["FsspecStager", "Stager", "Staging", "StagingError"],
            "plait.runtime": ["DependencyError", "PlaitFuture", "Plan", "Runtime", "root_cause", "run"],
        },
        imported=_await_with_runtime,
        # What a newcomer reaches for at the top level, from plait's own Expr or another library
        habits={
            **{method: f"{method} is a method of an Expr: expr.{method}(...)" for method in ("map", "bind", "recover")},
            **{
                name: f"Parsl's {name} is plait.compat.parsl.{name} (docs/coming-from-parsl.md)"
                for name in ("python_app", "bash_app", "join_app", "load", "dfk", "Config", "HighThroughputExecutor")
            },
            "delayed": "Dask's delayed is plait.app: calling an app builds the Expr",
            "compute": "an Expr is computed by plait.run(expr)",
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
    "JobState",
    "Provider",
    "SamplingExecutor",
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
