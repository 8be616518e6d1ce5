"""Where leaves run. Executors take TaskSpecs and give TaskResults; they never see an Expr."""

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
