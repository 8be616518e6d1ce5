"""What the interpreter does per task, counted: work done once per batch of results is not done per task."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import plait as pl

TASKS = 2_000


@pl.app(pure=False)
def noop(x: int) -> int:
    return x


class Counting(pl.ThreadExecutor):
    """Answers each task at once, on the loop, and counts how often the runtime asks for its capacity."""

    def __init__(self) -> None:
        super().__init__(1)
        self.capacity_reads = 0

    @property
    def capacity(self) -> int:
        self.capacity_reads += 1
        return TASKS

    def submit(self, spec: pl.TaskSpec) -> asyncio.Future[pl.TaskResult]:
        future: asyncio.Future[pl.TaskResult] = asyncio.get_running_loop().create_future()
        future.set_result(pl.TaskResult(spec.task_id, spec.fn(*spec.args, **spec.kwargs)))
        return future


def test_tasks_that_end_together_are_settled_then_pumped_once() -> None:
    executor = Counting()
    with pl.Runtime([executor], progress=False) as rt:
        assert rt.run(pl.traverse(noop, range(TASKS))) == list(range(TASKS))
    # All end in one turn of the loop: a pump (which reads the capacity) for that turn, not
    # two per task as when each result pumped and drained on its own (4 001 reads).
    assert executor.capacity_reads < 20, executor.capacity_reads


@pl.app(executor="elsewhere")
def stray(x: int) -> int:
    return x


def test_a_graph_checks_each_run_of_one_app_once_and_still_refuses_a_stray_call(monkeypatch: Any) -> None:
    from plait.runtime._interpreter import Interpreter

    checked: list[str] = []
    check = Interpreter.check_app
    monkeypatch.setattr(Interpreter, "check_app", lambda self, app: (checked.append(app.name), check(self, app))[1])
    with pl.Runtime([Counting()], progress=False) as rt:
        assert rt.run(pl.traverse(noop, range(TASKS))) == list(range(TASKS))
        # Runtime.submit checks the graph's top and its children in the caller, and admitting
        # it on the loop the whole graph: each checks a run of calls of one app once, not each call.
        assert checked == ["noop", "noop"], len(checked)
        with pytest.raises(ValueError, match="app stray asks for executor 'elsewhere'"):
            rt.run(pl.gather(*(noop(x) for x in range(10)), stray(1), *(noop(x) for x in range(10, 20))))


def test_without_a_monitor_a_task_that_ends_well_is_counted_without_an_event_call(monkeypatch: Any) -> None:
    from plait.runtime._interpreter import Interpreter

    events: list[str] = []
    event = Interpreter._event
    monkeypatch.setattr(
        Interpreter, "_event", lambda self, state, *a, **k: (events.append(state), event(self, state, *a, **k))[1]
    )
    with pl.Runtime([Counting()], progress=False) as rt:
        assert rt.run(pl.traverse(noop, range(TASKS))) == list(range(TASKS))
        # _event's keyword call is the monitor's; with none listening, a task's end is only counted.
        assert events == [], len(events)
        assert rt._interpreter.ended["done"] == TASKS


def test_a_call_of_atoms_is_checked_for_files_to_stage_in_one_call(monkeypatch: Any) -> None:
    from plait.dsl import _staged

    checks: list[object] = []
    holds_file = _staged._holds_file
    monkeypatch.setattr(_staged, "_holds_file", lambda value: (checks.append(value), holds_file(value))[1])
    with pl.Runtime([Counting()], progress=False) as rt:
        assert rt.run(pl.traverse(noop, range(TASKS))) == list(range(TASKS))
    # One look at each call's argument tuple, not a further call for each argument in it.
    assert len(checks) == TASKS, len(checks)


class Holding(pl.ThreadExecutor):
    """Never answers a task: what it holds ends only by a cancel."""

    def __init__(self) -> None:
        super().__init__(1, label="held")

    def submit(self, spec: pl.TaskSpec) -> asyncio.Future[pl.TaskResult]:
        return asyncio.get_running_loop().create_future()


@pl.app(executor="held")
def held(x: int) -> int:
    return x


def test_admitting_submissions_takes_no_future_lock(monkeypatch: Any) -> None:
    import threading

    from plait.runtime._future import PlaitFuture

    on_the_loop: list[str] = []
    cancelled = PlaitFuture.cancelled

    def counting(self: PlaitFuture[Any]) -> bool:
        if threading.current_thread().name == "plait-runtime":
            on_the_loop.append("cancelled")
        return cancelled(self)

    monkeypatch.setattr(PlaitFuture, "cancelled", counting)
    with pl.Runtime([Counting(), Holding()], progress=False) as rt:
        futures = [rt.submit(noop(x)) for x in range(200)]
        assert [f.result() for f in futures] == list(range(200))
        # Each submission asked whether it was cancelled twice, under the future's lock.
        assert on_the_loop == [], len(on_the_loop)
        gone = rt.submit(held(-1))  # never answered: the cancel cannot come after its end
        assert gone.cancel()
        with pytest.raises(concurrent.futures.CancelledError):
            gone.result()


def test_an_eager_call_is_admitted_without_a_graph_walk(monkeypatch: Any) -> None:
    from plait.runtime._interpreter import Interpreter

    walks: list[int] = []
    new_nodes = Interpreter._new_nodes
    monkeypatch.setattr(Interpreter, "_new_nodes", lambda self, expr: (walks.append(1), new_nodes(self, expr))[1])
    with pl.Runtime([Counting()], progress=False) as rt:
        futures = [rt.submit(noop(x)) for x in range(200)]
        assert [f.result() for f in futures] == list(range(200))
        # Each submission of a call without inputs was walked as a graph of one node.
        assert walks == [], len(walks)
        # A call with an input still is: a call of a future.
        assert rt.submit(noop(futures[7])).result() == 7
        assert len(walks) == 1, len(walks)


def test_eager_calls_of_one_app_are_checked_once_and_a_stray_one_still_raises_in_the_caller(monkeypatch: Any) -> None:
    from plait.runtime._interpreter import Interpreter

    checked: list[str] = []
    check = Interpreter.check_app
    monkeypatch.setattr(Interpreter, "check_app", lambda self, app: (checked.append(app.name), check(self, app))[1])
    with pl.Runtime([Counting()], progress=False) as rt:
        futures = [rt.submit(noop(x)) for x in range(200)]
        assert [f.result() for f in futures] == list(range(200))
        # Each submission checked its app in the caller, and again on the loop (400 on main).
        assert checked == ["noop"], len(checked)
        for _ in range(2):  # refused each time, with noop's submissions between
            with pytest.raises(ValueError, match="app stray asks for executor 'elsewhere'"):
                rt.submit(stray(1))
            assert rt.submit(noop(1)).result() == 1


class Calling(pl.ThreadExecutor):
    """Answers each task at the next turn through ``submit_calling``, keeping every callback it is handed."""

    def __init__(self) -> None:
        super().__init__(1)
        self.callbacks: list[Callable[..., None]] = []  # kept, so no two are one object by a reused id

    def submit(self, spec: pl.TaskSpec) -> asyncio.Future[pl.TaskResult]:
        raise AssertionError("the runtime used a future")

    def submit_calling(self, spec: pl.TaskSpec, done: Callable[..., None], *tag: Any) -> None:
        self.callbacks.append(done)
        result = pl.TaskResult(spec.task_id, spec.fn(*spec.args, **spec.kwargs))
        ended = [(tag[0], result)] if tag else result  # main's callback, one per task, took the result alone
        asyncio.get_running_loop().call_soon(done, ended)


def test_an_executor_that_tells_ends_by_call_is_handed_one_callback_for_all_its_tasks() -> None:
    executor = Calling()
    with pl.Runtime([executor], progress=False) as rt:
        assert rt.run(pl.traverse(noop, range(TASKS))) == list(range(TASKS))
    # Which node a task was is told back with its end (its tag): no callable made per task.
    assert len(executor.callbacks) == TASKS
    assert len({id(done) for done in executor.callbacks}) == 1


def test_what_tasks_told_by_call_free_is_started_in_the_turn_they_are_told(monkeypatch: Any) -> None:
    from plait.runtime._interpreter import Interpreter

    later: list[str] = []
    drain_soon = Interpreter.drain_soon
    monkeypatch.setattr(Interpreter, "drain_soon", lambda self: (later.append("drain"), drain_soon(self))[1])
    chain = noop(0)
    for _ in range(20):
        chain = noop(chain)
    with pl.Runtime([Calling()], progress=False) as rt:
        assert rt.run(chain) == 0
    # Each link's end is drained as it is told, so the next link goes out in that turn,
    # not a turn later (a chain's latency: a turn of the loop per link, twice).
    assert later == [], len(later)


class Batching(Calling):
    """Room for every task at once; sends what each turn of the loop handed it when the turn
    ends, as the ZMQExecutor does, and counts the tasks of each such batch."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[int] = []

    @property
    def capacity(self) -> int:
        return 3 * TASKS

    def submit_calling(self, spec: pl.TaskSpec, done: Callable[..., None], *tag: Any) -> None:
        if not self.batches or self.batches[-1] < 0:
            self.batches.append(0)
            asyncio.get_running_loop().call_soon(self._sent)
        self.batches[-1] += 1
        super().submit_calling(spec, done, *tag)

    def _sent(self) -> None:
        self.batches[-1] = -self.batches[-1]  # closed: the next task opens a batch


def test_a_graph_larger_than_a_turns_share_starts_running_before_all_of_it_is_started(monkeypatch: Any) -> None:
    from plait.runtime import _interpreter

    monkeypatch.setattr(_interpreter, "STARTED_PER_TURN", 500)
    executor = Batching()
    with pl.Runtime([executor], progress=False) as rt:
        assert rt.run(pl.traverse(noop, range(TASKS))) == list(range(TASKS))
    # 2 000 calls, all with room: sent in four turns' batches, the first before the rest started.
    assert [-size for size in executor.batches] == [500] * 4, executor.batches


def test_a_submission_wakes_the_loop_by_its_doorbell_not_asyncio_s_self_pipe() -> None:
    with pl.Runtime([Counting()], progress=False) as rt:
        assert rt.run(noop(-1)) == -1
        loop: Any = rt._loop
        read: list[bytes] = []
        process = loop._process_self_data
        loop._process_self_data = lambda data: (read.append(data), process(data))[1]
        for x in range(100):
            assert rt.run(noop(x)) == x
        # Main woke the loop through asyncio's self-pipe each time, which the loop reads
        # until a read fails (a second recv, and an exception caught); a Handle made each time.
        assert read == [], len(read)
        loop._process_self_data = process


def test_a_round_trip_calls_no_lock_helper_of_python_s_on_the_caller_s_thread() -> None:
    import contextlib
    import sys
    import threading

    helpers = (contextlib.__file__, threading.__file__, str(Path(concurrent.futures.__file__).parent))
    calls: Counter[str] = Counter()

    def profile(frame: Any, event: str, arg: Any) -> None:
        if event == "call" and frame.f_code.co_filename.startswith(helpers):
            calls[frame.f_code.co_qualname] += 1

    with pl.Runtime([Counting()], progress=False) as rt:
        assert rt.run(noop(-1)) == -1
        sys.setprofile(profile)
        try:
            for x in range(100):
                assert rt.run(noop(x)) == x
        finally:
            sys.setprofile(None)
    # threading.current_thread: submit() refuses the loop's own thread. Main also rang the
    # doorbell under contextlib.suppress (three calls) and waited on a Condition (five).
    assert calls == Counter({"current_thread": 100}), calls


def test_submissions_from_many_threads_each_wake_the_loop_or_find_it_woken() -> None:
    import threading

    with pl.Runtime([Counting()], progress=False) as rt:
        results: list[list[int]] = []

        def submit_many(start: int) -> None:
            futures = [rt.submit(noop(x)) for x in range(start, start + 300)]
            results.append([f.result(timeout=30) for f in futures])

        threads = [threading.Thread(target=submit_many, args=(1000 * i,)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert sorted(map(sorted, results)) == [list(range(1000 * i, 1000 * i + 300)) for i in range(4)]
    with pytest.raises(RuntimeError, match="shut down"):
        rt.submit(noop(1))
