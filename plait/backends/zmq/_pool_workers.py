"""A pool's forked workers: handing them the executor's tasks, reading back their results,
killing and replacing them.

Each worker runs the same local worker loop a ProcessExecutor uses
(``plait.backends._worker``: it caches each function per key and batches results), over a
socket pair, supervised through the shared state machine (``plait.backends._supervisor``).
Workers are forked by the pool's launcher (``plait.backends._launcher``), so a new one
starts in milliseconds and the first ones start while the pool registers. The pool never
unpickles a payload: it relays bytes between the executor and its workers.

A worker that dies fails its running task with WorkerLost and is replaced; a task past
its timeout, or cancelled while it runs, is stopped by killing its worker and every
process its task started (``_reaper.kill_tree``).
"""

from __future__ import annotations

import socket
import time

import attrs
import msgspec
import zmq

from plait.backends._errors import ResultTooLarge, TaskTimeout, WorkerLost
from plait.backends._launcher import Launcher, how_it_ended
from plait.backends._reaper import kill_tree
from plait.backends._records import HEADER, Result, Run, Skip, Start, Task, frame, read_results
from plait.backends._sampling import TaskSample, last_seen
from plait.backends._supervisor import Slot, Supervisor
from plait.backends.zmq._protocol import ResultRow, Tasks

__all__ = ["Worker", "Workers"]

# Tasks a worker holds: the one it runs and the next, so it never waits for the pool
# and a long task delays at most one other. Short tasks (under _SHORT_TASK seconds on
# average) go in batches of up to _BATCH_ROOM instead, a fair share of the queue each:
# a message per task would cost more than the task.
_WORKER_ROOM = 2
_BATCH_ROOM = 64
_SHORT_TASK = 0.005
# What one read from a worker takes at most, into a buffer made once: ``sock.recv(1 MiB)``
# allocated (and the kernel mapped) a fresh MiB per read, ~35 us of every result here.
_READ_BYTES = 1 << 20
# The poller's events as plain ints: pyzmq's enums make each ``|`` and ``&`` a Python call.
_POLLIN, _POLLOUT, _POLLERR = int(zmq.POLLIN), int(zmq.POLLOUT), int(zmq.POLLERR)


@attrs.define(eq=False)
class Worker:
    """A worker's process and the pool's end of its socket pair; what it holds is its slot's."""

    pid: int
    sock: socket.socket
    name: str
    slot: Slot[Task]
    out: bytearray = attrs.field(factory=bytearray)
    polled_out: bool = False  # whether the poller watches its socket for room to write
    received: bytearray = attrs.field(factory=bytearray)
    last_look: TaskSample | None = None  # at its running task, to say how big it was if it dies


class Workers:
    """Pool ``pool_id``'s ``size`` workers on ``host``, forked by ``launcher``, their
    sockets polled by ``poller``; closing them closes the launcher.

    The tasks it is given wait in its supervisor's queue; what they end with waits in
    ``results`` for the executor.
    """

    def __init__(self, pool_id: str, host: str, size: int, poller: zmq.Poller, launcher: Launcher) -> None:
        self.pool_id = pool_id
        self.host = host
        self.poller = poller
        self.supervisor: Supervisor[Task] = Supervisor(size)  # each task without its function: kept apart
        self.functions: dict[bytes, bytes] = {}
        self.results: list[tuple[ResultRow, bytes]] = []
        self.sys_path: list[str] | None = None  # the driver's, once the executor has accepted us
        self.max_message_bytes: int | None = None  # the biggest frame the executor takes
        self.task_seconds = 1.0  # a moving average of how long tasks run; long until measured
        self.read_buffer = memoryview(bytearray(_READ_BYTES))
        self.launcher = launcher
        self.by_slot: list[Worker] = []  # forked by ``fork``
        self.by_fd: dict[int, Worker] = {}  # the same, by their sockets' descriptors: what the poller names

    def fork(self) -> None:
        """Fork the workers: they start as the launcher has loaded what they run."""
        self.by_slot = [self._fork(slot) for slot in self.supervisor.slots]

    def start(self, sys_path: list[str], max_message_bytes: int | None) -> None:
        """Have the workers import from the driver's ``sys_path``; and send no result
        bigger than ``max_message_bytes``."""
        self.sys_path = sys_path
        self.max_message_bytes = max_message_bytes
        for worker in self.by_slot:
            self._write(worker, frame(Start(sys_path)))

    def _fork(self, slot: Slot[Task]) -> Worker:
        ours, theirs = socket.socketpair()
        with theirs:
            try:
                pid = self.launcher.fork(theirs)
            except (OSError, EOFError) as error:  # someone killed it, and its workers with it
                raise RuntimeError(f"pool {self.pool_id}: its worker launcher is gone ({error})") from error
        ours.setblocking(False)
        worker = Worker(pid, ours, f"{self.pool_id}/{slot.index}:{pid}", slot)
        self.by_fd[ours.fileno()] = worker
        self.poller.register(ours.fileno(), _POLLIN)
        if self.sys_path is not None:
            self._write(worker, frame(Start(self.sys_path)))
        return worker

    def _write(self, worker: Worker, data: bytes) -> None:
        """Write ``data`` to ``worker`` after what waits for room there (``out``); keep what does not go."""
        out = worker.out
        if out:  # in order, behind what waits
            out += data
        try:
            # Sent as it is when nothing waits, as nearly always: no copy into ``out`` and back.
            sent = worker.sock.send(out or data)
        except BlockingIOError:
            sent = 0
        except OSError:
            return  # it died: reading its socket will tell
        if out:
            del out[:sent]
        elif sent < len(data):
            out += memoryview(data)[sent:]
        # Wait for room only while there is something left to write; a write that went
        # whole, as nearly every one does, leaves the poller as it was.
        if bool(out) is not worker.polled_out:
            worker.polled_out = bool(out)
            self.poller.register(worker.sock.fileno(), _POLLIN | (_POLLOUT if out else 0))

    def event(self, fd: int, events: int) -> None:
        """The poller saw ``events`` on the socket ``fd`` of a worker."""
        worker = self.by_fd.get(fd)
        if worker is None:  # replaced earlier in this round
            return
        if events & _POLLOUT:
            self._write(worker, b"")  # what waits for room
        if events & (_POLLIN | _POLLERR):
            self._read(worker)

    def _read(self, worker: Worker) -> None:
        try:
            got = worker.sock.recv_into(self.read_buffer)
        except BlockingIOError:
            return
        except OSError:
            got = 0
        if not got:
            self._died(worker)
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
                _pickled(
                    ResultTooLarge(
                        f"{name}: its result is {len(value)} bytes, more than the executor's "
                        f"max_message_bytes of {limit}; return less (write it to a file), or raise the limit"
                    )
                ),
            )
        started, ended = result.started, result.ended
        row = ResultRow(result.task_id, ok, started, ended, result.cpu_seconds, result.peak_rss, len(value), worker)
        self.results.append((row, value))

    def _died(self, worker: Worker) -> None:
        how = self._kill(worker)
        error = None
        if worker.slot.inflight:
            running = worker.slot.inflight[0]
            size = last_seen(worker.last_look, running.task_id, time.time())
            error = WorkerLost.died(f"{worker.name} on {self.host}", how, running.name, running.task_id, size)
        self._replace(worker, error)

    def _kill(self, worker: Worker) -> str:
        """Kill the worker and what its task started, wait until it has ended; how it ended."""
        kill_tree(worker.pid)  # before the launcher reaps it: until then its pid is its own
        try:
            status = self.launcher.reap(worker.pid)
        except (OSError, EOFError):
            status = -1
        return how_it_ended(status)

    def _replace(self, worker: Worker, error: BaseException | None) -> None:
        """Fork a new worker in ``worker``'s place; its running task ends with ``error``
        (nothing is reported when None: it was cancelled), the rest go back in the queue."""
        fd = worker.sock.fileno()
        self.poller.unregister(fd)
        del self.by_fd[fd]
        worker.sock.close()
        head = self.supervisor.lose(worker.slot)
        if head is not None and error is not None:
            now = time.time()
            self._result(head.name, worker.name, Result(head.task_id, False, now, now, None, None, _pickled(error)))
        self.by_slot[worker.slot.index] = self._fork(self.supervisor.replace(worker.slot))

    def queue(self, message: Tasks, payload: bytes) -> None:
        """The tasks of ``message`` to the queue, each function (when it comes) kept by its key."""
        start, submit = 0, self.supervisor.submit
        for row in message.tasks:  # each row's function (if any) then call, end to end in the payload
            call_start = start + row.fn_size
            end = call_start + row.call_size
            if row.fn_size:
                self.functions[row.fn_key] = payload[start:call_start]
            submit(Task(row.task_id, row.name, row.fn_key, row.timeout, None, payload[call_start:end]))
            start = end

    def _room(self) -> int:
        """How many tasks each worker may hold now."""
        if self.task_seconds > _SHORT_TASK:
            return _WORKER_ROOM
        share = -(-len(self.supervisor.queue) // len(self.by_slot))  # ceiling
        return max(_WORKER_ROOM, min(_BATCH_ROOM, share))

    def dispatch(self) -> None:
        if self.sys_path is None:  # not accepted yet: the workers do not know where to import from
            return
        # Idle workers first, then each up to its room: a task never waits behind a
        # running one while another worker has nothing to do.
        for index, batch in self.supervisor.assign((1, self._room())).items():
            tasks = [
                msgspec.structs.replace(task, fn=self.functions[task.fn_key]) if send_fn else task
                for task, send_fn in batch
            ]
            self._write(self.by_slot[index], frame(Run(tasks)))

    def cancel(self, ids: set[int]) -> None:
        cancelled = self.supervisor.cancel(ids)
        for index, held in cancelled.skip.items():
            self._write(self.by_slot[index], frame(Skip([task.task_id for task in held])))
        for slot in cancelled.running:
            worker = self.by_slot[slot.index]
            self._kill(worker)
            self._replace(worker, None)

    def expire(self) -> None:
        """Stop each task past its timeout: kill its worker, fail it, replace the worker."""
        for slot in self.supervisor.expired():
            worker, running = self.by_slot[slot.index], slot.inflight[0]
            self._kill(worker)
            self._replace(worker, TaskTimeout.killed(running.name, running.timeout))

    def running(self) -> dict[int, Worker]:
        """The workers of the running tasks, by task id."""
        return {task_id: self.by_slot[slot.index] for task_id, slot in self.supervisor.running().items()}

    def done(self) -> bool:
        """Nothing queued, nothing held by a worker, no result waiting to be sent."""
        return self.supervisor.idle() and not self.results

    def close(self) -> None:
        self.launcher.close()  # it kills the workers, and what their tasks started, first
        for worker in self.by_slot:
            worker.sock.close()


def _pickled(error: BaseException) -> bytes:
    """``error`` as a task's failure travels to the driver.

    Its module is imported at the first failure the pool itself reports (a lost worker, a
    timeout, a result too big): it loads cloudpickle, which the pool needs for nothing
    else; its workers have it from their launcher (``_pool_start``).
    """
    from plait.backends._wire import dumps_error

    return dumps_error(error)
