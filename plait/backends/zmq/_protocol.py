"""The messages between a ZMQExecutor and its worker pools (see docs/protocol.md).

Every message is a typed record (a msgspec ``Struct``, encoded as a msgpack array: its
tag, then its fields in the order written here), in one *envelope* frame, followed by at
most one *payload* frame: the pickled functions, calls or results of its rows, end to
end, each row saying how many bytes of it are its own. Decoding checks the envelope
against these records (type, every field's type and range, the row shapes) and the
payload frame's size against the rows, and never looks inside a payload, so anything a
stranger sends is either a well-formed message or a ``ProtocolError``, never an
unpickled object.
"""

from __future__ import annotations

import platform
from collections.abc import Iterator, Sequence
from typing import Annotated, Final

import msgspec

__all__ = [
    "MAX_ENVELOPE_BYTES",
    "PROTOCOL_VERSION",
    "Accept",
    "Cancel",
    "Drain",
    "Drained",
    "Heartbeat",
    "Message",
    "ProtocolError",
    "Refuse",
    "Register",
    "ResultRow",
    "Results",
    "Shutdown",
    "TaskRow",
    "Tasks",
    "decode",
    "encode",
    "mismatch",
    "pieces",
    "python_version",
]

PROTOCOL_VERSION = 2  # 1: a msgpack map per envelope and a payload frame per function, call or result
# An envelope is small (rows of ids and numbers); anything bigger is an attack or a bug.
MAX_ENVELOPE_BYTES = 1 << 20

# A time in seconds (since the epoch, or a duration): NaN and infinities are refused, as
# arithmetic on them raises later, far from the message that brought them.
Seconds = Annotated[float, msgspec.Meta(ge=0.0, le=1e15)]
Count = Annotated[int, msgspec.Meta(ge=0)]
# A pickle is never empty, so a payload of 0 bytes is one that was not sent.
Size = Annotated[int, msgspec.Meta(ge=1)]


class ProtocolError(ValueError):
    """A message that is not one of ours: it is dropped and logged."""


class _Record(msgspec.Struct, array_like=True, frozen=True, forbid_unknown_fields=True, gc=False):
    """A record on the wire: its fields in order, as a msgpack array."""


class TaskRow(_Record, frozen=True):
    """A task in a ``Tasks`` message; its function (``fn_size`` bytes, 0 when the pool has
    it already) then its call (``call_size`` bytes) are its part of the payload frame."""

    task_id: int
    name: str
    fn_key: bytes
    timeout: Seconds | None
    fn_size: Count
    call_size: Size


class ResultRow(_Record, frozen=True):
    """A result in a ``Results`` message; its pickled value (``ok``) or exception with its
    traceback is the next ``size`` bytes of the payload frame."""

    task_id: int
    ok: bool
    started: Seconds
    ended: Seconds
    cpu_seconds: Seconds | None  # with peak_rss: None when not measured
    peak_rss: Count | None
    size: Size
    worker: str


class Register(_Record, frozen=True, tag="register"):
    protocol: int
    plait: str
    python: str
    capacity: int
    host: str
    pool: str
    pid: int


class Accept(_Record, frozen=True, tag="accept"):
    heartbeat_period: Seconds
    heartbeat_threshold: Seconds
    sys_path: list[str]  # the driver's, for the workers
    usage_interval: Seconds  # between node samples; 0 for none
    max_message_bytes: Count  # a result payload larger than this is sent as a ResultTooLarge failure


class Refuse(_Record, frozen=True, tag="refuse"):
    reason: str


class Tasks(_Record, frozen=True, tag="tasks"):
    tasks: list[TaskRow]


class Results(_Record, frozen=True, tag="results"):
    results: list[ResultRow]


class Cancel(_Record, frozen=True, tag="cancel"):
    ids: list[int]


class Heartbeat(_Record, frozen=True, tag="heartbeat"):
    # From a pool, looks at its node and at its running tasks' workers, for the monitor;
    # ``_sampling`` checks each row (NodeSample.of, TaskSample.of).
    samples: Sequence[Sequence[int | float | None]] = msgspec.field(default_factory=list)
    tasks: Sequence[Sequence[int | float | None]] = msgspec.field(default_factory=list)


class Drain(_Record, frozen=True, tag="drain"):
    pass


class Drained(_Record, frozen=True, tag="drained"):
    pass


class Shutdown(_Record, frozen=True, tag="shutdown"):
    pass


Message = Register | Accept | Refuse | Tasks | Results | Cancel | Heartbeat | Drain | Drained | Shutdown
_encoder: Final = msgspec.msgpack.Encoder()
_decoder: Final = msgspec.msgpack.Decoder(Message)


def encode(message: Message, payloads: Sequence[bytes | memoryview] = ()) -> list[bytes]:
    """The frames of a message: its envelope, and its rows' payloads end to end, if any.

    >>> encode(Heartbeat())
    [b'\\x93\\xa9heartbeat\\x90\\x90']
    >>> decode(encode(Cancel([3, 4])))[0]
    Cancel(ids=[3, 4])
    """
    envelope = _encoder.encode(message)
    return [envelope, b"".join(payloads)] if payloads else [envelope]


def decode(frames: Sequence[bytes]) -> tuple[Message, bytes]:
    """The message in ``frames`` and its payload frame (b"" if none), checked, or a
    ProtocolError saying what is wrong.

    >>> row = ResultRow(1, True, 0.0, 1.0, 0.5, 1024, size=1, worker="w")
    >>> decode(encode(Results([row]), [b"x"]))[1]
    b'x'
    >>> decode([b"\\xc1"])
    Traceback (most recent call last):
    ...
    plait.backends.zmq._protocol.ProtocolError: a malformed envelope: MessagePack data is malformed: ...
    >>> decode(encode(Tasks([TaskRow(1, "f", b"k", None, fn_size=3, call_size=2)])))
    Traceback (most recent call last):
    ...
    plait.backends.zmq._protocol.ProtocolError: a tasks message like this one needs 5 payload bytes, got 0 in 0 frames
    """
    if not frames:
        raise ProtocolError("an empty message")
    envelope = frames[0]
    if len(envelope) > MAX_ENVELOPE_BYTES:
        raise ProtocolError(f"an envelope of {len(envelope)} bytes, more than the {MAX_ENVELOPE_BYTES} allowed")
    try:
        message: Message = _decoder.decode(envelope)
    except msgspec.DecodeError as error:  # not msgpack, or not one of our records (ValidationError)
        raise ProtocolError(f"a malformed envelope: {error!s:.300}") from None
    payload = frames[1] if len(frames) == 2 else b""
    expected = _payload_size(message)
    if len(frames) != 1 + (expected > 0) or len(payload) != expected:
        kind, got = message.__struct_config__.tag, f"{len(payload)} in {len(frames) - 1} frames"
        raise ProtocolError(f"a {kind} message like this one needs {expected} payload bytes, got {got}")
    return message, payload


def _payload_size(message: Message) -> int:
    if type(message) is Tasks:  # what a pool reads: summed in a loop, two calls fewer for every lone task
        size = 0
        for task in message.tasks:
            size += task.fn_size + task.call_size
        return size
    if type(message) is Results:  # what the executor reads, in batches: a comprehension sums them faster
        return sum([row.size for row in message.results])
    return 0


def pieces(payload: bytes, sizes: Iterator[int] | Sequence[int]) -> Iterator[memoryview]:
    """``payload`` cut into consecutive pieces of ``sizes`` bytes (views: nothing is copied).

    >>> [bytes(piece) for piece in pieces(b"abcdef", [1, 0, 2, 3])]
    [b'a', b'', b'bc', b'def']
    """
    view, start, cut = memoryview(payload), 0, []
    for size in sizes:
        cut.append(view[start : start + size])
        start += size
    return iter(cut)  # cut at once: a generator's resumption a piece cost a call a task


def python_version() -> str:
    """``major.minor`` of this Python: pickled code only loads on the same one."""
    return ".".join(platform.python_version_tuple()[:2])


def mismatch(ours: dict[str, str | int], theirs: Register) -> str | None:
    """Why a pool that registered with ``theirs`` cannot work with us, or None if it can.

    >>> pool = Register(protocol=2, plait="0.1", python="3.12", capacity=1, host="h", pool="p", pid=1)
    >>> mismatch({"protocol": 1, "plait": "0.1"}, pool)
    'protocol version 2 in the pool, 1 in the executor'
    >>> mismatch({"protocol": 2}, pool) is None
    True
    """
    problems = [
        f"{name} version {getattr(theirs, name)} in the pool, {value} in the executor"
        for name, value in ours.items()
        if getattr(theirs, name) != value
    ]
    return "; ".join(problems) or None
