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

The launcher is what keeps a worker's tasks from outliving it (``_reaper``). It is a
child subreaper, so a process its workers' tasks orphan becomes its child. It is in a
process group of its own (a session, when spawned), so a kill aimed at its driver's
group leaves it time to clean up. When its driver goes (the socket pair's end, or
SIGTERM, which the kernel sends it when the driver dies, even by SIGKILL) it kills
every process under it, waits until they are all gone, and exits. A zmq pool runs one
too, forked (``Launcher.forked``): when the pool is killed, its tasks' commands die
with it.
"""

from __future__ import annotations

import gc
import os
import signal
import socket
import struct
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, NoReturn

from plait.backends._python import python_starting
from plait.backends._reaper import become_subreaper, end_descendants, kill_tree, reap_orphans

if TYPE_CHECKING:  # a pool forks its launcher (``forked``): only a driver spawns one
    import subprocess

__all__ = ["Launcher", "how_it_ended", "imports_done", "recv_exactly", "serve"]

_MAIN = "import sys; from plait.backends._launcher import serve; serve(int(sys.argv[1]), int(sys.argv[2]))"
# A request: b"f" (fork; the worker's socket rides along) or b"r" (reap that pid). A reply: a pid or a status.
_REQUEST = struct.Struct("!cq")
_REPLY = struct.Struct("!q")
# How long a launcher that is ending waits for what its workers started to die.
_END_WITHIN = 10.0


class Launcher:
    """The driver's handle on a launcher process, started at once.

    Start it from a thread that outlives its workers (the runtime's loop thread): on
    Linux the launcher dies with that thread. Its methods block while the launcher
    works (a fork takes about a millisecond), and are safe to call from any thread.
    """

    def __init__(self, process: subprocess.Popen[bytes] | _Forked, control: socket.socket) -> None:
        self.process = process
        self._control = control
        self._lock = threading.Lock()

    @classmethod
    def spawned(cls, env: Mapping[str, str] | None = None) -> Launcher:
        """A launcher in a fresh interpreter (this one's), with a small peak of its own; its
        workers have ``env`` (this process's environment by default)."""
        import subprocess  # see TYPE_CHECKING above

        ours, theirs = socket.socketpair()
        with theirs:
            process = subprocess.Popen(
                python_starting(_MAIN, str(theirs.fileno()), str(os.getpid())),
                env=env,
                pass_fds=(theirs.fileno(),),
                start_new_session=True,  # and so no terminal: it never waits on a tty (SIGTTOU)
            )
        return cls(process, ours)

    @classmethod
    def forked(cls) -> Launcher:
        """A launcher forked from this process, which must have no other thread yet."""
        ours, theirs = socket.socketpair()
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the child: never returns
            try:
                ours.close()
                os.setpgid(0, 0)
                serve(theirs.detach(), parent)
            finally:
                os._exit(1)
        theirs.close()
        return cls(_Forked(pid), ours)

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


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    """The next ``size`` bytes from ``sock``; EOFError if its peer hangs up first."""
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise EOFError(f"the peer hung up {len(data)} bytes into {size}")
        data += chunk
    return bytes(data)


def how_it_ended(status: int) -> str:
    """How a reaped worker ended, from the wait status ``Launcher.reap`` gave (-1: not known).

    >>> how_it_ended(signal.SIGKILL), how_it_ended(3 << 8), how_it_ended(-1)
    ('killed by SIGKILL', 'exit code 3', 'exit status unknown')
    """
    if status < 0:
        return "exit status unknown"
    if os.WIFSIGNALED(status):
        return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit code {os.WEXITSTATUS(status)}"


class _Forked:
    """A forked launcher, held as ``subprocess.Popen`` holds a spawned one.

    A plain class, not attrs: a pool imports this module before it forks its launcher, which
    never needs attrs (~10 ms of imports, inspect's with them), and forks it that much sooner.
    """

    __slots__ = ("pid", "returncode")

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self) -> int:
        if self.returncode is None:
            self.returncode = os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])
        return self.returncode


def serve(control_fd: int, driver: int) -> None:
    """The launcher process: fork and reap workers as the driver asks, until it hangs up;
    then kill whatever its workers left running, and exit."""
    signal.signal(signal.SIGTERM, _end)
    # What the workers run is imported here, by the launcher: a pool forks its launcher
    # before it imports its own modules, and each process loads its share on its own core.
    from plait.backends._worker import die_with, fork_worker

    imports_done()  # before any worker is forked: it starts with the collector on

    die_with(driver, signal.SIGTERM)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in the driver's terminal is the driver's
    become_subreaper()
    control = socket.socket(fileno=control_fd)
    workers: set[int] = set()
    try:
        while True:
            message, fds, _, _ = socket.recv_fds(control, _REQUEST.size, 1)
            if not message:
                return  # the driver is done, or gone
            op, number = _REQUEST.unpack(message + recv_exactly(control, _REQUEST.size - len(message)))
            reply = _fork(fork_worker, fds[0], control, workers) if op == b"f" else _reap(number, workers)
            control.sendall(_REPLY.pack(reply))
    except (OSError, EOFError):
        return  # the driver is gone
    finally:
        _end()


def imports_done() -> None:
    """What this process has imported lives as long as it does: the collector (off while a
    pool or a launcher imports, see ``_python.python_starting``) never looks at it again, and
    is on for what comes next. Frozen before a fork, it is not written to in the children either."""
    gc.freeze()
    gc.enable()


def _end(*_: object) -> NoReturn:
    """Kill every process under this one, and exit: on the driver's hang-up, or its death
    (SIGTERM). Run from the signal handler too, it never returns into what it interrupted,
    so a cleanup it cuts short is started again, not abandoned."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    end_descendants(_END_WITHIN)
    os._exit(0)


def _fork(
    fork: Callable[[socket.socket, list[socket.socket]], int], fd: int, control: socket.socket, workers: set[int]
) -> int:
    with socket.socket(fileno=fd) as worker_end:
        pid = fork(worker_end, [control])
    workers.add(pid)
    return pid


def _reap(pid: int, workers: set[int]) -> int:
    """Worker ``pid``'s wait status (-1 if not ours), once it has ended and what its tasks
    left running in its session is killed; and the orphans its end left us."""
    workers.discard(pid)
    try:
        # Ended but not reaped, its pid still names its session: killing by it is safe here,
        # and only here (the driver cannot know when the reap below has freed the pid).
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
        kill_tree(pid)
        return os.waitpid(pid, 0)[1]
    except ChildProcessError:  # not ours, or reaped already
        return -1
    finally:
        reap_orphans(workers)
