"""Failures that come from another task (``parsl.dataflow.errors``)."""

from __future__ import annotations

from collections.abc import Sequence

from plait.compat.parsl.errors import ParslError

__all__ = ["DataFlowException", "DependencyError", "JoinError", "PropagatedException"]


class DataFlowException(ParslError):
    """Base of the errors about how tasks depend on each other."""


class PropagatedException(DataFlowException):
    """A task failed because tasks it needed failed.

    ``dependent_exceptions_tids`` pairs each failed input's exception with a description
    of it (``"task 3"``); ``__cause__`` is a root cause that is not itself propagated.
    """

    def __init__(
        self,
        dependent_exceptions_tids: Sequence[tuple[BaseException, str]],
        task_id: int,
        *,
        failure_description: str,
    ) -> None:
        super().__init__(list(dependent_exceptions_tids), task_id)
        self.dependent_exceptions_tids = list(dependent_exceptions_tids)
        self.task_id = task_id
        self._failure_description = failure_description
        self.__cause__, self._cause_sequence = self._root_cause()

    def __str__(self) -> str:
        return (
            f"{self._failure_description} for task {self.task_id}. "
            f"The representative cause is via {' <- '.join(self._cause_sequence)}"
        )

    def _root_cause(self) -> tuple[BaseException, list[str]]:
        # A loop, not recursion: a chain of failures is as long as the graph is deep.
        error: BaseException = self
        path = []
        while isinstance(error, PropagatedException) and error.dependent_exceptions_tids:
            first, description = error.dependent_exceptions_tids[0]
            others = len(error.dependent_exceptions_tids) > 1
            path.append(description + (" (+ others)" if others else ""))
            error = first
        return error, path


class DependencyError(PropagatedException):
    """A task could not run because one or more of its inputs failed."""

    def __init__(self, dependent_exceptions_tids: Sequence[tuple[BaseException, str]], task_id: int) -> None:
        super().__init__(dependent_exceptions_tids, task_id, failure_description="Dependency failure")


class JoinError(PropagatedException):
    """A join app's task failed because futures it returned failed."""

    def __init__(self, dependent_exceptions_tids: Sequence[tuple[BaseException, str]], task_id: int) -> None:
        super().__init__(dependent_exceptions_tids, task_id, failure_description="Join failure")
