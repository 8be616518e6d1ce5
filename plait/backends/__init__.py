"""Where leaves run. Executors take TaskSpecs and give TaskResults; they never see an Expr."""

from plait.backends._errors import RemoteError, ResultTooLarge, TaskTimeout, WorkerLost
from plait.backends._processes import ProcessExecutor
from plait.backends._sampling import NodeSample, TaskSample
from plait.backends._task import Executor, TaskResult, TaskSpec, running_task
from plait.backends._threads import ThreadExecutor
from plait.backends._usage import TaskUsage

__all__ = [
    "Executor",
    "NodeSample",
    "ProcessExecutor",
    "RemoteError",
    "ResultTooLarge",
    "TaskResult",
    "TaskSample",
    "TaskSpec",
    "TaskTimeout",
    "TaskUsage",
    "ThreadExecutor",
    "WorkerLost",
    "running_task",
]
