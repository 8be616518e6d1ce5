"""Whether a worker measures its tasks (``_usage.TaskMeter``): the ``PLAIT_TASK_USAGE``
switch in its environment, which it inherits from whoever starts it.

A runtime without a monitor has nothing that reads a task's usage, so it starts its
executors' workers unmeasured: two to four system calls a task saved. Its own module, not
``_usage``'s: a pool sets it before it forks its launcher, when it has loaded nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["TASK_USAGE", "measured", "unmeasured"]

TASK_USAGE = "PLAIT_TASK_USAGE"  # "0": the worker's tasks are not measured


def measured(env: Mapping[str, str]) -> bool:
    """Whether workers with the environment ``env`` measure their tasks.

    >>> measured({}), measured(unmeasured({}))
    (True, False)
    """
    return env.get(TASK_USAGE, "1") != "0"


def unmeasured(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` for workers that do not measure their tasks (their results' usage is None)."""
    return {**env, TASK_USAGE: "0"}
