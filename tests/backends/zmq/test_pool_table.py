"""The ZMQExecutor's dispatch state on its own, without a socket: which pool gets which
task, what a result, a cancel, a drain or a loss gives back, and that the indexes (the
pools with room, those with an idle worker, the sum of their limits, where each task is)
stay true through them."""

from __future__ import annotations

import asyncio
import pickle
from collections.abc import Iterator

import pytest

from plait.backends._encoding import EncodedTask
from plait.backends._task import TaskSpec
from plait.backends.zmq._pool_table import PoolTable, RegisteredPool
from plait.backends.zmq._protocol import ResultRow


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()  # only to make futures: nothing runs on it
    yield loop
    loop.close()


def task(loop: asyncio.AbstractEventLoop, task_id: int, fn_key: bytes = b"f") -> EncodedTask:
    spec = TaskSpec(task_id, "f", fn_key, print, (task_id,), {})
    return EncodedTask(spec, loop.create_future(), f"call{task_id}".encode(), b"fn-" + fn_key)


def queued(table: PoolTable, loop: asyncio.AbstractEventLoop, count: int) -> list[EncodedTask]:
    tasks = [task(loop, i) for i in range(count)]
    for each in tasks:
        table.queue(each)
    return tasks


def sent(table: PoolTable) -> dict[str, list[int]]:
    return {pool.pool_id: [row.task_id for row in rows] for pool, (rows, _) in table.batches().items()}


def result(task_id: int, value: object, seconds: float = 1.0) -> tuple[ResultRow, memoryview]:
    payload = pickle.dumps(value)
    return ResultRow(task_id, True, 10.0, 10.0 + seconds, None, None, len(payload), "w1"), memoryview(payload)


def assert_indexes_true(table: PoolTable) -> None:
    """What the indexes stand for, computed the slow way."""
    assert table.limits == sum(pool.limit for pool in table.pools.values())
    with_room = [p for p in table.pools.values() if not p.draining and len(p.inflight) < p.limit]
    assert sorted(table.room) == sorted(p.identity for p in with_room)
    assert sorted(table.idle) == sorted(p.identity for p in with_room if len(p.inflight) < p.workers)
    assert table.placed == {i: p for p in table.pools.values() for i in p.inflight}
    assert set(table.waiting) <= {t.spec.task_id for t in table.pending}


def test_idle_workers_in_every_pool_get_tasks_before_any_pool_prefetches(loop: asyncio.AbstractEventLoop) -> None:
    table = PoolTable(prefetch=8)
    a = table.add(b"a", "A", "h", workers=1, now=0.0)
    table.add(b"b", "B", "h", workers=1, now=0.0)
    assert a.limit == 2  # its worker, and one more: tasks of ~1 s (unmeasured) need little prefetch
    queued(table, loop, 3)
    assert sent(table) == {"A": [0, 2], "B": [1]}
    assert table.room == {b"b": table.pools[b"b"]}
    assert_indexes_true(table)


def test_a_function_travels_once_per_pool_before_its_first_call(loop: asyncio.AbstractEventLoop) -> None:
    table = PoolTable(prefetch=8)
    table.add(b"a", "A", "h", workers=4, now=0.0)
    queued(table, loop, 3)
    ((rows, payloads),) = table.batches().values()
    assert [row.fn_size for row in rows] == [len(b"fn-f"), 0, 0]
    assert payloads == [b"fn-f", b"call0", b"call1", b"call2"]


def test_a_result_ends_its_task_gives_room_back_and_short_tasks_raise_the_limit(
    loop: asyncio.AbstractEventLoop,
) -> None:
    table = PoolTable(prefetch=8)
    pool = table.add(b"a", "A", "h", workers=1, now=0.0)
    tasks = queued(table, loop, 2)
    assert sent(table) == {"A": [0, 1]}
    assert not table.room
    pool.task_seconds = 0.001  # as if measured: its tasks are short
    row, value = result(0, "zero", seconds=0.0001)
    stale, _ = result(99, "nobody asked", seconds=0.0001)
    table.complete(pool, [row, stale], [value, memoryview(b"")], "zmq")
    assert tasks[0].future.result().value == "zero"
    assert tasks[0].future.result().worker == "zmq/w1"
    assert pool.limit == 1 + 8  # its worker, and ~5 ms of ~0.7 ms tasks (prefetch=8 at most)
    assert table.limits == pool.limit
    assert_indexes_true(table)


def test_a_cancelled_task_is_skipped_if_waiting_and_frees_its_pool_if_sent(loop: asyncio.AbstractEventLoop) -> None:
    table = PoolTable(prefetch=0)
    table.add(b"a", "A", "h", workers=1, now=0.0)
    tasks = queued(table, loop, 3)
    assert sent(table) == {"A": [0]}
    assert table.cancel(1) is None  # still waiting: nobody to tell
    assert table.cancel(0) is table.pools[b"a"]  # sent: its pool is told
    assert tasks[0].future.cancelled() and tasks[1].future.cancelled()
    assert sent(table) == {"A": [2]}
    assert_indexes_true(table)


def test_a_draining_pool_gets_nothing_more(loop: asyncio.AbstractEventLoop) -> None:
    table = PoolTable(prefetch=0)
    a = table.add(b"a", "A", "h", workers=2, now=0.0)
    table.add(b"b", "B", "h", workers=2, now=0.0)
    table.drain(a)
    queued(table, loop, 3)
    assert sent(table) == {"B": [0, 1]}
    assert [t.spec.task_id for t in table.pending] == [2]
    assert_indexes_true(table)


def test_a_removed_pool_gives_back_what_it_held_and_counts_no_more(loop: asyncio.AbstractEventLoop) -> None:
    table = PoolTable(prefetch=0)
    a = table.add(b"a", "A", "h", workers=2, now=0.0)
    b = table.add(b"b", "B", "h", workers=1, now=0.0)
    queued(table, loop, 3)
    sent(table)
    table.remove(a)
    held = table.take_inflight(a)
    assert sorted(t.spec.task_id for t in held) == [0, 1]
    assert table.limits == b.limit
    assert b"a" not in table.room and not table.placed.keys() & {0, 1}
    assert_indexes_true(table)


def test_failing_the_pending_tasks_ends_each_once_and_leaves_none_waiting(loop: asyncio.AbstractEventLoop) -> None:
    table = PoolTable(prefetch=0)
    tasks = queued(table, loop, 2)
    table.cancel(0)
    table.fail_pending(RuntimeError("no pool can come"), "zmq")
    assert tasks[0].future.cancelled()
    assert str(tasks[1].future.result().error) == "no pool can come"
    assert not table.pending and not table.waiting


def test_the_pool_record_names_itself() -> None:
    assert RegisteredPool(b"x", "zmq-0", "node7", 1, 0.0).where() == "pool zmq-0 on node7"


class CountingDict(dict[int, EncodedTask]):
    """A pool's in-flight tasks that count how often their number is asked: a visit to the pool."""

    asked = 0

    def __len__(self) -> int:
        type(self).asked += 1
        return super().__len__()


def test_a_dispatch_visits_only_pools_it_can_fill_not_every_pool_with_room(loop: asyncio.AbstractEventLoop) -> None:
    table = PoolTable(prefetch=8)
    pools = [table.add(bytes([i]), f"P{i}", "h", workers=1, now=0.0) for i in range(100)]
    queued(table, loop, 100)
    assert all(len(rows) == 1 for rows in sent(table).values()), "a task per pool, for its idle worker"
    for pool in pools:  # every worker busy, every pool with prefetch room left
        pool.inflight = CountingDict(pool.inflight)
    table.queue(task(loop, 100))
    CountingDict.asked = 0
    assert sent(table) == {"P0": [100]}
    assert CountingDict.asked <= 4, f"a dispatch of one task looked at {CountingDict.asked} pools' tasks"
    assert_indexes_true(table)
