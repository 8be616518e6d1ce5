"""Tasks made ready to leave the driver: each call pickled once, each function once per executor."""

from __future__ import annotations

import asyncio
from typing import Any

import attrs

from plait.backends._completion import Completion, Done, Endings
from plait.backends._records import Task
from plait.backends._task import TaskResult, TaskSpec
from plait.backends._wire import dumps_call, dumps_function

__all__ = ["AnyEncoded", "CallingTask", "EncodedTask", "TaskEncoder"]


@attrs.define(eq=False)
class EncodedTask:
    """A submitted task with its pickled call and function, and the future of its result."""

    spec: TaskSpec
    future: asyncio.Future[TaskResult]
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

    def done(self) -> bool:
        """Whether it has ended (cancelled, or failed), as a ``CallingTask`` says: one call."""
        return self.future.done()

    def end(self, result: TaskResult) -> None:
        """Set the future's result, unless it is done already (cancelled, or failed)."""
        if not self.future.done():
            self.future.set_result(result)

    def for_worker(self, *, with_function: bool) -> Task:
        """The task as a worker gets it: with its function, or without (it has it already)."""
        spec = self.spec
        return Task(spec.task_id, spec.name, spec.fn_key, spec.timeout, self.fn if with_function else None, self.call)


class CallingTask(Completion):
    """A task submitted with ``submit_calling``, with its pickled call and function: its own
    completion, so one object a task where a future's place is taken (``future`` is itself)."""

    __slots__ = ("call", "fn", "spec")

    def __init__(self, endings: Endings, done: Done, tag: Any, spec: TaskSpec) -> None:
        self._endings, self._done, self._tag, self._ended = endings, done, tag, False  # Completion's, without its call
        self.spec = spec
        self.call = self.fn = b""

    @property
    def future(self) -> CallingTask:
        return self


AnyEncoded = EncodedTask | CallingTask  # what an executor offering both ways keeps


class TaskEncoder:
    """Pickles what an executor sends to other processes, each function only once.

    A task that cannot be pickled is failed at once, on its own, with an error that
    names the app and the argument: its future (or completion) is already done, and its
    call empty (a pickle never is).
    """

    def __init__(self, label: str) -> None:
        self.label = label
        self._functions: dict[bytes, bytes] = {}

    def encode(self, spec: TaskSpec) -> EncodedTask:
        future: asyncio.Future[TaskResult] = asyncio.get_running_loop().create_future()
        return EncodedTask(spec, future, *self._pickled(spec, future))

    def encode_calling(self, spec: TaskSpec, endings: Endings, done: Done, tag: Any) -> CallingTask:
        task = CallingTask(endings, done, tag, spec)
        task.call, task.fn = self._pickled(spec, task)
        return task

    def _pickled(self, spec: TaskSpec, end: asyncio.Future[TaskResult] | Completion) -> tuple[bytes, bytes]:
        """The call's pickle and the function's; empty ones, ``end`` failed, if either will not pickle."""
        try:
            fn = self._functions.get(spec.fn_key)
            if fn is None:
                fn = self._functions[spec.fn_key] = dumps_function(spec)
            return dumps_call(spec), fn
        except TypeError as error:
            end.set_result(TaskResult(spec.task_id, error=error, worker=self.label))
            return b"", b""
