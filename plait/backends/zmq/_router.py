"""The ZMQExecutor's ROUTER socket on an asyncio loop: bound, read in bursts, sent whole.

It knows frames and peers' identities, not what the messages mean: each whole message
goes to ``handle``; one over ``max_message_bytes`` goes to ``too_big``; ``read`` is called
after each burst of reading that handled messages, once they are handled. Nothing a peer
sends, however malformed, escapes ``receive`` to stop the loop.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import cast

import zmq

from plait.backends.zmq._curve import Keys, configure_server
from plait.backends.zmq._frames import WIRE_BYTES, Frames, MessageTooBig, frames_of, join, split
from plait.backends.zmq._protocol import ProtocolError

__all__ = ["Router"]

log = logging.getLogger("plait.zmq")

# How many messages one turn of the loop reads before letting other work run.
_READ_BURST = 256
# Drops are logged once per peer, for this many peers: a flood from many identities
# costs neither a flood of log lines nor a set that grows with it.
_LOGGED_PEERS = 64
# zmq's flags as plain ints: pyzmq's send_multipart ors its enums anew for every frame,
# about 1 us each, and a batch has a frame per task.
_NOBLOCK = int(zmq.NOBLOCK)
_POLLIN, _EVENTS = int(zmq.POLLIN), int(zmq.EVENTS)

Handler = Callable[[bytes, list[bytes]], None]  # a peer's identity, and its message's frames


class Router:
    """A ROUTER socket that reads on ``loop``, logging each drop once per peer."""

    def __init__(
        self,
        label: str,
        max_message_bytes: int,
        handle: Handler,
        too_big: Callable[[bytes, str], None],
        read: Callable[[], None],
    ):
        self.label = label
        self.max_message_bytes = max_message_bytes
        self._handle, self._too_big, self._read = handle, too_big, read
        self.dropped = 0  # messages that were not ours, or not from a registered pool
        self._dropped_from: set[bytes] = set()  # the peers whose drops have been logged
        self._context: zmq.Context[zmq.Socket[bytes]] | None = None
        self._socket: zmq.Socket[bytes] | None = None
        self._frames: Frames | None = None  # the socket's, through its Cython calls
        # The socket's get(), typed once for ZMQ_EVENTS (a typing.cast each time is a call).
        self._events: Callable[[int], int] = lambda option: 0
        self._authenticator: object | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.local_directory: Path | None = None  # the unix socket's, made by bind_local

    def bind(self, loop: asyncio.AbstractEventLoop, host: str, port: int, threshold: float, keys: Keys | None) -> int:
        """Bind on ``host`` (``port`` 0: a free one), breaking a link silent for ``threshold``
        seconds; returns the port."""
        self._loop, self._context = loop, zmq.Context()
        sock = self._socket = self._context.socket(zmq.ROUTER)
        self._frames = frames_of(sock)
        self._events = cast(Callable[[int], int], sock.get)
        sock.linger = 0
        sock.router_mandatory = True  # a send to a vanished pool raises, never vanishes silently
        # zmq holds a frame whole before the handshake can fail: a stranger gets this much, no more.
        sock.maxmsgsize = WIRE_BYTES
        # Credit bounds what is queued per pool; the marks only have to exceed it.
        sock.sndhwm = sock.rcvhwm = 100_000
        # ZMTP heartbeats, answered by zmq's own thread even while this loop is busy:
        # they keep a pool's link alive through long turns of the loop, and break a dead one.
        # Twice a threshold is enough for that (any traffic resets the pool's TTL, and our
        # own heartbeats go every period): each ping and pong is a CurveZMQ box and two
        # system calls per pool, and with a thousand pools they were half the I/O thread's work.
        sock.heartbeat_ivl = int(threshold * 500)
        sock.heartbeat_timeout = sock.heartbeat_ttl = int(threshold * 1000)
        if keys is not None:
            self._authenticator = configure_server(self._context, sock, keys)
        if port:
            sock.bind(f"tcp://{host}:{port}")
        else:
            port = sock.bind_to_random_port(f"tcp://{host}")
        loop.add_reader(cast(int, sock.getsockopt(zmq.FD)), self._on_readable)
        return port

    def bind_local(self) -> str | None:
        """Also bind a unix socket, for pools on this host, in a new directory only this
        user can enter; its address, or None where its path would be too long for one.

        Another user cannot connect to it at all, and a peer that can is held to the same
        CurveZMQ handshake as on TCP (the socket's options cover every address it binds).
        A round trip through it skips the kernel's TCP path on both sides.
        """
        assert self._socket is not None, "bind_local before bind"
        directory = Path(tempfile.mkdtemp(prefix="plait-zmq-"))  # mode 0700
        address = f"ipc://{directory / 'executor'}"
        try:
            self._socket.bind(address)
        except zmq.ZMQError as error:  # a path too long for a unix socket's address
            log.debug("%s: pools on this host connect over TCP: %s: %s", self.label, address, error)
            directory.rmdir()
            return None
        self.local_directory = directory
        return address

    def close(self) -> None:
        if self._socket is not None and self._loop is not None:
            self._loop.remove_reader(cast(int, self._socket.getsockopt(zmq.FD)))
            self._socket.close(linger=0)
        if self.local_directory is not None:
            shutil.rmtree(self.local_directory, ignore_errors=True)
        if self._authenticator is not None:
            self._authenticator.stop()  # type: ignore[attr-defined]
        if self._context is not None:
            self._context.term()

    def send(self, identity: bytes, frames: list[bytes]) -> bool:
        """Queue a message to ``identity``; whether it could be (not: the peer is gone)."""
        assert self._frames is not None, "send before bind"
        try:  # a send fails on its first frame, or not at all: zmq queues a message whole
            self._frames.send([identity, *split(frames)], _NOBLOCK)
        except zmq.ZMQError as error:  # gone (EHOSTUNREACH) or not reading for far too long (EAGAIN)
            log.warning("%s: could not send to pool (peer %s): %s", self.label, identity.hex(), error)
            return False
        return True

    def drop(self, identity: bytes, reason: str) -> None:
        # A flood of garbage must not become a flood of log lines: a peer's first, then a count.
        self.dropped += 1
        first = identity not in self._dropped_from and len(self._dropped_from) < _LOGGED_PEERS
        if first:
            self._dropped_from.add(identity)
        if first or self.dropped % 1000 == 0:
            peer, count = identity.hex(), self.dropped
            log.warning("%s: dropped a message from peer %s (%d so far): %s", self.label, peer, count, reason)

    def read_soon(self) -> None:
        # The socket's fd is edge-triggered: after a send, messages may wait unannounced.
        if self._socket is not None and self._events(_EVENTS) & _POLLIN and self._loop:
            self._loop.call_soon(self._on_readable)

    def receive_all(self) -> None:
        """Handle every message waiting now."""
        handled = 0
        while (count := self._read_burst()) == _READ_BURST:
            handled += count
        if handled + count:
            self._read()

    def _on_readable(self) -> None:
        try:  # _read_burst's, without its call: once a result message
            count = self._receive(_READ_BURST)
        except BaseException:
            self._read()
            raise
        if count:
            self._read()
        if count == _READ_BURST:  # more may wait, and the fd will not say so again
            self.read_soon()

    def _read_burst(self) -> int:
        """``_receive``; should it raise, what it handled is still told (``read``) first."""
        try:
            return self._receive(_READ_BURST)
        except BaseException:
            self._read()
            raise

    def _receive(self, limit: int) -> int:
        """Handle up to ``limit`` waiting messages; how many there were."""
        sock, frames_of_socket, events = self._socket, self._frames, self._events
        if sock is None or sock.closed or frames_of_socket is None:
            return 0
        for count in range(limit):
            # After a first message, ask whether another waits (~1.5 µs) rather than find out
            # by a receive that raises zmq.Again (~3.6 µs): a round trip's burst is one message.
            if count == 1 and not events(_EVENTS) & _POLLIN:
                return 1
            try:
                identity, *frames = frames_of_socket.receive()
            except zmq.Again:
                return count
            try:
                whole = join(frames, self.max_message_bytes)
            except MessageTooBig as error:
                self._too_big(identity, str(error))
                continue
            except ProtocolError as error:
                self.drop(identity, str(error))
                continue
            try:
                self._handle(identity, whole)
            except Exception as error:  # a message we failed to foresee must not stop the loop or the ticker
                log.debug("%s: handling a message raised", self.label, exc_info=True)
                self.drop(identity, f"handling it raised {type(error).__name__}: {error!s:.200}")
        return limit
