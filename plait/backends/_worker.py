"""The worker side: run tasks from a driver and send back results.

``run_task`` is what every process-based worker does with one task; ``fork_worker``
starts a local worker process (for ``ProcessExecutor``'s launcher and a zmq pool),
which speaks length-prefixed records (``_records``) over a socket pair with its driver.
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import functools
import os
import select
import signal
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, NoReturn

from plait.backends._records import HEADER, Control, Result, Run, Skip, Start, Stop, Task, read_control, results_frame
from plait.backends._task import running, task_error
from plait.backends._usage import meter
from plait.backends._wire import dumps, dumps_error, error_text, loads, loads_function

__all__ = [
    "FunctionCache",
    "die_with",
    "fork_worker",
    "run_task",
]


FunctionCache = dict[bytes, Callable[..., Any]]


def run_task(functions: FunctionCache, task: Task, *, follows: bool = False) -> Result:
    """Run one task; every failure, even of unpickling, becomes an error result.

    What the task used (``plait.backends._usage``) comes with it, failed or not; a task
    that ``follows`` the previous one straight on, on this thread, is measured from where
    that one's measurement ended.
    """
    if task.fn is not None:
        # Loading a function imports its module: the worker's cost, once, kept out of the
        # task's measurement, where a slow import would make a short app look long.
        with running(task.name):  # a module that runs a workflow as it is imported is refused a runtime here
            _load(functions, task.fn_key, task.fn)
        follows = False
    task_meter = meter()
    if task_meter is None:
        started = time.time()
        ok, payload = _call(functions, task)
        return Result(task.task_id, ok, started, time.time(), None, None, payload)
    window = task_meter.start(follows=follows)
    ok, payload = _call(functions, task)
    ended, (cpu_seconds, peak_rss) = task_meter.stop(window)
    return Result(task.task_id, ok, window[0], ended, cpu_seconds, peak_rss, payload)


def _load(functions: FunctionCache, fn_key: bytes, payload: bytes) -> None:
    """Unpickle a function into ``functions``. One that cannot be loaded is kept as one
    that raises why, for this task and every later one of it (they come without it)."""
    try:
        functions[fn_key] = loads_function(payload)
    except BaseException as error:  # even SystemExit from the module's import
        functions[fn_key] = functools.partial(_raise, error)


def _raise(error: BaseException, *args: Any, **kwargs: Any) -> NoReturn:
    raise error


def _call(functions: FunctionCache, task: Task) -> tuple[bool, bytes]:
    """Whether the call succeeded, and its pickled value or error."""
    name = task.name
    try:
        args, kwargs = loads(task.call)  # ``loads_call``'s own: a call fewer a task
        with running(name):
            value = functions[task.fn_key](*args, **kwargs)
    except BaseException as error:  # the task's failure is a value here, even SystemExit
        return False, dumps_error(task_error(error, name))
    try:
        return True, dumps(value)
    except Exception as error:
        why = error_text(error)
        problem = TypeError(f"{name}: its result, a {type(value).__qualname__}, cannot be pickled: {why}")
        return False, dumps_error(problem)


def die_with(parent: int, signum: int = signal.SIGKILL) -> None:
    """Have ``signum`` sent to this process when ``parent`` dies (on Linux), or exit now
    if it is gone already.

    A worker must not outlive the process that started it, even in a long task, even
    when that one is killed with SIGKILL.
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signum)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:
        os._exit(1)


# What one read from the driver takes at most, into a buffer made once.
_READ_BYTES = 1 << 20


class _Channel:
    """A worker's end of its socket pair: the driver's records in, results out.

    It reads whatever has arrived in one system call (a record's length and body, or
    several records), and keeps what is past the record it returns for the next.
    ``waited`` says whether the last ``recv`` may have waited for bytes: it read more
    than once (a first read of a socket found ``readable`` does not wait).
    ``emptied`` says whether its last read took all the socket held (less than the
    buffer's size), so that a look for more straight after it would find nothing.
    """

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.received = bytearray()
        self.chunk = memoryview(bytearray(_READ_BYTES))
        self.waited = False
        self.emptied = False

    def recv(self) -> Control:
        reads, got = 0, 0
        end = self._record_end() if self.received else 0  # nothing kept: as after a lone task
        while not end:
            reads += 1
            got = self.sock.recv_into(self.chunk)
            if not got:
                raise EOFError(f"the driver hung up {len(self.received)} bytes into a record")
            self.waited = reads > 1
            self.emptied = got < len(self.chunk)
            if not self.received and got >= HEADER.size and HEADER.unpack_from(self.chunk)[0] == got - HEADER.size:
                # One whole record, as a lone task comes: read where it landed, not copied to be kept.
                return read_control(self.chunk[HEADER.size : got])
            self.received += self.chunk[:got]
            end = self._record_end()
        message = read_control(self.received[HEADER.size : end])
        del self.received[:end]
        self.waited = reads > 1
        self.emptied = 0 < got < len(self.chunk)
        return message

    def _record_end(self) -> int:
        """Where the first whole record received ends, or 0 while there is none."""
        if len(self.received) < HEADER.size:
            return 0
        end = HEADER.size + HEADER.unpack_from(self.received)[0]
        return end if len(self.received) >= end else 0

    def readable(self) -> bool:
        """Whether a record is here or on its way; asked before each queued task.

        Straight after a read that emptied the socket the answer is no without a look:
        a lone task runs without a ``select`` (one of three system calls of its round
        trip). A record that comes meanwhile is read after the task, as one that came a
        moment later would be.
        """
        if self.received and self._record_end():
            return True
        if self.emptied:
            self.emptied = False  # true once: after a task has run, look
            return False
        return bool(select.select([self.sock], [], [], 0)[0])

    def send(self, results: list[Result]) -> None:
        self.sock.sendall(results_frame(results))


def serve(channel: _Channel) -> None:
    """Run batches of tasks until the driver goes away or says stop."""
    functions: FunctionCache = {}
    queue: deque[Task] = deque()
    skipped: set[int] = set()  # cancelled by the driver after they were sent
    outbox = _Outbox(channel)
    follows = False  # whether the next task follows the last one straight on
    try:
        while True:
            while not queue or channel.readable():
                # A record read between two queued tasks, as it was there, does not part them:
                # its few microseconds count in the next one (the meter keeps the peak apart).
                waits = not queue
                message = channel.recv()
                if waits or channel.waited:
                    follows = False
                if isinstance(message, Run):
                    queue.extend(message.tasks)
                elif isinstance(message, Skip):
                    skipped.update(message.ids)
                elif isinstance(message, Stop):
                    return
            task = queue.popleft()
            if task.task_id in skipped:
                skipped.discard(task.task_id)
                result, follows = _skip(functions, task), False
            else:
                result, follows = run_task(functions, task, follows=follows), True
            outbox.put(result, now=not queue)
    finally:
        outbox.close()


# How long a result may wait for the tasks queued behind it, to go back with theirs.
# Short beside any task worth timing (and under the 5 ms a waiting thread may wait for
# the GIL anyway); long beside a quick task: ~100 no-ops go back in one message.
_HOLD = 0.001


class _Outbox:
    """Results on their way to the driver, in the order the tasks ran.

    When the worker has nothing else queued it sends at once, from its own thread: the
    lowest latency, and a lone result never waits. When more tasks wait, a result waits
    for them, at most ``_HOLD``: the batch goes back in one message when it ends, or a
    second thread sends whatever has ended once the oldest has waited that long, so a
    long task never holds back the result of a short one before it. One message for a
    batch, not one a task: a system call fewer a task here, and a read and a message
    fewer for the pool and the driver. Every send happens under one lock, in order.
    """

    def __init__(self, channel: _Channel) -> None:
        self.channel = channel
        self.pending: list[Result] = []
        self.since = 0.0  # when the oldest pending result was put
        # ``put`` takes the lock itself: a Condition's ``with`` is two calls of Python a task.
        self.lock = threading.Lock()
        self.ready = threading.Condition(self.lock)
        self.closed = False
        self.sender = threading.Thread(target=self._send_when_told, daemon=True)
        self.sender.start()

    def put(self, result: Result, *, now: bool) -> None:
        with self.lock:
            self.pending.append(result)
            if now:
                self._send()
            elif len(self.pending) == 1:  # the sender's clock starts with the oldest
                self.since = time.monotonic()
                self.ready.notify()

    def close(self) -> None:
        with self.ready:
            self.closed = True
            self.ready.notify()
        self.sender.join()

    def _send_when_told(self) -> None:
        with self.ready:
            while True:
                self.ready.wait_for(lambda: self.pending or self.closed)
                self._hold()
                self._send()
                if self.closed:
                    return

    def _hold(self) -> None:
        """Wait until the oldest pending result has waited ``_HOLD``, or there is none
        (the batch ended and went), or the outbox closes."""
        while self.pending and not self.closed:
            left = self.since + _HOLD - time.monotonic()
            if left <= 0:
                return
            self.ready.wait(left)

    def _send(self) -> None:
        batch, self.pending = self.pending, []
        if batch:
            try:  # noqa: SIM105 (``contextlib.suppress`` is three calls of Python a task)
                self.channel.send(batch)
            except OSError:  # the driver is gone; the reader sees EOF
                pass


def _skip(functions: FunctionCache, task: Task) -> Result:
    """The reply for a task cancelled before it started: it does not run."""
    if task.fn is not None:  # later tasks of this function come without it
        _load(functions, task.fn_key, task.fn)
    now = time.time()
    return Result(task.task_id, False, now, now, None, None, dumps_error(concurrent.futures.CancelledError()))


def fork_worker(sock: socket.socket, others: Iterable[socket.socket] = ()) -> int:
    """Fork a local worker that serves the driver at the other end of ``sock``; its pid.

    The child closes ``others`` (this process's ends of other workers' sockets, so a
    worker's death is seen as the end of its own socket only), dies with this process,
    and leads a session of its own, so ``_reaper.kill_tree`` finds what its tasks start.
    """
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        try:
            die_with(parent)
            os.setsid()
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver decides when workers stop
            for other in others:
                other.close()
            _serve_driver(sock)
        finally:
            os._exit(1)
    return pid


def adopt_path(driver: list[str]) -> None:
    """Import as the driver does: its ``sys.path`` first, then this interpreter's own entries.

    The driver's entries let the apps' modules import by name; keeping ours matters where
    the worker's Python is not the driver's (a container image, a packed environment):
    its own site-packages would otherwise vanish.
    """
    sys.path[:] = [*driver, *(entry for entry in sys.path if entry not in driver)]


def _serve_driver(sock: socket.socket) -> None:
    channel = _Channel(sock)
    start = channel.recv()
    if not isinstance(start, Start):
        raise EOFError(f"the driver began with {start!r:.100}, not a start")
    adopt_path(start.sys_path)
    # An empty batch of results says "ready": the driver starts the clock of a timeout
    # for the first task again from here, so a slow start-up does not count against it.
    channel.send([])
    try:
        serve(channel)
    except (EOFError, ConnectionError):
        pass
    finally:
        os._exit(0)
