"""ZMQExecutor with real pools (``plait worker`` processes) on loopback: results, errors,
function caching, timeouts, cancellation, draining, version refusal, bounded queues."""

from __future__ import annotations

import concurrent.futures
import subprocess
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
import zmq

import plait as pl
from plait.backends import ResultTooLarge, _encoding
from plait.backends.zmq import _executor
from plait.backends.zmq._blocks import pool_command
from plait.backends.zmq._protocol import Message, Refuse, Register, Tasks, decode, encode
from tests.backends.zmq.zmq_apps import (
    FAST,
    blob,
    fail,
    inc,
    keyed_dealer,
    nap,
    stuck,
    total,
    unspeakable,
    where,
    workers_of,
)
from tests.waiting import wait_for


def test_a_workflow_runs_on_pools_and_its_errors_come_back_with_the_remote_traceback() -> None:
    executor = pl.ZMQExecutor(provider=pl.LocalProvider(workers=2), **FAST)
    with pl.Runtime([executor]) as rt:
        chain = inc(0)
        for _ in range(20):
            chain = inc(chain)
        assert rt.run(total(*[inc(i) for i in range(300)], chain)) == sum(range(1, 301)) + 21
        with pytest.raises(ValueError, match="boom") as info:
            rt.run(fail("boom"))
        assert "in fail" in "".join(traceback.format_tb(info.value.__traceback__))  # the worker's frame
        assert executor.pools == ["zmq-0"]


def test_a_function_is_pickled_once_per_run_and_sent_once_per_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    pickled: list[str] = []
    sent_with_function: list[int] = []
    real_dumps, real_encode = _encoding.dumps_function, _executor.encode

    def counting_dumps(spec: pl.TaskSpec) -> bytes:
        pickled.append(spec.name)
        return real_dumps(spec)

    def counting_encode(message: Message, payloads: list[bytes] = []) -> list[bytes]:  # noqa: B006  (never changed)
        if isinstance(message, Tasks):
            sent_with_function.extend(row.task_id for row in message.tasks if row.fn_size)
        return real_encode(message, payloads)

    monkeypatch.setattr(_encoding, "dumps_function", counting_dumps)
    monkeypatch.setattr(_executor, "encode", counting_encode)
    with pl.Runtime([pl.ZMQExecutor(provider=pl.LocalProvider(workers=2), **FAST)]) as rt:
        assert rt.run(pl.gather(*[inc(i) for i in range(500)])) == list(range(1, 501))
    assert pickled == ["inc"]
    assert len(sent_with_function) == 1


@pytest.mark.parametrize(("workers", "blocks"), [(2, 1), (1, 2)])
def test_long_tasks_go_to_idle_workers_first_in_this_pool_or_another(tmp_path: Path, workers: int, blocks: int) -> None:
    provider = pl.LocalProvider(workers=workers, init_blocks=blocks, max_blocks=blocks)
    executor = pl.ZMQExecutor(provider=provider, **FAST)
    with pl.Runtime([executor]) as rt:
        wait_for(lambda: len(executor.pools) == blocks, what="the pools to register")
        assert rt.run(pl.gather(where(0.5, 1, str(tmp_path)), where(0.5, 2, str(tmp_path)))) == [1, 2]
    pids = {file.name.split("-")[1] for file in tmp_path.iterdir()}
    assert len(pids) == 2, "both tasks ran in the same worker, one after the other"


def test_a_task_past_its_timeout_is_killed_and_the_pool_goes_on() -> None:
    with pl.Runtime([pl.ZMQExecutor(provider=pl.LocalProvider(workers=1), **FAST)]) as rt:
        with pytest.raises(pl.TaskTimeout, match=r"timeout of 0\.5 s"):
            rt.run(stuck(30))
        assert rt.run(inc(41)) == 42


def test_cancelling_a_running_task_kills_its_worker_which_is_replaced() -> None:
    executor = pl.ZMQExecutor(provider=pl.LocalProvider(workers=1), **FAST)
    with pl.Runtime([executor]) as rt:
        assert rt.run(inc(0)) == 1
        pool = psutil.Process(int(executor.blocks.jobs["zmq-0"]))
        (first,) = workers_of(pool)
        future = rt.submit(nap(30, 1))
        time.sleep(0.5)
        future.cancel()
        wait_for(lambda: not first.is_running(), what="the worker of the cancelled task to die")
        assert rt.run(inc(1)) == 2
        (second,) = workers_of(pool)
        assert second.pid != first.pid
        with pytest.raises(concurrent.futures.CancelledError):
            future.result(0)


def test_a_drained_pool_finishes_what_it_holds_then_exits() -> None:
    executor = pl.ZMQExecutor(provider=pl.LocalProvider(workers=2), **FAST)
    with pl.Runtime([executor]) as rt:
        futures = [rt.submit(nap(0.3, i)) for i in range(4)]
        wait_for(lambda: sum(len(p.inflight) for p in executor._pools.values()) == 4, what="the tasks to be sent")
        rt._call_soon(lambda: rt._loop.create_task(executor.drain(["zmq-0"])))
        assert [f.result(10) for f in futures] == [0, 1, 2, 3]
        wait_for(lambda: executor.pools == [], what="the drained pool to leave")


def test_a_pool_of_another_protocol_version_is_refused_and_the_others_go_on(caplog: pytest.LogCaptureFixture) -> None:
    executor = pl.ZMQExecutor(provider=pl.LocalProvider(workers=1), **FAST)
    with pl.Runtime([executor]) as rt, zmq.Context() as context:
        stranger = keyed_dealer(context, executor)
        old = {"protocol": 999, "plait": "0.0.1", "python": "2.7"}
        stranger.send_multipart(encode(Register(**old, capacity=4, host="h", pool="old", pid=1)))
        assert stranger.poll(10_000), "no answer to a register"
        answer, _ = decode(stranger.recv_multipart())
        assert isinstance(answer, Refuse)
        assert "versions differ" in answer.reason
        assert "protocol version 999 in the pool, 2 in the executor" in caplog.text  # the driver's log says which
        assert "python version 2.7 in the pool" in caplog.text
        stranger.close()
        assert rt.run(inc(1)) == 2
        assert executor.pools == ["zmq-0"]


def test_a_pool_with_no_capacity_is_refused_too() -> None:
    executor = pl.ZMQExecutor(provider=pl.LocalProvider(workers=1), **FAST)
    with pl.Runtime([executor]), zmq.Context() as context:
        stranger = keyed_dealer(context, executor)
        ours = executor._ours
        stranger.send_multipart(encode(Register(**ours, capacity=0, host="h", pool="p", pid=1)))
        assert stranger.poll(10_000)
        assert "capacity 0" in decode(stranger.recv_multipart())[0].reason
        stranger.close()


@pytest.mark.slow
def test_200_000_tasks_at_once_keep_the_executor_queues_bounded_and_all_finish() -> None:
    executor = pl.ZMQExecutor(provider=pl.LocalProvider(workers=2), **FAST)
    seen = {"pending": 0, "inflight": 0, "pool_rss": 0}
    done = threading.Event()

    def watch() -> None:  # reads sizes only; a stale read is fine for a maximum
        pool = psutil.Process(int(executor.blocks.jobs["zmq-0"]))
        while not done.is_set():
            seen["pending"] = max(seen["pending"], len(executor._pending))
            seen["inflight"] = max(seen["inflight"], sum(len(p.inflight) for p in list(executor._pools.values())))
            seen["pool_rss"] = max(seen["pool_rss"], pool.memory_info().rss)
            time.sleep(0.01)

    with pl.Runtime([executor]) as rt:
        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            n = 200_000
            assert rt.run(pl.gather(*[inc(i) for i in range(n)]).map(sum), timeout=600) == n * (n + 1) // 2
        finally:
            done.set()
            watcher.join()
    assert 0 < seen["inflight"] <= executor.capacity
    assert seen["pending"] <= executor.capacity
    assert seen["pool_rss"] < 200 << 20, "the pool holds only its credit's worth of tasks"


def test_a_refused_pool_says_why_and_exits_with_its_workers() -> None:
    with zmq.Context() as context, context.socket(zmq.ROUTER) as router:  # closed before its context
        router.linger = 0
        port = router.bind_to_random_port("tcp://127.0.0.1")
        argv = pool_command(f"tcp://127.0.0.1:{port}", "lonely", 2)
        pool = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True)
        try:
            assert router.poll(30_000), "the pool did not register"
            identity, *frames = router.recv_multipart()
            register, _ = decode(frames)
            assert isinstance(register, Register)
            assert (register.pool, register.capacity, register.plait) == ("lonely", 2, pl.__version__)
            reason = "refused by a test: protocol version 1 in the pool, 7 in the executor"
            router.send_multipart([identity, *encode(Refuse(reason))])
            _, errors = pool.communicate(timeout=30)
        finally:
            pool.kill()
            pool.wait()
        assert pool.returncode == 3
        assert "protocol version 1 in the pool, 7 in the executor" in errors


@pytest.mark.parametrize(
    "executor",
    [lambda: pl.ProcessExecutor(1), lambda: pl.ZMQExecutor(provider=pl.LocalProvider(workers=1), **FAST)],
    ids=["processes", "zmq"],
)
def test_an_exception_that_neither_pickles_nor_prints_fails_its_task_not_its_worker(
    executor: Callable[[], pl.Executor],
) -> None:
    with pl.Runtime([executor()], lost_retries=0) as rt:
        with pytest.raises(pl.RemoteError, match="Unspeakable") as info:
            rt.run(unspeakable())
        assert info.value.type_name == "Unspeakable"
        assert info.value.message == "<its __str__ raised TypeError>"
        assert rt.run(inc(1)) == 2


def test_a_result_over_max_message_bytes_fails_its_task_once_naming_size_and_limit() -> None:
    executor = pl.ZMQExecutor(provider=pl.LocalProvider(workers=2), max_message_bytes=1 << 20, **FAST)
    with pl.Runtime([executor]) as rt:
        with pytest.raises(ResultTooLarge, match=r"blob: its result is 2097\d\d\d bytes.* 1048576") as info:
            rt.run(blob(2 << 20))
        assert not getattr(info.value, "__notes__", None), "it was retried"
        # The limit is per result: several under it travel together, and the pool was never lost.
        assert [len(b) for b in rt.run(pl.gather(*[blob(900_000 + i) for i in range(4)]))] == [
            900_000 + i for i in range(4)
        ]
        assert executor.pools == ["zmq-0"]
