"""Where leaves run. Executors take TaskSpecs and give TaskResults; they never see an Expr."""

from typing import TYPE_CHECKING

# Imported when first used (see plait._lazy): a worker pool needs none of the executors.
if TYPE_CHECKING:
    from plait.backends._errors import RemoteError, ResultTooLarge, TaskTimeout, WorkerLost
    from plait.backends._processes import ProcessExecutor
    from plait.backends._sampling import NodeSample, TaskSample
    from plait.backends._task import Executor, TaskResult, TaskSpec, running_task
    from plait.backends._threads import ThreadExecutor
    from plait.backends._usage import TaskUsage
else:
    from plait._lazy import exports

    __getattr__, __dir__ = exports(
        __name__,
        {
            "plait.backends._errors": ["RemoteError", "ResultTooLarge", "TaskTimeout", "WorkerLost"],
            "plait.backends._processes": ["ProcessExecutor"],
            "plait.backends._sampling": ["NodeSample", "TaskSample"],
            "plait.backends._task": ["Executor", "TaskResult", "TaskSpec", "running_task"],
            "plait.backends._threads": ["ThreadExecutor"],
            "plait.backends._usage": ["TaskUsage"],
        },
    )

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
