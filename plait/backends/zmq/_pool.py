"""The worker pool: ``plait worker --url tcp://HOST:PORT --pool-id ID --workers N``.

One pool runs per node. It connects a DEALER socket to the executor, registers, and
runs N worker processes, each the same local worker loop a ProcessExecutor uses
(``plait.backends._worker``: it caches each function per key and batches results).
Workers are forked from the pool, so a new one starts in milliseconds and the first
ones start while the pool registers. The pool never unpickles a payload: it relays
bytes between the executor and its workers.

A worker that dies fails its running task with WorkerLost and is replaced; a task past
its timeout, or cancelled while it runs, is stopped by killing its worker and every
process its task started (``_reaper.kill_tree``). The pool exits when told to, when
drained, when its link to the executor has been down for the heartbeat threshold, or
when whatever listens at the executor's address fails the handshake: a pool pins the
executor's Curve key, so it serves that executor only and never waits for another
process to take over the address.

Workers are forked by the pool's launcher (``plait.backends._launcher``), a child of
the pool forked before anything else: when the pool goes, even by SIGKILL, its
launcher kills the workers and everything their tasks started, within milliseconds
(a lost pool's tasks are retried no sooner than the executor's next heartbeat tick).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import struct
import sys
import time
from pathlib import Path
from typing import cast

import attrs
import msgspec
import zmq

from plait._version import __version__
from plait.backends._errors import ResultTooLarge, TaskTimeout, WorkerLost
from plait.backends._launcher import Launcher
from plait.backends._reaper import kill_tree
from plait.backends._records import HEADER, Result, Run, Skip, Start, Task, frame, read_results
from plait.backends._sampling import NodeSampler, SampleRow, TaskSample, TaskSampler, TaskSampleRow, last_seen
from plait.backends._supervisor import Slot, Supervisor
from plait.backends._wire import dumps_error
from plait.backends.zmq._curve import configure_client, read_keys
from plait.backends.zmq._frames import WIRE_BYTES, join, split
from plait.backends.zmq._protocol import (
    PROTOCOL_VERSION,
    Accept,
    Cancel,
    Drain,
    Drained,
    Heartbeat,
    Message,
    ProtocolError,
    Refuse,
    Register,
    ResultRow,
    Results,
    Shutdown,
    Tasks,
    decode,
    encode,
    pieces,
    python_version,
)

__all__ = ["Pool", "check_url", "main"]

log = logging.getLogger("plait.zmq.pool")

# Tasks a worker holds: the one it runs and the next, so it never waits for the pool
# and a long task delays at most one other. Short tasks (under _SHORT_TASK seconds on
# average) go in batches of up to _BATCH_ROOM instead, a fair share of the queue each:
# a message per task would cost more than the task.
_WORKER_ROOM = 2
_BATCH_ROOM = 64
_SHORT_TASK = 0.005
# How long a pool waits for the executor to accept it before giving up.
_REGISTER_TIMEOUT = 60.0
# A driver whose link is up but whose loop sends nothing for this many thresholds is hung.
_SILENCE_THRESHOLDS = 10
# A peer at the executor's address that fails the handshake is not this run's executor
# (a pool pins its server key): whoever it is, the pool leaves rather than wait for it.
_HANDSHAKE_FAILED = (
    zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_AUTH
)
_LINK_EVENTS = zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_DISCONNECTED | _HANDSHAKE_FAILED
_RESULTS_PER_MESSAGE = 1024
# What one read from a worker takes at most, into a buffer made once: ``sock.recv(1 MiB)``
# allocated (and the kernel mapped) a fresh MiB per read, ~35 us of every result here.
_READ_BYTES = 1 << 20
_EVENT = struct.Struct("=H")


@attrs.define(eq=False)
class _Worker:
    """A worker's process and the pool's end of its socket pair; what it holds is its slot's."""

    pid: int
    sock: socket.socket
    name: str
    slot: Slot[Task]
    out: bytearray = attrs.field(factory=bytearray)
    received: bytearray = attrs.field(factory=bytearray)
    last_look: TaskSample | None = None  # at its running task, to say how big it was if it dies


class Pool:
    """One pool's state and its event loop (a zmq poller over the DEALER and workers)."""

    def __init__(self, url: str, pool_id: str, workers: int, keys: dict[str, bytes] | None = None) -> None:
        self.url = url
        self.pool_id = pool_id
        self.host = socket.gethostname()
        self.size = workers
        self.supervisor: Supervisor[Task] = Supervisor(workers)  # each task without its function: kept apart
        self.functions: dict[bytes, bytes] = {}
        self.results: list[tuple[ResultRow, bytes]] = []
        self.sys_path: list[str] | None = None  # the driver's, from its accept
        self.max_message_bytes: int | None = None  # the biggest frame the executor takes, from its accept
        self.heartbeat_period = 1.0
        self.threshold = _REGISTER_TIMEOUT / _SILENCE_THRESHOLDS  # until the executor says
        self.next_heartbeat = 0.0
        self.draining = False
        self.exit_code: int | None = None
        self.task_seconds = 1.0  # a moving average of how long tasks run; long until measured
        self.sampler: NodeSampler | None = None  # looks at this node when the executor asks for it
        self.task_sampler: TaskSampler | None = None  # and at the workers of running tasks
        self.sample_every = 0.0
        self.next_sample = 0.0
        self.samples: list[SampleRow] = []  # sent with the next heartbeat
        self.task_samples: list[TaskSampleRow] = []
        self.poller = zmq.Poller()
        self.read_buffer = memoryview(bytearray(_READ_BYTES))
        # Fork before the zmq context exists, with no threads around; workers fork from it.
        self.launcher = Launcher.forked()
        self.workers = [self._fork(slot) for slot in self.supervisor.slots]  # by slot index
        self.context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self.dealer = self.context.socket(zmq.DEALER)
        self.dealer.linger = 1000  # long enough to deliver the last results of a drain
        self.dealer.maxmsgsize = WIRE_BYTES  # what a peer failing the handshake can make us hold
        if keys is not None:
            configure_client(self.dealer, keys)
        # The link to the executor, watched through ZMTP heartbeats (the executor's socket
        # pings every period and asks us to drop the link after the threshold without
        # traffic): zmq's threads keep it up while the driver's loop is busy, and it breaks
        # within the threshold when the driver dies, freezes or the network parts.
        self.monitor = self.dealer.get_monitor_socket(_LINK_EVENTS)
        self.link_down_since: float | None = None
        self.dealer.connect(url)
        self.poller.register(self.dealer, zmq.POLLIN)
        self.poller.register(self.monitor, zmq.POLLIN)
        self.last_heard = time.monotonic()

    # -- workers -----------------------------------------------------------------

    def _fork(self, slot: Slot[Task]) -> _Worker:
        ours, theirs = socket.socketpair()
        with theirs:
            try:
                pid = self.launcher.fork(theirs)
            except (OSError, EOFError) as error:  # someone killed it, and its workers with it
                raise RuntimeError(f"pool {self.pool_id}: its worker launcher is gone ({error})") from error
        ours.setblocking(False)
        worker = _Worker(pid, ours, f"{self.pool_id}/{slot.index}:{pid}", slot)
        self.poller.register(ours.fileno(), zmq.POLLIN)
        if self.sys_path is not None:
            self._write(worker, frame(Start(self.sys_path)))
        return worker

    def _write(self, worker: _Worker, data: bytes) -> None:
        worker.out += data
        self._flush_worker(worker)

    def _flush_worker(self, worker: _Worker) -> None:
        try:
            sent = worker.sock.send(worker.out)
        except BlockingIOError:
            sent = 0
        except OSError:
            return  # it died: reading its socket will tell
        del worker.out[:sent]
        # Wait for room only while there is something left to write.
        self.poller.register(worker.sock.fileno(), zmq.POLLIN | (zmq.POLLOUT if worker.out else 0))

    def _read_worker(self, worker: _Worker) -> None:
        try:
            got = worker.sock.recv_into(self.read_buffer)
        except BlockingIOError:
            return
        except OSError:
            got = 0
        if not got:
            self._worker_died(worker)
            return
        buffer = worker.received
        buffer += self.read_buffer[:got]
        while len(buffer) >= HEADER.size:
            (size,) = HEADER.unpack_from(buffer)
            if len(buffer) < HEADER.size + size:
                break
            batch = read_results(buffer[HEADER.size : HEADER.size + size])
            del buffer[: HEADER.size + size]
            done = self.supervisor.complete(worker.slot, [result.task_id for result in batch])
            for task, result in zip(done, batch, strict=True):
                if task is None:  # cancelled: the executor has forgotten it
                    continue
                self._result(task.name, worker.name, result)
                self.task_seconds += 0.1 * (result.ended - result.started - self.task_seconds)

    def _result(self, name: str, worker: str, result: Result) -> None:
        """Queue the result of task ``name`` for the executor; one too big for it to take is
        that task's failure.

        Sent as it is, it would make the executor drop the link: the pool lost, and the
        task retried to the same end.
        """
        ok, value, limit = result.ok, result.value, self.max_message_bytes
        if limit and len(value) > limit:
            ok, value = (
                False,
                dumps_error(
                    ResultTooLarge(
                        f"{name}: its result is {len(value)} bytes, more than the executor's "
                        f"max_message_bytes of {limit}; return less (write it to a file), or raise the limit"
                    )
                ),
            )
        started, ended = result.started, result.ended
        row = ResultRow(result.task_id, ok, started, ended, result.cpu_seconds, result.peak_rss, len(value), worker)
        self.results.append((row, value))

    def _worker_died(self, worker: _Worker) -> None:
        how = self._kill(worker)
        error = None
        if worker.slot.inflight:
            running = worker.slot.inflight[0]
            size = last_seen(worker.last_look, running.task_id, time.time())
            error = WorkerLost(f"worker {worker.name} on {self.host} died ({how}) while running {running.name}{size}")
        self._replace(worker, error)

    def _kill(self, worker: _Worker) -> str:
        """Kill the worker and what its task started, wait until it has ended; how it ended."""
        kill_tree(worker.pid)  # before the launcher reaps it: until then its pid is its own
        try:
            status = self.launcher.reap(worker.pid)
        except (OSError, EOFError):
            status = -1
        if status < 0:
            return "exit status unknown"
        if os.WIFSIGNALED(status):
            return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
        return f"exit code {os.WEXITSTATUS(status)}"

    def _replace(self, worker: _Worker, error: BaseException | None) -> None:
        """Fork a new worker in ``worker``'s place; its running task ends with ``error``
        (nothing is reported when None: it was cancelled), the rest go back in the queue."""
        self.poller.unregister(worker.sock.fileno())
        worker.sock.close()
        head = self.supervisor.lose(worker.slot)
        if head is not None and error is not None:
            now = time.time()
            self._result(head.name, worker.name, Result(head.task_id, False, now, now, None, None, dumps_error(error)))
        self.workers[worker.slot.index] = self._fork(self.supervisor.replace(worker.slot))

    def _room(self) -> int:
        """How many tasks each worker may hold now."""
        if self.task_seconds > _SHORT_TASK:
            return _WORKER_ROOM
        share = -(-len(self.supervisor.queue) // len(self.workers))  # ceiling
        return max(_WORKER_ROOM, min(_BATCH_ROOM, share))

    def _dispatch(self) -> None:
        if self.sys_path is None or not self.supervisor.queue:  # the loop's usual turn: nothing to hand out
            return
        # Idle workers first, then each up to its room: a task never waits behind a
        # running one while another worker has nothing to do.
        for index, batch in self.supervisor.assign((1, self._room())).items():
            tasks = [
                msgspec.structs.replace(task, fn=self.functions[task.fn_key]) if send_fn else task
                for task, send_fn in batch
            ]
            self._write(self.workers[index], frame(Run(tasks)))

    # -- the executor -----------------------------------------------------------------

    def _send(self, frames: list[bytes]) -> None:
        self.dealer.send_multipart(split(frames), copy=False)

    def _from_executor(self) -> None:
        while self.exit_code is None:
            try:
                frames = self.dealer.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            try:
                message, payload = decode(join(frames))
            except ProtocolError as error:
                log.warning("pool %s: dropped a message from the executor: %s", self.pool_id, error)
                continue
            self.last_heard = time.monotonic()
            self._on_message(message, payload)

    def _link_events(self) -> None:
        while True:
            try:
                # A monitor event's first frame: its id (16 bits), then a value (32 bits). Read here,
                # not by zmq.utils.monitor, which imports asyncio: ~15 ms of every pool's start-up.
                (event,) = _EVENT.unpack_from(self.monitor.recv_multipart(zmq.NOBLOCK)[0])
            except zmq.Again:
                return
            if event == zmq.EVENT_DISCONNECTED and self.link_down_since is None:
                self.link_down_since = time.monotonic()
            elif event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self.link_down_since = None
            elif event & _HANDSHAKE_FAILED:
                log.error("pool %s: the peer at %s is not this run's executor; exiting", self.pool_id, self.url)
                self.exit_code = 4

    def _on_message(self, message: Message, payload: bytes) -> None:
        kind = type(message)
        if kind is Tasks:
            self._queue(cast(Tasks, message), payload)
        elif kind is Accept:
            self._accepted(cast(Accept, message))
        elif kind is Refuse:
            # The executor does not say its versions to whoever asks; ours help compare with its log.
            ours = f"protocol {PROTOCOL_VERSION}, plait {__version__}, python {python_version()}"
            log.error("pool %s: %s (this pool runs %s)", self.pool_id, cast(Refuse, message).reason, ours)
            self.exit_code = 3
        elif kind is Cancel:
            self._cancel(set(cast(Cancel, message).ids))
        elif kind is Drain:
            self.draining = True
        elif kind is Shutdown:
            self.exit_code = 0

    def _accepted(self, accept: Accept) -> None:
        self.heartbeat_period = accept.heartbeat_period
        self.threshold = accept.heartbeat_threshold
        self.sys_path = accept.sys_path
        self._sample_every(accept.usage_interval)
        self.max_message_bytes = accept.max_message_bytes or None
        for worker in self.workers:
            self._write(worker, frame(Start(self.sys_path)))

    def _queue(self, message: Tasks, payload: bytes) -> None:
        """The tasks of ``message`` to the queue, each function (when it comes) kept by its key."""
        parts = pieces(payload, [size for row in message.tasks for size in (row.fn_size, row.call_size)])
        for row, fn, call in zip(message.tasks, parts, parts, strict=True):  # parts twice: a row's two in turn
            if row.fn_size:
                self.functions[row.fn_key] = bytes(fn)
            self.supervisor.submit(Task(row.task_id, row.name, row.fn_key, row.timeout, None, bytes(call)))

    def _sample_every(self, interval: float) -> None:
        """Sample this node every ``interval`` seconds, if it is a positive number."""
        if interval > 0:
            self.sampler, self.task_sampler, self.sample_every = NodeSampler(), TaskSampler(), float(interval)
            self.next_sample = time.monotonic() + self.sample_every

    def _cancel(self, ids: set[int]) -> None:
        cancelled = self.supervisor.cancel(ids)
        for index, held in cancelled.skip.items():
            self._write(self.workers[index], frame(Skip([task.task_id for task in held])))
        for slot in cancelled.running:
            worker = self.workers[slot.index]
            self._kill(worker)
            self._replace(worker, None)

    def _send_results(self) -> None:
        while self.results:
            count = self._results_per_message()
            chunk, self.results = self.results[:count], self.results[count:]
            self._send(encode(Results([row for row, _ in chunk]), [p for _, p in chunk]))

    def _results_per_message(self) -> int:
        """How many of the results to send next in one message: at most _RESULTS_PER_MESSAGE,
        and no more than fit the executor's ``max_message_bytes`` (each one does, on its own)."""
        limit = self.max_message_bytes
        if limit is None:
            return _RESULTS_PER_MESSAGE
        count, size = 0, 0
        for row, _ in self.results[:_RESULTS_PER_MESSAGE]:
            size += row.size
            if count and size > limit:
                break
            count += 1
        return count

    def _timers(self) -> None:
        now = time.monotonic()
        gone = self._executor_gone(now)
        if gone:
            log.error("pool %s: %s; exiting", self.pool_id, gone)
            self.exit_code = 4
            return
        if self.sampler is not None and self.task_sampler is not None and now >= self.next_sample:
            self.samples.append(self.sampler.row())
            self.next_sample = now + self.sample_every
            busy = {task_id: self.workers[slot.index] for task_id, slot in self.supervisor.running().items()}
            self.task_samples += [look.row() for look in self.task_sampler.look(busy)]
        if self.sys_path is not None and now >= self.next_heartbeat:
            # Samples ride on heartbeats: one message every period, whatever it carries.
            self._send(encode(Heartbeat(self.samples, self.task_samples)))
            self.samples, self.task_samples = [], []
            self.next_heartbeat = now + self.heartbeat_period
        for slot in self.supervisor.expired():
            worker, running = self.workers[slot.index], slot.inflight[0]
            self._kill(worker)
            self._replace(worker, TaskTimeout.killed(running.name, running.timeout))
        if self.draining and self.supervisor.idle() and not self.results:
            self._send(encode(Drained()))
            self.exit_code = 0

    def _executor_gone(self, now: float) -> str:
        """Why we think the executor is gone, or "" while we do not."""
        if self.sys_path is None and now - self.last_heard > _REGISTER_TIMEOUT:
            return f"the executor at {self.url} did not accept us within {_REGISTER_TIMEOUT} s"
        if self.link_down_since is not None and now - self.link_down_since > self.threshold:
            return f"the link to the executor at {self.url} has been down for {now - self.link_down_since:.1f} s"
        if now - self.last_heard > _SILENCE_THRESHOLDS * self.threshold:
            return f"the executor at {self.url} has sent nothing for {now - self.last_heard:.1f} s"
        return ""

    def _wait(self) -> int:
        """Milliseconds until the next timer is due."""
        due = [self.last_heard + min(_REGISTER_TIMEOUT, _SILENCE_THRESHOLDS * self.threshold)]
        if self.link_down_since is not None:
            due.append(self.link_down_since + self.threshold)
        if self.sys_path is not None:
            due.append(self.next_heartbeat)
        if self.sampler is not None:
            due.append(self.next_sample)
        deadline = self.supervisor.next_deadline()
        if deadline is not None:
            due.append(deadline)
        return max(0, int((min(due) - time.monotonic()) * 1000) + 1)

    # -- the loop ---------------------------------------------------------------------

    def run(self) -> int:
        self._send(
            encode(
                Register(
                    protocol=PROTOCOL_VERSION,
                    plait=__version__,
                    python=python_version(),
                    capacity=self.size,
                    host=self.host,
                    pool=self.pool_id,
                    pid=os.getpid(),
                )
            )
        )
        try:
            while self.exit_code is None:
                for target, events in self.poller.poll(self._wait()):
                    if target is self.dealer:
                        self._from_executor()
                    elif target is self.monitor:
                        self._link_events()
                    else:
                        self._worker_event(target, events)
                self._dispatch()
                self._send_results()
                self._timers()
        finally:
            self.close()
        return self.exit_code if self.exit_code is not None else 1

    def _worker_event(self, fd: int, events: int) -> None:
        worker = next((w for w in self.workers if w.sock.fileno() == fd), None)
        if worker is None:  # replaced earlier in this round
            return
        if events & zmq.POLLOUT:
            self._flush_worker(worker)
        if events & (zmq.POLLIN | zmq.POLLERR):
            self._read_worker(worker)

    def close(self) -> None:
        self.launcher.close()  # it kills the workers, and what their tasks started, first
        for worker in self.workers:
            worker.sock.close()
        self.dealer.disable_monitor()
        self.monitor.close()
        self.dealer.close()
        self.context.term()


def check_url(url: str) -> str:
    """``url`` if a pool can connect to it, else a ValueError saying what it should be.

    >>> check_url("tcp://10.0.0.5:54321")
    'tcp://10.0.0.5:54321'
    >>> check_url("10.0.0.5:54321")
    Traceback (most recent call last):
    ...
    ValueError: '10.0.0.5:54321' is not an executor address: expected tcp://HOST:PORT
    """
    scheme, _, rest = url.partition("://")
    host, _, port = rest.rpartition(":")
    if scheme != "tcp" or not host or not port.isdigit():
        raise ValueError(f"{url!r} is not an executor address: expected tcp://HOST:PORT")
    return url


def main(url: str, pool_id: str, workers: int | None, key_file: Path | None = None) -> int:
    """Run a pool until it is shut down, drained, or loses its executor; its exit code.

    ``key_file`` holds the run's CurveZMQ keys; without it the pool connects in the clear
    (to an executor made with ``encrypted=False``).
    """
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s plait worker %(levelname)s %(message)s")
    try:
        keys = None if key_file is None else read_keys(key_file)
    except ValueError as error:
        log.error("pool %s: %s", pool_id, error)
        return 2
    # A batch system stops a job with SIGTERM: leave through ``finally``, killing the workers.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in the driver's terminal is the driver's
    return Pool(url, pool_id, workers or os.cpu_count() or 1, keys).run()
