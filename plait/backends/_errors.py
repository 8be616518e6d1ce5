"""Failures that come from where a task ran rather than from the task's own code."""

from __future__ import annotations

__all__ = ["RemoteError", "ResultTooLarge", "TaskTimeout", "WorkerLost"]


class WorkerLost(RuntimeError):
    """The process or pool running a task died or stopped answering.

    Not the app's fault: the runtime retries it (``Runtime(lost_retries=...)``).
    """

    __module__ = "plait"  # tracebacks name it as users import it, not by its private module

    @classmethod
    def died(cls, worker: str, how: str, name: str, task_id: int, seen: str = "") -> WorkerLost:
        """For task ``task_id`` of app ``name``, whose ``worker`` died: ``how`` it ended
        (``"killed by SIGKILL"``), and what was ``seen`` of it last (``_sampling.last_seen``)."""
        return cls(f"worker {worker} died ({how}) while running {name} (task {task_id}){seen}")


class ResultTooLarge(Exception):
    """A task's result is bigger than its executor takes back (``max_message_bytes``).

    The task ran to its end; running it again would give the same size, so it is not
    treated as a lost worker.
    """


class TaskTimeout(TimeoutError):
    """A task ran longer than its app's ``timeout`` and its process was killed."""

    __module__ = "plait"  # tracebacks name it as users import it, not by its private module

    @classmethod
    def killed(cls, name: str, timeout: float | None) -> TaskTimeout:
        """For the task ``name`` whose worker was killed at its ``timeout``."""
        return cls(f"{name} ran longer than its timeout of {timeout} s; its process was killed")


class RemoteError(Exception):
    """An exception raised on a worker that could not be sent back as itself.

    Keeps the original type's name, its message and the remote traceback as text.
    """

    __module__ = "plait"  # tracebacks name it as users import it, not by its private module

    def __init__(self, type_name: str, message: str, traceback: str) -> None:
        super().__init__(type_name, message, traceback)
        self.type_name = type_name
        self.message = message
        self.traceback = traceback

    def __str__(self) -> str:
        return f"{self.type_name}: {self.message}\n\nRemote traceback:\n{self.traceback}"
