"""Eager submission: submit returns at once; submissions between two loop turns go together."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

import plait as pl

GATE = threading.Event()


@pl.app
def add(a: int, b: int) -> int:
    return a + b


@pl.app(pure=False)
def gated(x: int) -> int:
    GATE.wait(10)
    return x


@pytest.fixture
def threads() -> Iterator[pl.Runtime]:
    with pl.Runtime([pl.ThreadExecutor(2)]) as rt:
        yield rt


def test_submit_returns_before_the_loop_has_seen_the_work(threads: pl.Runtime) -> None:
    GATE.clear()
    blocker = threads.submit(pl.pure(1).map(lambda _: GATE.wait(10)))  # holds the loop thread
    futures = [threads.submit(add(i, 1)) for i in range(100)]  # would deadlock if submit waited for the loop
    assert not any(f.done() for f in futures)
    GATE.set()
    assert blocker.result(10) is True
    assert [f.result(10) for f in futures] == [i + 1 for i in range(100)]


def test_a_deep_unknown_executor_label_fails_the_future(threads: pl.Runtime) -> None:
    @pl.app(executor="gpu")
    def train() -> int:
        return 1

    future = threads.submit(pl.gather([add(add(train(), 1), 2)]))
    with pytest.raises(ValueError, match=r"app .*train asks for executor 'gpu'"):
        future.result(10)
    assert threads.run(add(1, 2)) == 3  # the runtime is not harmed


def test_many_threads_submitting_at_once_all_get_their_results(threads: pl.Runtime) -> None:
    results: dict[int, list[int]] = {}

    def submitter(t: int) -> None:
        futures = [threads.submit(add(t, i)) for i in range(200)]
        results[t] = [f.result(30) for f in futures]

    workers = [threading.Thread(target=submitter, args=(t,)) for t in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert results == {t: [t + i for i in range(200)] for t in range(4)}


def test_a_future_cancelled_before_it_is_admitted_never_runs(threads: pl.Runtime) -> None:
    GATE.clear()
    blocker = threads.submit(pl.pure(1).map(lambda _: GATE.wait(10)))
    ran: list[int] = []

    @pl.app(pure=False)
    def note(x: int) -> int:
        ran.append(x)
        return x

    future = threads.submit(note(1))
    assert future.cancel()
    GATE.set()
    blocker.result(10)
    assert threads.run(note(2)) == 2
    assert ran == [2]


def test_submissions_left_at_shutdown_are_cancelled() -> None:
    GATE.clear()
    rt = pl.Runtime([pl.ThreadExecutor(1)]).start()
    rt.submit(pl.pure(1).map(lambda _: GATE.wait(0.5)))
    pending = [rt.submit(add(i, 0)) for i in range(10)]
    rt.shutdown()
    GATE.set()
    assert all(f.done() for f in pending)
