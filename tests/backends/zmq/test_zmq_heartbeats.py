"""The ZMTP heartbeats under the executor's own, counted on the wire: each ping and its pong
are a CurveZMQ box and system calls per pool on both ends, so the executor's socket pings
twice a threshold (what keeps a link up while the driver's loop is busy), not every period."""

from __future__ import annotations

import socket
import struct
import time

import plait as pl
from tests.backends.zmq.zmq_apps import FAST

GREETING = b"\xff" + bytes(8) + b"\x7f" + b"\x03\x00" + b"NULL".ljust(20, b"\x00") + bytes(32)


def command(body: bytes) -> bytes:
    return b"\x04" + bytes([len(body)]) + body


def frame(raw: socket.socket) -> tuple[int, bytes]:
    """The next ZMTP 3.0 frame: its flags and body."""
    flags, size = read(raw, 2)
    if flags & 0x02:  # a long frame: 8 bytes of size
        (size,) = struct.unpack(">Q", bytes([size]) + read(raw, 7))
    return flags, read(raw, size)


def read(raw: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = raw.recv(count - len(data))
        assert chunk, "the executor hung up"
        data += chunk
    return data


def pings_within(port: int, seconds: float) -> int:
    """Connect as a DEALER speaking ZMTP by hand, answer every ping, and count them."""
    ready = b"\x05READY" + b"\x0bSocket-Type" + struct.pack(">I", 6) + b"DEALER"
    with socket.create_connection(("127.0.0.1", port), timeout=seconds) as raw:
        raw.sendall(GREETING)
        read(raw, 64)
        raw.sendall(command(ready))
        assert frame(raw)[1].startswith(b"\x05READY")
        pings, deadline = 0, time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            raw.settimeout(left)
            try:
                flags, body = frame(raw)
            except TimeoutError:
                break
            if flags & 0x04 and body.startswith(b"\x04PING"):
                pings += 1
                raw.sendall(command(b"\x04PONG" + body[7:]))  # after the ping's TTL: its context
    return pings


def test_the_executor_pings_a_link_twice_a_threshold_not_every_period() -> None:
    nothing = pl.LocalProvider(init_blocks=0, max_blocks=0)
    executor = pl.ZMQExecutor(provider=nothing, encrypted=False, **FAST)  # ZMTP in the clear, to count
    with pl.Runtime([executor], progress=False):
        window = 1.1 * FAST["heartbeat_threshold"]
        pings = pings_within(executor.port, window)  # one every period (0.2 s) would be 8
        assert 1 <= pings <= 3, f"{pings} pings in {window:.2f} s"
