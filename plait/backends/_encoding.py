"""Tasks made ready to leave the driver: each call pickled once, each function once per executor."""

from __future__ import annotations

import asyncio
from typing import Generic, TypeVar, overload

import attrs

from plait.backends._completion import Completion
from plait.backends._records import Task
from plait.backends._task import TaskResult, TaskSpec
from plait.backends._wire import dumps_call, dumps_function

__all__ = ["AnyEncoded", "Encoded", "EncodedTask", "TaskEncoder"]

End = TypeVar("End", asyncio.Future[TaskResult], Completion)


@attrs.define(eq=False)
class Encoded(Generic[End]):
    """A submitted task with its pickled call and function, and how its end is told: the
    future of its result (``submit``), or a ``Completion`` (``submit_calling``)."""

    spec: TaskSpec
    future: End
    call: bytes
    fn: bytes

    # What a worker supervisor (``_supervisor.Supervised``) reads of it.
    @property
    def task_id(self) -> int:
        return self.spec.task_id

    @property
    def fn_key(self) -> bytes:
        return self.spec.fn_key

    @property
    def timeout(self) -> float | None:
        return self.spec.timeout

    def for_worker(self, *, with_function: bool) -> Task:
        """The task as a worker gets it: with its function, or without (it has it already)."""
        spec = self.spec
        return Task(spec.task_id, spec.name, spec.fn_key, spec.timeout, self.fn if with_function else None, self.call)


EncodedTask = Encoded[asyncio.Future[TaskResult]]
AnyEncoded = EncodedTask | Encoded[Completion]  # what an executor offering both ways keeps


class TaskEncoder:
    """Pickles what an executor sends to other processes, each function only once.

    A task that cannot be pickled is failed at once, on its own, with an error that
    names the app and the argument: its future (or ``end``) is already done.
    """

    def __init__(self, label: str) -> None:
        self.label = label
        self._functions: dict[bytes, bytes] = {}

    @overload
    def encode(self, spec: TaskSpec) -> EncodedTask: ...

    @overload
    def encode(self, spec: TaskSpec, end: Completion) -> Encoded[Completion]: ...

    def encode(self, spec: TaskSpec, end: Completion | None = None) -> EncodedTask | Encoded[Completion]:
        if end is None:
            return self._encoded(spec, asyncio.get_running_loop().create_future())
        return self._encoded(spec, end)

    def _encoded(self, spec: TaskSpec, end: End) -> Encoded[End]:
        try:
            fn = self._functions.get(spec.fn_key)
            if fn is None:
                fn = self._functions[spec.fn_key] = dumps_function(spec)
            return Encoded(spec, end, dumps_call(spec), fn)
        except TypeError as error:
            end.set_result(TaskResult(spec.task_id, error=error, worker=self.label))
            return Encoded(spec, end, b"", b"")
