"""What a pool does beyond relaying tasks: per task, no failed receive and no poller
update for a write that went whole (each was microseconds of every round trip); at its
start, nothing slow between the executor's accept and its first tasks."""

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
from plait.backends.zmq._blocks import pool_command
from plait.backends.zmq._pool_link import ExecutorLink
from plait.backends.zmq._pool_workers import Workers
from plait.backends.zmq._protocol import Accept, Cancel, Heartbeat, Message, Register, Shutdown, decode, encode


class _CountingReceives:
    """A socket that counts its ``recv_multipart`` calls, and those that found nothing."""

    def __init__(self, sock: zmq.Socket[bytes]) -> None:
        self.sock = sock
        self.receives = 0
        self.empty = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sock, name)

    def recv_multipart(self, *args: Any, **kwargs: Any) -> list[bytes]:
        self.receives += 1
        try:
            return self.sock.recv_multipart(*args, **kwargs)
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
        counting = _CountingReceives(link.dealer)
        link.dealer = counting  # type: ignore[assignment]
        got: list[Message] = []
        while len(got) < 3 and counting.sock.poll(5000):  # they may come in more than one read
            got += [message for message, _ in link.messages()]
        link.dealer = counting.sock
        assert got == [Cancel([1]), Cancel([2]), Cancel([3])]
        assert (counting.receives, counting.empty) == (3, 0)
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
