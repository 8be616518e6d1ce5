"""Losing things for real: SIGKILL a worker, SIGKILL or SIGSTOP a whole pool, SIGKILL the driver."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import msgspec
import psutil
import zmq

import plait as pl
from plait.backends.zmq._protocol import Accept, Heartbeat, Register, ResultRow, Results, Tasks, decode, encode
from tests.backends.zmq.zmq_apps import FAST, keyed_dealer, nap, where, workers_of
from tests.monitors import Events
from tests.waiting import wait_for


def started(directory: Path) -> dict[int, list[int]]:
    """Which pids started each task, from the files ``where`` leaves."""
    runs: dict[int, list[int]] = {}
    for file in directory.iterdir():
        x, pid = map(int, file.name.split("-"))
        runs.setdefault(x, []).append(pid)
    return runs


def pool_process(executor: pl.ZMQExecutor, pool_id: str) -> psutil.Process:
    assert executor.blocks is not None
    return psutil.Process(int(executor.blocks.jobs[pool_id]))  # a LocalProvider job id is the pool's pid


def test_a_worker_killed_mid_task_fails_it_as_lost_the_runtime_retries_and_the_pool_replaces_it(tmp_path: Path) -> None:
    events = Events()
    executor = pl.ZMQExecutor(provider=pl.LocalProvider(workers=2), **FAST)
    with pl.Runtime([executor], monitor=events) as rt:
        future = rt.submit(pl.gather(*[where(1.0, i, str(tmp_path)) for i in range(4)]))
        wait_for(lambda: started(tmp_path), what="a task to start")
        (x, [victim]), *_ = started(tmp_path).items()
        pool = pool_process(executor, "zmq-0")
        os.kill(victim, signal.SIGKILL)
        assert future.result(60) == [0, 1, 2, 3]
        assert len(started(tmp_path)[x]) == 2, "the killed task ran again"
        workers = [p.pid for p in workers_of(pool)]
        assert len(workers) == 2 and victim not in workers
    said = "died (killed by SIGKILL) while running where (task "
    retried = events.kept("retried", "error")
    assert any(isinstance(e, pl.WorkerLost) and said in str(e) for e in retried), retried


def lose_the_first_of_two_pools(
    tmp_path: Path, silence: Callable[[psutil.Process], None], *, then_ended: bool = False, garble: bool = False
) -> list[pl.WorkerLost]:
    """Run six tasks on two one-worker pools, ``silence`` pool zmq-0's process mid-run (with
    ``garble``, after a stranger sent the executor malformed messages): the run
    completes on zmq-1 (and, with ``then_ended``, zmq-0's job is ended by the executor).
    Returns the WorkerLost errors its tasks were retried for."""
    events = Events()
    provider = pl.LocalProvider(workers=1, init_blocks=2, max_blocks=2)
    executor = pl.ZMQExecutor(provider=provider, **FAST)
    with pl.Runtime([executor], monitor=events) as rt:
        wait_for(lambda: len(executor.pools) == 2, what="both pools to register")
        if garble:  # while the driver's loop is busy, so the heartbeat round is the one to read them
            # Before the tasks: sent while they ran, zmq-0 could finish all of its own before
            # it was silenced, and the run end without a loss to detect.
            rt.run(pl.pure(executor.url).map(send_malformed))
        future = rt.submit(pl.gather(*[where(0.5, i, str(tmp_path)) for i in range(6)]))
        wait_for(lambda: len(started(tmp_path)) >= 2, what="tasks to start")
        pool = pool_process(executor, "zmq-0")
        silence(pool)
        assert future.result(60) == list(range(6))
        assert "zmq-0" not in executor.pools and "zmq-1" in executor.pools  # scaling may add a block
        if then_ended:
            wait_for(lambda: not pool.is_running(), what="the lost pool's job to be cancelled")
    return [e for e in events.kept("retried", "error") if isinstance(e, pl.WorkerLost)]


def test_a_pool_killed_whole_has_its_tasks_retried_on_the_other_pool(tmp_path: Path) -> None:
    lost = lose_the_first_of_two_pools(tmp_path, lambda pool: os.killpg(pool.pid, signal.SIGKILL))
    assert any("zmq-0" in str(e) for e in lost)


def send_malformed(url: str) -> None:
    """Messages of known types with the wrong frames or fields, from a peer that never
    registered; then a pause longer than a heartbeat period."""
    with zmq.Context() as context, context.socket(zmq.DEALER) as stranger:
        stranger.linger = 1000
        stranger.connect(url)
        for _ in range(20):
            stranger.send_multipart(encode(Heartbeat(), [b"x"]))
            nan = ResultRow(1, True, float("nan"), 1.0, None, None, 1, "w")
            stranger.send_multipart(encode(Results([nan]), [b"x"]))
            stranger.send_multipart([msgspec.msgpack.encode(["cancel", "not a list"])])
    time.sleep(0.5)


def test_a_malformed_message_does_not_stop_loss_detection(tmp_path: Path) -> None:
    lost = lose_the_first_of_two_pools(tmp_path, lambda pool: pool.suspend(), then_ended=True, garble=True)
    assert lost and all("heartbeat threshold" in str(e) for e in lost)


def test_a_silent_pool_is_lost_after_the_heartbeat_threshold_and_its_tasks_run_elsewhere(tmp_path: Path) -> None:
    # SIGSTOP: alive for the provider, silent on the wire; once lost, its job is cancelled
    lost = lose_the_first_of_two_pools(tmp_path, lambda pool: pool.suspend(), then_ended=True)
    assert lost and all("heartbeat threshold" in str(e) for e in lost)


DRIVER = """
import sys, time
sys.path.insert(0, {here!r})
import plait as pl
from tests.backends.zmq.zmq_apps import nap
executor = pl.ZMQExecutor(provider=pl.LocalProvider(workers=2), heartbeat_period=0.2, heartbeat_threshold=1.5)
runtime = pl.Runtime([executor]).start()
future = runtime.submit(pl.gather(*[nap(60, i) for i in range(4)]))
while sum(len(p.inflight) for p in list(executor._pools.values())) < 4:
    time.sleep(0.01)
print("ready", flush=True)
time.sleep(120)
"""


def gone(process: psutil.Process) -> bool:
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_when_the_driver_is_killed_its_pools_and_workers_exit_within_the_threshold() -> None:
    script = DRIVER.format(here=str(Path(__file__).parent))
    driver = subprocess.Popen([sys.executable, "-c", textwrap.dedent(script)], stdout=subprocess.PIPE, text=True)
    try:
        assert driver.stdout is not None
        assert driver.stdout.readline().strip() == "ready"
        # One pool, its launcher, two workers: a pool registers (and is sent tasks) before it
        # forks its workers, so they may still be on their way.
        wait_for(lambda: len(psutil.Process(driver.pid).children(recursive=True)) == 4, what="the workers forked")
        descendants = psutil.Process(driver.pid).children(recursive=True)
    finally:
        driver.kill()
        driver.wait()
    wait_for(lambda: all(gone(p) for p in descendants), timeout=10, what="the pool and its workers to exit")


def test_a_pool_that_registers_twice_has_what_it_held_retried() -> None:
    events = Events()
    executor = pl.ZMQExecutor(provider=pl.LocalProvider(workers=1), **FAST)
    register = encode(Register(**executor._ours, capacity=4, host="h", pool="twice", pid=1))
    with pl.Runtime([executor], monitor=events) as rt, zmq.Context() as context:
        wait_for(lambda: executor.pools == ["zmq-0"], what="the real pool to register")
        twice = keyed_dealer(context, executor)
        twice.send_multipart(register)
        assert twice.poll(10_000) and isinstance(decode(twice.recv_multipart())[0], Accept)
        future = rt.submit(pl.gather(*[nap(0.1, i) for i in range(8)]))
        assert twice.poll(10_000) and isinstance(decode(twice.recv_multipart())[0], Tasks)
        twice.send_multipart(register)  # and never runs what it was sent
        assert future.result(30) == list(range(8))
        twice.close()
    assert any("registered again" in str(e) for e in events.kept("retried", "error"))
