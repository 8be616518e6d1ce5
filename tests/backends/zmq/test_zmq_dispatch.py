"""How a ZMQExecutor hands tasks to pools, seen from pools the tests write by hand: idle
workers first in every pool, room given back by results, cancellation, draining and loss.

The executor keeps indexes (the pools with room, the sum of their limits, where each task
is) instead of walking every pool per task; these tests pin the behaviour they must keep.
"""

from __future__ import annotations

import pickle
import time
from collections.abc import Iterator

import pytest
import zmq

import plait as pl
from plait.backends._wire import loads_call
from plait.backends.zmq._protocol import (
    Accept,
    Cancel,
    Drain,
    Drained,
    Heartbeat,
    Message,
    Register,
    ResultRow,
    Results,
    Tasks,
    decode,
    encode,
    pieces,
)
from tests.backends.zmq.zmq_apps import inc, keyed_dealer
from tests.waiting import wait_for

# Heartbeats often (a vanished pool is noticed at once), a threshold no test reaches.
TIMING = {"heartbeat_period": 0.2, "heartbeat_threshold": 30.0}


class HandPool:
    """A pool the test drives: it registers, and runs ``inc`` when told to answer."""

    def __init__(self, context: zmq.Context[zmq.Socket[bytes]], executor: pl.ZMQExecutor, name: str, workers: int):
        self.name = name
        self.socket = keyed_dealer(context, executor)
        self.frames: list[int] = []  # how many frames each message but heartbeats came in
        self.socket.send_multipart(encode(Register(**executor._ours, capacity=workers, host="h", pool=name, pid=1)))
        assert isinstance(self.next()[0], Accept)
        self.held: dict[int, int] = {}  # task id -> the argument of its inc

    def next(self, timeout: float = 10.0) -> tuple[Message, bytes]:
        """The next message that is not a heartbeat, and its payload."""
        deadline = time.monotonic() + timeout
        while self.socket.poll(max(1, int(1000 * (deadline - time.monotonic())))):
            frames = self.socket.recv_multipart()
            message, payload = decode(frames)
            if not isinstance(message, Heartbeat):
                self.frames.append(len(frames))
                return message, payload
        raise AssertionError(f"pool {self.name}: no message within {timeout} s")

    def quiet(self, within: float = 0.3) -> bool:
        """Whether nothing but heartbeats comes within ``within`` seconds."""
        try:
            message, _ = self.next(within)
        except AssertionError:
            return True
        raise AssertionError(f"pool {self.name} was sent {message}")

    def take(self) -> list[int]:
        """The ids of the tasks of the next message, which must be a tasks message; they are held."""
        message, payload = self.next()
        assert isinstance(message, Tasks), message
        calls = pieces(payload, [size for row in message.tasks for size in (row.fn_size, row.call_size)])
        ids = []
        for row, _fn, call in zip(message.tasks, calls, calls, strict=True):
            args, _ = loads_call(bytes(call))
            self.held[row.task_id] = args[0]
            ids.append(row.task_id)
        return ids

    def take_at_least(self, count: int) -> list[int]:
        """The ids of the tasks of as many tasks messages as it takes to be sent ``count``."""
        ids: list[int] = []
        while len(ids) < count:
            ids += self.take()
        return ids

    def answer(self, task_id: int) -> None:
        now = time.time()
        value = pickle.dumps(self.held.pop(task_id) + 1)
        row = ResultRow(task_id, True, now, now, None, None, len(value), "w")
        self.socket.send_multipart(encode(Results([row]), [value]))


@pytest.fixture
def context() -> Iterator[zmq.Context[zmq.Socket[bytes]]]:
    with zmq.Context() as context:
        yield context


def hand_only(workers_per_block: int = 1) -> pl.ZMQExecutor:
    """An executor that starts no pool of its own and sends each pool one task per worker, no more."""
    provider = pl.LocalProvider(workers=workers_per_block, init_blocks=0, max_blocks=0)
    return pl.ZMQExecutor(provider=provider, prefetch=0, **TIMING)


def test_a_batch_of_tasks_and_their_function_travel_in_one_payload_frame(
    context: zmq.Context[zmq.Socket[bytes]],
) -> None:
    executor = hand_only(workers_per_block=4)
    with pl.Runtime([executor], progress=False) as rt:
        pool = HandPool(context, executor, "a", workers=4)
        pool.frames.clear()  # its accept, which has no payload
        futures = [rt.submit(inc(i)) for i in range(4)]
        ids = pool.take_at_least(4)
        assert pool.frames == [2] * len(pool.frames), "an envelope and one payload frame a message"
        for task_id in ids:
            pool.answer(task_id)
        assert [future.result(10) for future in futures] == [1, 2, 3, 4]


def test_every_pool_gets_a_task_for_its_idle_worker_and_the_one_that_answers_gets_the_next(
    context: zmq.Context[zmq.Socket[bytes]],
) -> None:
    executor = hand_only()
    with pl.Runtime([executor], progress=False) as rt:
        pools = [HandPool(context, executor, name, workers=1) for name in "abc"]
        assert executor.capacity == 3
        futures = [rt.submit(inc(i)) for i in range(4)]
        for pool in pools:
            assert len(pool.take()) == 1
        middle = pools[1]
        middle.answer(*middle.held)
        assert len(middle.take()) == 1, "the pool that answered was not sent the waiting task"
        assert pools[0].quiet() and pools[2].quiet()
        for pool in pools:
            for task_id in list(pool.held):
                pool.answer(task_id)
        assert [f.result(10) for f in futures] == [1, 2, 3, 4]


def test_a_cancelled_task_is_cancelled_in_the_pool_holding_it_only_and_one_waiting_is_never_sent(
    context: zmq.Context[zmq.Socket[bytes]],
) -> None:
    executor = hand_only(workers_per_block=8)  # room for 8 in the executor: some wait there for a pool
    with pl.Runtime([executor], progress=False) as rt:
        pools = [HandPool(context, executor, name, workers=1) for name in "ab"]
        futures = [rt.submit(inc(i)) for i in range(4)]
        a, b = pools
        sent = {pool.name: pool.take() for pool in pools}
        wait_for(lambda: len(executor._pending) == 2, what="two tasks to wait in the executor")
        running = a.held.pop(sent["a"][0])  # inc(i) is futures[i]
        futures[running].cancel()
        cancel, _ = a.next()
        assert cancel == Cancel(sent["a"])
        assert len(a.take()) == 1, "the pool whose task was cancelled was not sent a waiting one"
        (waiting,) = {0, 1, 2, 3} - {running, *a.held.values(), *b.held.values()}
        futures[waiting].cancel()
        for pool in pools:
            for task_id in list(pool.held):
                pool.answer(task_id)
        for pool in pools:
            assert pool.quiet(), "a cancelled task was sent"
        assert all(f.cancelled() for i, f in enumerate(futures) if i in (running, waiting))
        assert sorted(f.result(10) for f in futures if not f.cancelled()) == sorted(
            i + 1 for i in range(4) if i not in (running, waiting)
        )


def test_a_draining_pool_gets_nothing_more_and_pools_that_leave_take_their_room_with_them(
    context: zmq.Context[zmq.Socket[bytes]],
) -> None:
    executor = hand_only()
    with pl.Runtime([executor], progress=False) as rt:
        a, b, c = (HandPool(context, executor, name, workers=2) for name in "abc")
        assert executor.capacity == 6
        rt._call_soon(lambda: rt._loop.create_task(executor.drain(["a"])))
        assert isinstance(a.next()[0], Drain)
        future = rt.submit(pl.gather(*[inc(i) for i in range(4)]))
        assert len(b.take()) + len(c.take()) == 4
        assert a.quiet()
        a.socket.send_multipart(encode(Drained()))
        wait_for(lambda: executor.capacity == 4, what="the drained pool's room to go")
        b.socket.close()  # b vanishes with two tasks: they are retried, on c, the only pool left
        wait_for(lambda: executor.capacity == 2, what="the vanished pool's room to go")
        for task_id in list(c.held):
            c.answer(task_id)
        retried = c.take_at_least(2)  # a retry may come on its own
        assert len(retried) == 2
        for task_id in retried:
            c.answer(task_id)
        assert future.result(10) == [1, 2, 3, 4]
        assert executor.pools == ["c"]


@pl.app(retries=0)
def once(x: int) -> int:
    return x + 1  # what HandPool.answer computes


def test_tasks_that_could_not_be_sent_to_a_pool_go_to_another_and_lose_no_attempt(
    context: zmq.Context[zmq.Socket[bytes]],
) -> None:
    # A send fails when the pool's connection is gone before its loss is noticed (1 024 pools,
    # a tenth of them killed: a task was sent to three dead ones in a row, and failed).
    executor = hand_only()
    with pl.Runtime([executor], progress=False, lost_retries=0) as rt:
        HandPool(context, executor, "gone", workers=1)
        (lost,) = executor._pools

        def send(identity: bytes, frames: list[bytes]) -> bool:
            if identity == lost and isinstance(decode(frames)[0], Tasks):
                return False  # as zmq says EHOSTUNREACH
            return sending(identity, frames)

        sending, executor._router.send = executor._router.send, send
        future = rt.submit(once(1))
        wait_for(lambda: executor.pools == [], what="the pool it could not send to to be lost")
        assert not future.done()
        there = HandPool(context, executor, "there", workers=1)
        (task_id,) = there.take()
        there.answer(task_id)
        assert future.result(10) == 2  # no retry: a WorkerLost for a task never sent would have failed it
