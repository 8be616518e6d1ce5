"""What a pool does beyond relaying tasks: per task, no failed receive and no poller
update for a write that went whole (each was microseconds of every round trip), and few
calls of Python a round trip; at its start, nothing slow between the executor's accept
and its first tasks."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import zmq

from plait.backends._launcher import Launcher
from plait.backends._supervisor import Supervisor
from plait.backends.zmq._blocks import pool_command
from plait.backends.zmq._pool_link import ExecutorLink
from plait.backends.zmq._pool_workers import Workers
from plait.backends.zmq._protocol import (
    Accept,
    Cancel,
    Heartbeat,
    Message,
    Register,
    Results,
    Shutdown,
    TaskRow,
    Tasks,
    decode,
    encode,
)


class _CountingReceives:
    """A receive of a frame that counts its calls, and those that found nothing."""

    def __init__(self, recv: Callable[..., Any]) -> None:
        self.recv = recv
        self.receives = 0
        self.empty = 0

    def __call__(self, *args: Any) -> Any:
        self.receives += 1
        try:
            return self.recv(*args)
        except zmq.Again:
            self.empty += 1
            raise


def test_the_link_reads_the_waiting_messages_without_a_receive_that_finds_none() -> None:
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    router = context.socket(zmq.ROUTER)
    port = router.bind_to_random_port("tcp://127.0.0.1")
    link = ExecutorLink(f"tcp://127.0.0.1:{port}", "p", None, zmq.Poller())
    try:
        link.register("h", 1)
        identity, *frames = router.recv_multipart()
        assert isinstance(decode(frames)[0], Register)
        for ids in ([1], [2], [3]):
            router.send_multipart([identity, *encode(Cancel(ids))])
        counting = link._frames.recv = _CountingReceives(link._frames.recv)
        got: list[Message] = []
        while len(got) < 3 and link.dealer.poll(5000):  # they may come in more than one read
            got += [message for message, _ in link.messages()]
        assert got == [Cancel([1]), Cancel([2]), Cancel([3])]
        assert (counting.receives, counting.empty) == (3, 0)  # a frame each
        assert link.messages() == []  # asked with none waiting, it does not wait for one
    finally:
        link.close()
        router.close(0)
        context.term()


class _CountingPoller(zmq.Poller):
    def __init__(self) -> None:
        super().__init__()
        self.registered = 0

    def register(self, socket: Any, flags: int = zmq.POLLIN | zmq.POLLOUT) -> None:  # type: ignore[override]
        self.registered += 1
        super().register(socket, flags)


def test_a_write_to_a_worker_that_goes_whole_leaves_the_poller_as_it_was() -> None:
    poller = _CountingPoller()
    workers = Workers("p", socket.gethostname(), 2, poller, Launcher.forked())
    workers.fork()
    try:
        forked = poller.registered  # each worker's socket, once
        workers.start(sys.path, None)  # a start record to each: a few bytes, written whole
        assert poller.registered == forked == 2
        assert all(not worker.out for worker in workers.by_slot)
    finally:
        workers.close()


def _loaded_psutil(pid: int) -> bool:
    """Whether process ``pid`` has psutil's extension mapped: it has imported psutil."""
    return "_psutil_linux" in Path(f"/proc/{pid}/maps").read_text()


def _heartbeats(router: zmq.Socket[bytes], count: int) -> list[Heartbeat]:
    beats = []
    while len(beats) < count:
        assert router.poll(10_000), "the pool went silent"
        message, _ = decode(router.recv_multipart()[1:])
        if isinstance(message, Heartbeat):
            beats.append(message)
    return beats


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="looks at /proc/<pid>/maps")
def test_a_pool_makes_its_samplers_halfway_to_the_first_sample_not_as_it_is_accepted() -> None:
    """Making them imports psutil (~13 ms): at the accept, that held up the first tasks."""
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    router = context.socket(zmq.ROUTER)
    port = router.bind_to_random_port("tcp://127.0.0.1")
    pool = subprocess.Popen(pool_command(f"tcp://127.0.0.1:{port}", "p", 1))
    try:
        identity, *frames = router.recv_multipart()
        assert isinstance(decode(frames)[0], Register)
        accept = Accept(
            heartbeat_period=0.05, heartbeat_threshold=5.0, sys_path=sys.path, usage_interval=1.6, max_message_bytes=0
        )
        router.send_multipart([identity, *encode(accept)])
        started = time.monotonic()
        _heartbeats(router, 2)  # the accept is behind the pool
        assert time.monotonic() - started < 0.7 and not _loaded_psutil(pool.pid)
        sampled: list[Heartbeat] = []
        while not any(beat.samples for beat in sampled):  # the first sample, one interval after the accept
            sampled += _heartbeats(router, 1)
        assert 1.6 <= time.monotonic() - started < 5 and _loaded_psutil(pool.pid)
        router.send_multipart([identity, *encode(Shutdown())])
        assert pool.wait(10) == 0
    finally:
        if pool.poll() is None:
            pool.kill()
            pool.wait()
        router.close(0)
        context.term()


class _CountingFileno:
    """A worker's socket that counts the times it is asked its file descriptor."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.asked = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sock, name)

    def fileno(self) -> int:
        self.asked += 1
        return self.sock.fileno()


def test_a_pool_finds_the_worker_of_a_socket_event_without_asking_the_other_workers() -> None:
    """A pool of 64 workers walked them all for each read of a result (goal 4's pools)."""
    workers = Workers("p", socket.gethostname(), 8, zmq.Poller(), Launcher.forked())
    workers.fork()
    try:
        counting = [_CountingFileno(worker.sock) for worker in workers.by_slot]
        for worker, sock in zip(workers.by_slot, counting, strict=True):
            worker.sock = sock  # type: ignore[assignment]
        last = counting[-1].sock.fileno()
        workers.event(last, zmq.POLLIN)  # nothing to read yet: the worker has not started
        assert [sock.asked for sock in counting[:-1]] == [0] * 7
    finally:
        for worker, sock in zip(workers.by_slot, counting, strict=True):
            worker.sock = sock.sock
        workers.close()


def _watch_until(link: ExecutorLink, poller: zmq.Poller, done: Callable[[], bool], seconds: float) -> None:
    """Run the pool's loop's part for the link's monitor until ``done`` or ``seconds`` pass."""
    deadline = time.monotonic() + seconds
    while not done() and time.monotonic() < deadline:
        for target, _ in poller.poll(50):
            if target == link.monitor_fd:
                link.watch()


def test_a_pool_polls_one_zmq_socket_and_its_links_events_by_descriptor() -> None:
    """Each zmq socket in a poller costs every turn of the pool two system calls; the link's
    monitor was one, for events that come a few times a run. Polled by its descriptor, its
    events still wake the pool: the executor's end going away is seen."""
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    router = context.socket(zmq.ROUTER)
    port = router.bind_to_random_port("tcp://127.0.0.1")
    poller = zmq.Poller()
    link = ExecutorLink(f"tcp://127.0.0.1:{port}", "p", None, poller)
    try:
        assert [sock for sock, _ in poller.sockets if isinstance(sock, zmq.Socket)] == [link.dealer]
        link.register("h", 1)
        assert router.poll(5000)
        _watch_until(link, poller, lambda: False, 0.3)  # the connection's own events
        assert link.link_down_since is None
        router.close(0)
        _watch_until(link, poller, lambda: link.link_down_since is not None, 10)
        assert link.link_down_since is not None
    finally:
        link.close()
        router.close(0)
        context.term()


class _PoolOnAThread:
    """A real pool (``Pool``, its forked workers) run on a thread of this process, behind
    a ROUTER that plays the executor: what the pool's thread calls can be counted."""

    def __init__(self, workers: int) -> None:
        import threading

        from plait.backends.zmq._pool import Pool

        self.context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self.router = self.context.socket(zmq.ROUTER)
        port = self.router.bind_to_random_port("tcp://127.0.0.1")
        self.pool = Pool(f"tcp://127.0.0.1:{port}", "p", workers, None, Launcher.forked())
        self.profile: Callable[[Any, str, Any], Any] | None = None
        self.thread = threading.Thread(target=self._run)
        self.thread.start()
        self.identity, *frames = self.router.recv_multipart()
        assert isinstance(decode(frames)[0], Register)
        accept = Accept(
            heartbeat_period=60.0, heartbeat_threshold=60.0, sys_path=sys.path, usage_interval=0, max_message_bytes=0
        )
        self.router.send_multipart([self.identity, *encode(accept)])

    def _run(self) -> None:
        sys.setprofile(lambda frame, event, arg: self.profile and self.profile(frame, event, arg))
        try:
            self.pool.run()
        finally:
            sys.setprofile(None)

    def round_trip(self, task_id: int) -> Results:
        """Send a task (its function with the first), wait for its result."""
        import pickle

        fn = pickle.dumps(abs) if task_id == 0 else b""
        call = pickle.dumps(((-task_id,), {}))
        row = TaskRow(task_id, "abs", b"abs", None, len(fn), len(call))
        self.router.send_multipart([self.identity, *encode(Tasks([row]), [fn, call])])
        while True:
            assert self.router.poll(10_000), "the pool went silent"
            message, _ = decode(self.router.recv_multipart()[1:])
            if isinstance(message, Results) and message.results:
                return message

    def close(self) -> None:
        self.router.send_multipart([self.identity, *encode(Shutdown())])
        self.thread.join(10)
        self.router.close(0)
        self.context.term()


def test_a_pool_runs_every_task_of_messages_that_come_together() -> None:
    """Three tasks in three messages at once: each is run, none waits for a timer to wake the
    pool (its heartbeat is a minute away)."""
    import pickle

    pool = _PoolOnAThread(2)
    try:
        assert pool.round_trip(0).results[0].ok  # the function reaches the workers
        call = pickle.dumps(((-7,), {}))
        for task_id in (1, 2, 3):
            row = TaskRow(task_id, "abs", b"abs", None, 0, len(call))
            pool.router.send_multipart([pool.identity, *encode(Tasks([row]), [call])])
        ended: list[int] = []
        while len(ended) < 3:
            assert pool.router.poll(10_000), "the pool left a message waiting"
            message, _ = decode(pool.router.recv_multipart()[1:])
            if isinstance(message, Results):
                ended += [row.task_id for row in message.results if row.ok]
        assert sorted(ended) == [1, 2, 3]
    finally:
        pool.close()


def _profiled_round_trips(trips: int, profile: Callable[[Any, str, Any], Any]) -> None:
    """``trips`` lone round trips through a pool of 2 workers, each call on its thread seen by ``profile``."""
    pool = _PoolOnAThread(2)
    try:
        for task_id in range(5):  # the function reaches the workers; the loop settles
            assert pool.round_trip(task_id).results[0].ok
        pool.profile = profile
        for task_id in range(5, 5 + trips):
            assert pool.round_trip(task_id).results[0].ok
        pool.profile = None
    finally:
        pool.close()


def test_a_pool_relays_a_lone_task_and_its_result_in_few_python_calls() -> None:
    """Every call of the relay runs cold on a busy node: counted per round trip, on the pool's thread
    (its turns of the loop, the executor's message, the worker's write and read, the result's send)."""
    trips, calls = 50, [0]

    def count(frame: Any, event: str, arg: Any) -> None:
        if event in ("call", "c_call"):
            calls[0] += 1

    _profiled_round_trips(trips, count)
    # 118.3 on round seven's main: pyzmq's Python over the Cython socket, an enum made for each
    # readiness asked, the timers looked at every turn, a lone task and result handled as a batch.
    # 96.3 on round eight's: the next timer worked out before every wait, ``Poller.poll``'s
    # Python, a write copied into the worker's buffer and out, a lone task's end arming no deadline.
    assert calls[0] / trips <= 75, calls[0] / trips


def test_a_pool_works_out_its_next_timer_only_when_one_was_due_or_moved() -> None:
    """Before every wait the pool asked its link and its samplers when they were next due (a
    list, a ``min``, ~8 calls a turn): they change only as a timer runs or the executor
    accepts the pool, so the answer is kept until then. Tasks' deadlines are looked for only
    once a task has had a timeout (the timeout tests of ``test_zmq_executor`` see them kept)."""
    trips, asked = 20, {"link": 0, "deadline": 0}

    def count(frame: Any, event: str, arg: Any) -> None:
        if event == "call" and frame.f_code is ExecutorLink.due.__code__:
            asked["link"] += 1
        elif event == "call" and frame.f_code is Supervisor.next_deadline.__code__:
            asked["deadline"] += 1

    _profiled_round_trips(trips, count)
    assert asked == {"link": 0, "deadline": 0}  # each 2 a round trip on main: one a turn of the loop
