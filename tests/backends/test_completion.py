"""Task ends told by a call, not a future per task (backends/_completion.py), and the
runtime choosing that way when an executor offers it."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

import plait as pl
from plait.backends._completion import CallingExecutor, Completion, Done, Ended, Endings
from plait.backends._encoding import TaskEncoder
from plait.backends._task import TaskResult, TaskSpec


def test_ends_are_told_at_the_next_turn_in_order_once_each_callback_once() -> None:
    told: list[tuple[str, Any]] = []
    problems: list[dict[str, Any]] = []

    def done(ended: Ended) -> None:
        told.extend((name, result and result.value) for name, result in ended)

    def buggy(ended: Ended) -> None:
        raise RuntimeError("a callback's bug")

    async def main() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda loop, context: problems.append(context))
        endings = Endings()
        a, c = (Completion(endings, done, name) for name in "ac")
        b = Completion(endings, buggy, "b")
        c.set_result(TaskResult(3, value="c's"))
        b.set_result(TaskResult(2, value="b's"))
        assert a.cancel() and not a.cancel() and a.done()
        with pytest.raises(asyncio.InvalidStateError):
            c.set_result(TaskResult(3, value="again"))
        assert told == []  # never from within the executor's own code
        await asyncio.sleep(0)
        assert told == [("c", "c's"), ("a", None)]  # b's callback's bug reported, the others still told
        assert [type(p["exception"]) for p in problems] == [RuntimeError]

    asyncio.run(main())


def test_ends_told_at_once_are_not_told_again_and_later_ones_wait_for_the_next_turn() -> None:
    calls: list[list[Any]] = []

    def done(ended: Ended) -> None:
        calls.append([tag for tag, _ in ended])

    async def main() -> None:
        endings = Endings()
        first, second = Completion(endings, done, "first"), Completion(endings, done, "second")
        first.end(TaskResult(1))
        first.end(TaskResult(1, value="again"))  # ended already: nothing
        endings.tell()  # an executor between its own steps: told now
        assert calls == [["first"]]
        second.end(TaskResult(2))
        assert calls == [["first"]]
        await asyncio.sleep(0)
        assert calls == [["first"], ["second"]]  # once each, and no empty call for the early tell
        await asyncio.sleep(0)
        assert calls == [["first"], ["second"]]

    asyncio.run(main())


class Calling(pl.ThreadExecutor):
    """Answers at once, only through ``submit_calling``."""

    def __init__(self) -> None:
        super().__init__(1)
        self.endings = Endings()

    def submit(self, spec: TaskSpec) -> asyncio.Future[TaskResult]:
        raise AssertionError("the runtime used a future")

    def submit_calling(self, spec: TaskSpec, done: Done, tag: Any) -> None:
        Completion(self.endings, done, tag).set_result(TaskResult(spec.task_id, spec.fn(*spec.args, **spec.kwargs)))


@pl.app(pure=False)
def double(x: int) -> int:
    return 2 * x


def test_the_runtime_takes_ends_by_call_from_an_executor_that_offers_it() -> None:
    assert isinstance(Calling(), CallingExecutor) and not isinstance(pl.ThreadExecutor(1), CallingExecutor)
    assert isinstance(pl.ZMQExecutor(), CallingExecutor)
    with pl.Runtime([Calling()], progress=False) as rt:
        assert rt.run(pl.traverse(double, range(100))) == [2 * x for x in range(100)]


def test_a_task_submitted_by_call_is_one_object_in_the_executors_books() -> None:
    told: list[tuple[str, Any]] = []

    def done(ended: Ended) -> None:
        told.extend((tag, result and (result.value, type(result.error))) for tag, result in ended)

    async def main() -> None:
        encoder, endings = TaskEncoder("zmq"), Endings()
        task = encoder.encode_calling(TaskSpec(1, "double", b"k", double, (2,), {}), endings, done, "node 1")
        assert task.future is task and task.call and task.fn  # its own completion: no second object
        task.set_result(TaskResult(1, value=4))
        lock_spec = TaskSpec(2, "double", b"k", double, (threading.Lock(),), {})
        unpicklable = encoder.encode_calling(lock_spec, endings, done, "node 2")
        assert unpicklable.done() and unpicklable.call == b""  # failed at once, on its own
        await asyncio.sleep(0)
        assert told == [("node 1", (4, type(None))), ("node 2", (None, TypeError))]

    asyncio.run(main())
