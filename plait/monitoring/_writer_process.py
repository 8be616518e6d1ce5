"""The run's writer: a process of its own, fed batches over a pipe.

SQLite costs the driver 2 to 4 µs a row, and a writer thread would take the GIL from the
runtime's loop thread for the part sqlite3 does in Python (binding 14 values a row); the
driver only encodes a batch (``marshal``, about 0.15 µs a row: both ends are the same
interpreter, and the writer need not import an encoder) and writes it to the pipe.

The writer is the driver's child, reading its stdin: a frame is a 4-byte length and a
marshalled ``Batch``, each written in one transaction; an empty frame says the run is
over (index the tables, stamp its end, exit). The end of its stdin without one means
its driver is gone (killed, say): it keeps what it has written and exits, so it never
outlives the driver. The pipe is anonymous, in the driver's own process tree. When
writing fails, the writer says why on its stderr and exits with 1; the driver learns of
it when its next write finds the pipe closed, or at close.
"""

from __future__ import annotations

import marshal
import os
import sqlite3
import struct
import sys
import weakref

from plait.monitoring._writer import write_run

# Not typing's (the writer process would import it: 10-20 ms of CPU), and as true to mypy.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import IO

    from plait.monitoring._writer import Batch

__all__ = ["WriterFailed", "WriterProcess", "serve"]

# The writer imports the driver's own plait, wherever it came from, and of it only its own
# modules: ``plait`` and ``plait.monitoring`` are bare packages there, without what their
# ``__init__`` imports (typing, plait's lazy names: half the writer's start).
_MAIN = """
import os, sys
for name in ("plait", "plait.monitoring"):
    package = sys.modules[name] = type(sys)(name)
    package.__path__ = [os.path.join(sys.argv[3], *name.split(".")[1:])]
from plait.monitoring._writer_process import serve
serve(sys.argv[1], int(sys.argv[2]))
"""
_LENGTH = struct.Struct("!I")
_PLAIT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class WriterFailed(Exception):
    """The writer process could not write (its reason), or ended without being asked."""


class WriterProcess:
    """The driver's handle on the writer of run ``run`` in the db at ``path``, started at once;
    WriterFailed if it cannot be."""

    def __init__(self, path: str, run: int) -> None:
        import subprocess  # here: the writer process imports this module, and needs none of it

        try:
            self.process = subprocess.Popen(
                # -S: it needs only the standard library and plait, and starts some 20 ms sooner without site.
                # -P: nothing from the driver's current directory, which others may write (as every
                # Python plait starts: plait/backends/_python.py).
                [sys.executable, "-P", "-S", "-c", _MAIN, path, str(run), _PLAIT],
                stdin=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,  # a Ctrl-C in the driver's terminal is the driver's; it ends the run
            )
        except OSError as error:
            raise WriterFailed(f"cannot start the writer process: {error}") from error
        assert self.process.stdin is not None
        self._pipe: IO[bytes] = self.process.stdin
        _started.add(self)

    def _let_go(self) -> None:
        """In a fork of the driver: point this process's copies of the writer's pipes at
        /dev/null. Not closed: a copy of the buffered pipe flushed at the child's exit would
        write into whatever file took the descriptor's number."""
        devnull = os.open(os.devnull, os.O_RDWR)
        try:
            for stream in (self.process.stdin, self.process.stderr):
                if stream is not None and not stream.closed:
                    os.dup2(devnull, stream.fileno())
        finally:
            os.close(devnull)

    def send(self, batch: Batch) -> None:
        """Hand ``batch`` over (written within moments); WriterFailed if the writer has ended."""
        try:
            payload = marshal.dumps(batch)
        except ValueError as error:  # a value of a type of its own, say a subclass of str
            raise WriterFailed(f"a row holds what cannot be written: {error}") from None
        self._frame(payload)

    def close(self) -> None:
        """Tell the writer the run is over and wait until it has written all; WriterFailed
        if it could not."""
        self._frame(b"")
        self._pipe.close()
        if self.process.wait() != 0:
            raise self._failure()

    def _frame(self, payload: bytes) -> None:
        try:
            self._pipe.write(_LENGTH.pack(len(payload)))
            self._pipe.write(payload)  # not joined to its length: the last batch of a big run may be 100 MB
            self._pipe.flush()
        except (BrokenPipeError, ValueError):  # ValueError: a closed pipe
            raise self._failure() from None

    def _failure(self) -> WriterFailed:
        """Why the writer ended (it has, or is about to: it closed its end of the pipe)."""
        import contextlib  # here, as signal below

        with contextlib.suppress(BrokenPipeError):
            self._pipe.close()  # what is left in its buffer has nowhere to go
        assert self.process.stderr is not None
        said = self.process.stderr.read().decode(errors="replace").strip()
        code = self.process.wait()
        self.process.stderr.close()
        if said:
            return WriterFailed(said.splitlines()[-1])
        return WriterFailed(f"the writer process ended ({_how(code)})")


# A fork of the driver (a user's os.fork(), multiprocessing's default start method on Linux)
# copies its end of each writer's pipe: while the child lived, a driver killed with SIGKILL
# would leave its writer waiting for the end of a pipe the child still held open.
_started: weakref.WeakSet[WriterProcess] = weakref.WeakSet()


def _let_go_in_child() -> None:
    for writer in list(_started):
        writer._let_go()


os.register_at_fork(after_in_child=_let_go_in_child)


def _how(code: int) -> str:
    """
    >>> _how(-9), _how(3)
    ('killed by SIGKILL', 'exit code 3')
    """
    import signal  # here: the driver's, when its writer failed; the writer's start need not import enum

    return f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"


def serve(path: str, run: int) -> None:
    """The writer process: write each batch from stdin into run ``run`` of ``path``."""
    try:
        write_run(path, run, _batches(sys.stdin.buffer))
    except _DriverGone:
        pass  # what it had handed over is written
    except sqlite3.Error as error:
        sys.stderr.write(f"{error}\n")
        sys.exit(1)
    # The db is closed and nothing is buffered: no interpreter teardown (some 5 ms of its
    # CPU) for the driver's close to wait for.
    os._exit(0)


class _DriverGone(Exception):
    """The pipe ended before the frame that ends the run: its driver is gone."""


def _batches(pipe: IO[bytes]) -> Iterator[Batch]:
    """The batches on ``pipe``, up to the empty frame that ends the run; _DriverGone at the
    pipe's end before it (a frame cut short by it too)."""
    while True:
        head = pipe.read(_LENGTH.size)
        if len(head) < _LENGTH.size:
            raise _DriverGone
        (length,) = _LENGTH.unpack(head)
        payload = pipe.read(length)
        if len(payload) < length:
            raise _DriverGone
        if not payload:
            return
        yield marshal.loads(payload)
