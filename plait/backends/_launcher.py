"""The launcher: a small process that forks ProcessExecutor's workers on request.

Why not start each worker from the driver: ``subprocess`` starts a child with
``vfork``, and Linux then hands the driver's peak memory to the child as the child's
own lifetime peak (``ru_maxrss``); a worker of a big driver could not see its tasks'
peaks without reading ``/proc/self/status`` for each (see ``_usage.TaskMeter``). A
worker forked from the launcher starts from the launcher's small peak instead. It
also starts in milliseconds, with plait already imported, sharing those pages with
its siblings: a killed worker's replacement is at work at once.

The driver holds the launcher by a socket pair: it sends a worker's end of a new
socket pair with a fork request and gets back the pid, and asks the launcher to reap
a worker it has told to stop or has killed. A worker is the launcher's child, dies
with it, and the launcher dies with the thread of the driver that started it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Sequence

from plait.backends._worker import die_with, fork_worker, recv_exactly

__all__ = ["Launcher", "serve"]

_MAIN = "import sys; from plait.backends._launcher import serve; serve(int(sys.argv[1]), int(sys.argv[2]))"
# A request: b"f" (fork; the worker's socket rides along) or b"r" (reap that pid). A reply: a pid or a status.
_REQUEST = struct.Struct("!cq")
_REPLY = struct.Struct("!q")


class Launcher:
    """The driver's handle on a launcher process, started at once.

    Start it from a thread that outlives its workers (the runtime's loop thread): on
    Linux the launcher dies with that thread. Its methods block while the launcher
    works (a fork takes about a millisecond), and are safe to call from any thread.
    """

    def __init__(self) -> None:
        ours, theirs = socket.socketpair()
        with theirs:
            self.process = subprocess.Popen(
                [sys.executable, "-c", _MAIN, str(theirs.fileno()), str(os.getpid())], pass_fds=(theirs.fileno(),)
            )
        self._control = ours
        self._lock = threading.Lock()

    def alive(self) -> bool:
        return self.process.poll() is None

    def fork(self, worker_end: socket.socket) -> int:
        """A new worker serving the driver at the other end of ``worker_end``; its pid."""
        return self._ask(b"f", 0, [worker_end.fileno()])

    def reap(self, pid: int) -> int:
        """Wait until worker ``pid`` has ended, then its wait status. Tell it to stop, or
        kill it, first: until it is reaped its pid (and process group) can't be reused."""
        return self._ask(b"r", pid)

    def _ask(self, op: bytes, number: int, fds: Sequence[int] = ()) -> int:
        with self._lock:
            socket.send_fds(self._control, [_REQUEST.pack(op, number)], list(fds))
            (reply,) = _REPLY.unpack(recv_exactly(self._control, _REPLY.size))
            return int(reply)

    def close(self) -> None:
        """Stop the launcher (after its workers: any left die with it) and wait for it."""
        self._control.close()
        self.process.wait()


def serve(control_fd: int, driver: int) -> None:
    """The launcher process: fork and reap workers as the driver asks, until it hangs up."""
    die_with(driver)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in the driver's terminal is the driver's
    control = socket.socket(fileno=control_fd)
    try:
        while True:
            message, fds, _, _ = socket.recv_fds(control, _REQUEST.size, 1)
            if not message:
                return  # the driver is done
            op, number = _REQUEST.unpack(message + recv_exactly(control, _REQUEST.size - len(message)))
            control.sendall(_REPLY.pack(_fork(fds[0], control) if op == b"f" else _reap(number)))
    finally:
        os._exit(0)


def _fork(fd: int, control: socket.socket) -> int:
    with socket.socket(fileno=fd) as worker_end:
        return fork_worker(worker_end, [control])


def _reap(pid: int) -> int:
    with contextlib.suppress(ChildProcessError):  # not ours, or reaped already
        return os.waitpid(pid, 0)[1]
    return -1
