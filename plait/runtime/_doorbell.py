"""Waking the runtime's loop from the threads that submit to it: a byte on a pipe of its own.

asyncio's ``call_soon_threadsafe`` makes a Handle per call and writes to the loop's
self-pipe, which the loop then reads until a read fails: a second ``recv`` system call
and a ``BlockingIOError`` raised and caught at every wake-up, on the loop thread of each
round trip. A doorbell is read once per wake-up: whatever bytes wait, in one ``read``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

__all__ = ["Doorbell"]

_PENDING_BYTES = 4096  # more than rings can pile up: the runtime rings only into an empty inbox


class Doorbell:
    """Calls ``answer`` on ``loop`` after ``ring`` (from any thread); rings that come
    before it answers are answered together. Made and closed while the loop is not running."""

    def __init__(self, loop: asyncio.AbstractEventLoop, answer: Callable[[], None]) -> None:
        self._loop, self._answer = loop, answer
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._read_fd, False)
        os.set_blocking(self._write_fd, False)
        loop.add_reader(self._read_fd, self._answered)

    def ring(self) -> None:
        """Wake the loop: the caller must not ring a closed doorbell (the runtime rings under
        the lock it closes it under)."""
        try:  # noqa: SIM105  # not contextlib.suppress: three calls of Python a submission
            os.write(self._write_fd, b"\0")
        except BlockingIOError:  # full: the loop has a wake-up waiting anyway
            pass

    def close(self) -> None:
        self._loop.remove_reader(self._read_fd)
        os.close(self._read_fd)
        os.close(self._write_fd)

    def _answered(self) -> None:
        os.read(self._read_fd, _PENDING_BYTES)
        self._answer()
