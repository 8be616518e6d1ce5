"""What a task and its result are between processes: typed records, one field order everywhere.

A worker (``_worker``) receives ``Task`` records and sends back ``Result`` records, whoever
drives it: ProcessExecutor and a zmq pool over a socket pair, the Dask and Ray executors
through their engines, BatchExecutor through files. The zmq wire's rows
(``zmq._protocol.TaskRow`` and ``ResultRow``) have the same fields in the same order, with
each payload replaced by its size in the message's payload frame.

Over a socket pair, the driver sends a worker ``Start`` once, then ``Run``, ``Skip`` and at
last ``Stop`` messages; the worker answers with lists of results, the first one empty (it
has started). Each message is msgpack behind a length (``frame``): a record encodes and
decodes as fast as a pickled tuple, and is what it says.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Final

import msgspec

__all__ = [
    "HEADER",
    "Control",
    "Result",
    "Run",
    "Skip",
    "Start",
    "Stop",
    "Task",
    "frame",
    "read_control",
    "read_results",
    "results_frame",
]

HEADER = struct.Struct("<I")


class _Record(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """Fields in order, as a msgpack array."""


class Task(_Record, frozen=True):
    """A task for a worker: its function comes along (``fn``) only if the worker may lack it."""

    task_id: int
    name: str
    fn_key: bytes
    timeout: float | None
    fn: bytes | None  # the pickled function
    call: bytes  # the pickled (args, kwargs)


class Result(_Record, frozen=True):
    """What a worker did with a task: its pickled value (``ok``) or exception with its
    traceback, when it ran, and what it used (both None when not measured)."""

    task_id: int
    ok: bool
    started: float
    ended: float
    cpu_seconds: float | None
    peak_rss: int | None
    value: bytes


class Start(_Record, frozen=True, tag="start"):
    sys_path: list[str]  # the driver's: the worker imports as it does


class Run(_Record, frozen=True, tag="run"):
    tasks: list[Task]


class Skip(_Record, frozen=True, tag="skip"):
    ids: list[int]  # tasks it holds, cancelled before they started: each ends as cancelled, unrun


class Stop(_Record, frozen=True, tag="stop"):
    pass


Control = Start | Run | Skip | Stop
_encode: Final = msgspec.msgpack.Encoder().encode
_control: Final = msgspec.msgpack.Decoder(Control)
_results: Final = msgspec.msgpack.Decoder(list[Result])


def frame(message: Control) -> bytes:
    """``message`` encoded behind its length, for a byte stream.

    >>> read_control(frame(Skip([1, 2]))[HEADER.size :])
    Skip(ids=[1, 2])
    """
    data = _encode(message)
    return HEADER.pack(len(data)) + data


def results_frame(results: list[Result]) -> bytes:
    """A batch of results behind its length."""
    data = _encode(results)
    return HEADER.pack(len(data)) + data


# The decoders' own ``decode``: a function around each would be a call more for every
# task a worker reads and every result its pool reads.
read_control: Final[Callable[[bytes | bytearray | memoryview], Control]] = _control.decode
"""A message from the driver, without its length."""

read_results: Final[Callable[[bytes | bytearray | memoryview], list[Result]]] = _results.decode
"""A batch of results from a worker, without its length."""
