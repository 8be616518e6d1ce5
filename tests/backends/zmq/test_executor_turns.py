"""Turns of the driver's loop per task through a ZMQExecutor, counted: a task goes out in
the turn that submits it, and a result's end is told in the turn that reads it, without
giving up the batching of a turn's many tasks. A fake pool answers on the driver's own
loop, behind a stand-in for the ROUTER socket, so the counts are the executor's alone."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import pickle
import sys
import threading
import typing
from collections import Counter, deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import zmq

import plait as pl
from plait.backends._errors import WorkerLost
from plait.backends._wire import dumps_error, loads_call
from plait.backends.zmq._frames import Frames
from plait.backends.zmq._protocol import ResultRow, Results, Tasks, decode, encode
from tests.loop_turns import Turns

_MORE = int(zmq.SNDMORE)


class Frame(NamedTuple):
    """What a zmq.Frame received tells the router."""

    bytes: bytes
    more: bool


class FakePoolSocket:
    """Stands in for the executor's ROUTER socket: each Tasks message sent is answered by
    one Results message with all its rows (each a no-op's: its call's first argument),
    which arrives a turn of the loop later and is read at once, as the socket's
    readiness would have it read."""

    closed = False

    def __init__(self, loop: asyncio.AbstractEventLoop, on_readable: Any, turns: Turns, done: dict[str, int]) -> None:
        self._loop, self._on_readable, self._turns, self._done = loop, on_readable, turns, done
        self._frames: list[bytes] = []
        self._waiting: deque[list[bytes]] = deque()
        self._reading: deque[bytes] = deque()  # what is left of the message being read
        self.tasks_messages = 0
        self.results_messages = 0
        self.sent_in_turns: list[int] = []  # the turn of the loop each Tasks message was sent in
        self.lose_first_tries = False  # answer each task's first try as if its worker died
        self._tried: set[int] = set()
        self.told_as_read = 0  # answers whose tasks' ends reached the runtime in the turn that read them
        self.found_nothing = 0  # receives that raised zmq.Again

    def send(self, frame: bytes, flags: int = 0, copy: bool = True) -> None:
        self._frames.append(bytes(frame))
        if flags & _MORE:
            return
        identity, *frames = self._frames
        self._frames = []
        message, payload = decode(frames)
        if type(message) is Tasks:
            self.tasks_messages += 1
            self.sent_in_turns.append(self._turns.count)
            view, at, values = memoryview(payload), 0, []
            for row in message.tasks:  # each row's function (if it is its first task here), then its call
                at += row.fn_size
                args, _ = loads_call(bytes(view[at : at + row.call_size]))
                at += row.call_size
                values.append(pickle.dumps(args[0]))
            rows = []
            for i, row in enumerate(message.tasks):
                ok = not self.lose_first_tries or row.task_id in self._tried
                self._tried.add(row.task_id)
                if not ok:
                    values[i] = dumps_error(WorkerLost("the worker died"))
                rows.append(ResultRow(row.task_id, ok, 1.0, 1.0, 0.0, 1, len(values[i]), "w"))
            self._loop.call_soon(self._arrive, [identity, *encode(Results(rows), values)])

    def _arrive(self, message: list[bytes]) -> None:
        self._waiting.append(message)
        done = self._done["done"]
        self._on_readable()
        self.told_as_read += self._done["done"] > done

    def recv(self, flags: int = 0, copy: bool = True) -> Frame:
        if not self._reading:
            if not self._waiting:
                self.found_nothing += 1
                raise zmq.Again()
            self.results_messages += 1
            self._reading.extend(self._waiting.popleft())
        frame = self._reading.popleft()
        return Frame(frame, bool(self._reading))

    def getsockopt(self, option: int) -> int:
        assert option == zmq.EVENTS
        return int(zmq.POLLIN) if self._waiting else 0


def _on_loop(loop: asyncio.AbstractEventLoop, fn: Any) -> Any:
    box: list[Any] = []
    done = threading.Event()
    loop.call_soon_threadsafe(lambda: (box.append(fn()), done.set()))
    assert done.wait(10)
    return box[0]


@pytest.fixture
def faked() -> Iterator[tuple[pl.Runtime, FakePoolSocket, Turns]]:
    provider = pl.LocalProvider(workers=2, init_blocks=0, max_blocks=0)  # no pool is started
    executor = pl.ZMQExecutor(provider=provider, encrypted=False)
    with pl.Runtime([executor], progress=False) as rt:
        loop = rt._loop
        router = executor._router

        def install() -> tuple[FakePoolSocket, Turns, Any]:
            turns = Turns(loop)
            fake = FakePoolSocket(loop, router._on_readable, turns, rt._interpreter.ended)
            real = router._socket, router._frames
            router._socket, router._frames = fake, Frames(fake.send, fake.recv)  # type: ignore[assignment]
            router._events = fake.getsockopt
            executor._table.add(b"pool", "fake", "localhost", 2, loop.time())
            return fake, turns, real

        fake, turns, real = _on_loop(loop, install)
        try:
            yield rt, fake, turns
        finally:

            def restore() -> None:
                router._socket, router._frames = real
                router._events = real[0].get

            _on_loop(loop, restore)


@pl.app(pure=False)
def noop(x: int) -> int:
    return x


LINKS = 40


def test_each_link_of_a_chain_takes_one_turn_of_the_loop(faked: tuple[pl.Runtime, FakePoolSocket, Turns]) -> None:
    rt, fake, turns = faked
    chain = noop(0)
    for _ in range(LINKS - 1):
        chain = noop(chain)
    before = turns.count
    assert rt.run(chain) == 0
    assert fake.tasks_messages == LINKS
    # A link's result is read, its end told, the next link submitted and sent, all in the
    # turn the result is read (main: that turn, a turn to tell the end, and the send after it).
    assert fake.told_as_read == LINKS
    assert turns.count - before <= LINKS + 5, turns.count - before


def test_a_lone_submission_is_sent_in_the_turn_that_admits_it(faked: tuple[pl.Runtime, FakePoolSocket, Turns]) -> None:
    rt, fake, turns = faked
    admitted: list[int] = []
    doorbell = rt._doorbell
    assert doorbell is not None
    admit = doorbell._answer
    doorbell._answer = lambda: (admitted.append(turns.count), admit())[1]
    trips = 40
    for x in range(trips):
        assert rt.run(noop(x)) == x
    # Main sent each a turn after its admission, and told its end a turn after reading it.
    assert fake.sent_in_turns == admitted
    assert fake.told_as_read == trips
    # The lone answer's burst ends by asking whether more waits, not by a receive that fails
    # (one a round trip before).
    assert fake.found_nothing == 0, fake.found_nothing


def test_a_gathered_graph_still_goes_out_in_a_message_per_answer(
    faked: tuple[pl.Runtime, FakePoolSocket, Turns],
) -> None:
    rt, fake, _ = faked
    n = 2_000
    assert rt.run(pl.traverse(noop, range(n))) == list(range(n))
    # Sending at the end of each drain, not of each turn, keeps a drain's tasks together:
    # one message at the start, then one for the room each answer leaves.
    assert fake.tasks_messages <= fake.results_messages + 1, (fake.tasks_messages, fake.results_messages)
    assert fake.tasks_messages < n / 20, fake.tasks_messages


def test_tasks_retried_together_are_sent_together(faked: tuple[pl.Runtime, FakePoolSocket, Turns]) -> None:
    rt, fake, _ = faked
    fake.lose_first_tries = True
    n = 200
    assert rt.run(pl.traverse(noop, range(n))) == list(range(n))
    # Each answer's tasks are retried (a lost worker) and sent again in one message, not
    # one message per retried task.
    assert fake.tasks_messages <= fake.results_messages + 1, (fake.tasks_messages, fake.results_messages)
    assert fake.tasks_messages < n / 10, fake.tasks_messages


def test_through_a_real_pool_a_link_takes_one_turn_and_a_round_trip_two() -> None:
    with pl.Runtime([pl.ZMQExecutor(provider=pl.LocalProvider(workers=2))], progress=False) as rt:
        assert rt.run(noop(-1)) == -1  # the pool is up
        loop = rt._loop
        turns = _on_loop(loop, lambda: Turns(loop))
        chain = noop(0)
        for _ in range(LINKS - 1):
            chain = noop(chain)
        before = turns.count
        assert rt.run(chain) == 0
        per_link = (turns.count - before) / LINKS
        before = turns.count
        for x in range(LINKS):
            assert rt.run(noop(x)) == x
        per_trip = (turns.count - before) / LINKS
    # No handle is scheduled on the way only to be cancelled: each would cost an empty turn
    # (main: 2 a link, 4 a round trip). A stray wake-up of the socket's fd may add a few.
    assert per_link < 1.5, per_link
    assert per_trip < 3, per_trip


@contextlib.contextmanager
def plait_calls_on_the_loop(
    rt: pl.Runtime, under: str | tuple[str, ...] = str(Path(pl.__file__).parent)
) -> Iterator[Counter[str]]:
    """Calls of Python functions in files ``under`` (plait's) on the runtime's loop thread, by
    name, while within (the build, on the caller's thread, is not counted)."""
    calls: Counter[str] = Counter()

    def profile(frame: Any, event: str, arg: Any) -> None:
        if event == "call" and frame.f_code.co_filename.startswith(under):
            calls[frame.f_code.co_qualname] += 1

    _on_loop(rt._loop, lambda: sys.setprofile(profile))
    try:
        yield calls
    finally:
        _on_loop(rt._loop, lambda: sys.setprofile(None))


def test_a_gathered_no_op_costs_the_loop_thread_few_calls_of_plait(
    faked: tuple[pl.Runtime, FakePoolSocket, Turns],
) -> None:
    rt, _, _ = faked
    n = 2_000
    assert rt.run(pl.traverse(noop, range(-n, 0))) == list(range(-n, 0))  # its function sent, the paths warm
    with plait_calls_on_the_loop(rt) as calls:
        assert rt.run(pl.traverse(noop, range(n))) == list(range(n))
    per_task = sum(calls.values()) / n
    # Main: 30.4 (Node.key twice; an unstarted call's node, its link to its user and an
    # input's end each in a call of their own; a task's end asked in two calls; a generator
    # resumed per result). 23.4 now, one of them the fake pool's reading of each call.
    assert per_task <= 25, (per_task, calls.most_common())


def test_a_round_trip_costs_the_loop_thread_few_calls_of_plait(
    faked: tuple[pl.Runtime, FakePoolSocket, Turns],
) -> None:
    rt, _, _ = faked
    trips = 200
    for x in range(-20, 0):
        assert rt.run(noop(x)) == x
    with plait_calls_on_the_loop(rt) as calls:
        for x in range(trips):
            assert rt.run(noop(x)) == x
    per_trip = sum(calls.values()) / trips
    # Round seven: 94 → 84 (a node released twice, a pump of an empty queue and a send of
    # nothing in the turn that reads the result, generators where each drain and each
    # message sent ask). Round eight: 82 → 72 (the collector held and let go each trip; each
    # drain asking every executor for calls not started when none were admitted; a limit
    # set unchanged; a burst read, a drain's sends made and ends told, each through a call
    # of its own). Seven are the fake pool's decoding, encoding and reading of the call,
    # two the doorbell's answer.
    assert per_trip <= 74, (per_trip, calls.most_common())


def test_a_chain_s_link_costs_the_loop_thread_few_calls_of_plait(
    faked: tuple[pl.Runtime, FakePoolSocket, Turns],
) -> None:
    rt, _, _ = faked
    links = 200
    chain = noop(0)
    for _ in range(links - 1):
        chain = noop(chain)
    assert rt.run(noop(-1)) == -1
    with plait_calls_on_the_loop(rt) as calls:
        assert rt.run(chain) == 0
    per_link = sum(calls.values()) / links
    # 80 on 4c14f4b, 74 now (what a round trip lost but the collector, which a graph's
    # admission still holds); seven are the DSL's (substituting the last link's value, a
    # call's children), seven the fake pool's.
    assert per_link <= 76, (per_link, calls.most_common())


def test_a_round_trip_calls_no_typing_cast_on_the_loop(faked: tuple[pl.Runtime, FakePoolSocket, Turns]) -> None:
    rt, _, _ = faked
    rt.run(noop(-1))
    with plait_calls_on_the_loop(rt, under=typing.__file__) as calls:
        for x in range(50):
            assert rt.run(noop(x)) == x
    # typing.cast is a call of Python's at run time: main made three a round trip (the
    # router's two readiness checks and the executor's reading of a result message).
    assert not calls, calls


def test_a_round_trip_through_run_makes_no_condition_to_wait_on(
    faked: tuple[pl.Runtime, FakePoolSocket, Turns],
) -> None:
    rt, _, _ = faked
    rt.run(noop(-1))
    futures_dir, trips = str(Path(concurrent.futures.__file__).parent), 50
    on_caller: Counter[str] = Counter()

    def profile(frame: Any, event: str, arg: Any) -> None:
        if event == "call" and frame.f_code.co_filename.startswith(futures_dir):
            on_caller[frame.f_code.co_qualname] += 1

    with plait_calls_on_the_loop(rt, under=(futures_dir, threading.__file__)) as on_loop:
        sys.setprofile(profile)
        try:
            for x in range(trips):
                assert rt.run(noop(x)) == x
        finally:
            sys.setprofile(None)
    # Main made each future's base to wait on (its Condition, a new lock in it for the wait),
    # and the loop thread entered and notified it: six calls of Python there a round trip
    # (Future.set_result, _invoke_callbacks, the Condition's four), five on the caller's.
    # (The loop's count has the one Event.set, six calls, that tells the caller it counts.)
    assert sum(on_loop.values()) <= 6, on_loop
    assert not on_caller, on_caller
