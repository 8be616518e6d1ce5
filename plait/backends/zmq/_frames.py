"""Frames of at most FRAME_BYTES on the wire: a bigger one travels in pieces, behind a table.

ZeroMQ reads a frame whole before anyone can look at it, even from a peer that has not
finished its handshake, up to the socket's ``ZMQ_MAXMSGSIZE``. With that cap at 1 GiB, a
process without the run's keys could make the driver hold a gigabyte per connection
before the handshake failed. So both ends cap every frame at FRAME_BYTES, and a message
with a bigger frame (a large result, a large argument) is sent as a *table* frame — a
msgpack array ``["pieces", [n1, n2, ...]]``, tagged with a name no message has, so it
can never pass for an envelope — then the pieces, n1 for the first frame, n2 for the
second, and so on.
``join`` puts them back. Only peers that passed the handshake get that far.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Final

import msgspec
import zmq
from zmq.backend import Socket as CythonSocket

from plait.backends.zmq._protocol import ProtocolError

__all__ = ["FRAME_BYTES", "WIRE_BYTES", "Frames", "MessageTooBig", "frames_of", "join", "split"]

FRAME_BYTES = 1 << 20
# The sockets' ZMQ_MAXMSGSIZE: a frame and the CurveZMQ box around it (a MESSAGE command
# with its nonce and MAC, under a hundred bytes), which zmq counts too.
WIRE_BYTES = FRAME_BYTES + 1024


_MORE, _NOBLOCK = int(zmq.SNDMORE), int(zmq.NOBLOCK)
# A frame this small is copied into zmq's own message (pyzmq's default threshold): faster
# than handing zmq a view of it to release later, which is for big frames.
_COPY_BELOW = zmq.COPY_THRESHOLD


class Frames:
    """A zmq socket's messages, frame by frame, through ``send`` and ``recv``: the Cython
    socket's own calls (``frames_of``). pyzmq's Python ``Socket.send`` over them costs
    ~0.45 µs a frame, and its ``recv_multipart`` reads the RCVMORE option after every frame
    (a call and an enum lookup each), where a frame received as a ``zmq.Frame`` says
    ``more`` itself."""

    __slots__ = ("recv", "send_frame")

    def __init__(self, send_frame: Callable[..., Any], recv: Callable[..., Any]) -> None:
        self.send_frame, self.recv = send_frame, recv

    def send(self, frames: Sequence[bytes | memoryview], flags: int) -> None:
        """``frames`` as one message, each sent with ``flags`` (0, or zmq.NOBLOCK)."""
        send, more = self.send_frame, flags | _MORE
        for frame in frames[:-1]:
            send(frame, more, len(frame) < _COPY_BELOW)
        last = frames[-1]
        send(last, flags, len(last) < _COPY_BELOW)

    def receive(self) -> list[bytes]:
        """The next waiting message's frames (zmq.Again if none waits; one that does is here whole)."""
        recv = self.recv
        frame = recv(_NOBLOCK, False)
        frames = [frame.bytes]
        while frame.more:
            frame = recv(_NOBLOCK, False)
            frames.append(frame.bytes)
        return frames


def frames_of(sock: zmq.Socket[bytes]) -> Frames:
    """``sock``'s messages through its Cython calls."""
    return Frames(types.MethodType(CythonSocket.send, sock), types.MethodType(CythonSocket.recv, sock))


class _Table(msgspec.Struct, array_like=True, frozen=True, tag="pieces"):
    counts: list[Annotated[int, msgspec.Meta(ge=1)]]  # how many pieces each frame is in


_table_decoder: Final = msgspec.msgpack.Decoder(_Table)
_TABLE_START: Final = msgspec.msgpack.encode(_Table([]))[:-1]  # the array's head and the tag


class MessageTooBig(ProtocolError):
    """A message whose frames, put back together, are bigger than the receiver allows."""


def split(frames: Sequence[bytes], limit: int = FRAME_BYTES) -> list[bytes | memoryview]:
    """``frames`` as they go on the wire: unchanged when every one fits in ``limit``.

    >>> [bytes(frame) for frame in split([b"envelope", b"abcde"], limit=2)]
    [b'\\x92\\xa6pieces\\x92\\x04\\x03', b'en', b've', b'lo', b'pe', b'ab', b'cd', b'e']
    """
    if max(map(len, frames), default=0) <= limit:  # no generator: each message sent asks
        return list(frames)
    counts: list[int] = []
    pieces: list[bytes | memoryview] = []
    for frame in frames:
        view = memoryview(frame)
        parts = [view[start : start + limit] for start in range(0, len(frame), limit)] or [view]
        counts.append(len(parts))
        pieces += parts
    return [msgspec.msgpack.encode(_Table(counts)), *pieces]


def join(frames: list[bytes], limit: int | None = None) -> list[bytes]:
    """The frames ``split`` made, put back together; MessageTooBig when one is over ``limit``.

    >>> join([bytes(frame) for frame in split([b"envelope", b"abcde"], limit=2)])
    [b'envelope', b'abcde']
    >>> join([b"\\x92\\xa6pieces\\x92\\x01\\x05", b"x"])
    Traceback (most recent call last):
    ...
    plait.backends.zmq._protocol.ProtocolError: a table of 6 pieces before 1 frames
    """
    if not frames or not frames[0].startswith(_TABLE_START):
        return frames
    counts = _table(frames[0])
    if sum(counts) != len(frames) - 1:
        raise ProtocolError(f"a table of {sum(counts)} pieces before {len(frames) - 1} frames")
    whole, start = [], 1
    for count in counts:
        size = sum(len(piece) for piece in frames[start : start + count])
        if limit is not None and size > limit:
            raise MessageTooBig(f"a frame of {size} bytes, more than max_message_bytes={limit}")
        whole.append(b"".join(frames[start : start + count]))
        start += count
    return whole


def _table(frame: bytes) -> list[int]:
    try:
        return _table_decoder.decode(frame).counts
    except msgspec.DecodeError as error:  # not msgpack, or not a table's shape
        raise ProtocolError(f"a table frame that is not one: {error}") from None
