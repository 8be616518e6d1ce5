"""Where leaves run. Executors take TaskSpecs and give TaskResults; they never see an Expr."""

from typing import TYPE_CHECKING

# Imported when first used (see plait._lazy): a worker pool needs none of the executors.
if TYPE_CHECKING:
    from plait.backends._batch import BatchExecutor
    from plait.backends._dask import DaskExecutor
    from plait.backends._environment import PackedEnvironment
    from plait.backends._errors import RemoteError, ResultTooLarge, TaskTimeout, WorkerLost
    from plait.backends._plugins import executor_plugin, provider_plugin
    from plait.backends._processes import ProcessExecutor
    from plait.backends._ray import RayExecutor
    from plait.backends._sampling import NodeSample, SamplingExecutor, TaskSample
    from plait.backends._task import Executor, TaskResult, TaskSpec, running_task
    from plait.backends._threads import ThreadExecutor
    from plait.backends._usage import TaskUsage
else:
    from plait._lazy import exports

    __getattr__, __dir__ = exports(
        __name__,
        {
            "plait.backends._batch": ["BatchExecutor"],
            "plait.backends._dask": ["DaskExecutor"],
            "plait.backends._environment": ["PackedEnvironment"],
            "plait.backends._errors": ["RemoteError", "ResultTooLarge", "TaskTimeout", "WorkerLost"],
            "plait.backends._plugins": ["executor_plugin", "provider_plugin"],
            "plait.backends._processes": ["ProcessExecutor"],
            "plait.backends._ray": ["RayExecutor"],
            "plait.backends._sampling": ["NodeSample", "SamplingExecutor", "TaskSample"],
            "plait.backends._task": ["Executor", "TaskResult", "TaskSpec", "running_task"],
            "plait.backends._threads": ["ThreadExecutor"],
            "plait.backends._usage": ["TaskUsage"],
        },
    )

__all__ = [
    "BatchExecutor",
    "DaskExecutor",
    "PackedEnvironment",
    "RayExecutor",
    "Executor",
    "NodeSample",
    "ProcessExecutor",
    "RemoteError",
    "ResultTooLarge",
    "SamplingExecutor",
    "TaskResult",
    "TaskSample",
    "TaskSpec",
    "TaskTimeout",
    "TaskUsage",
    "ThreadExecutor",
    "WorkerLost",
    "executor_plugin",
    "provider_plugin",
    "running_task",
]
