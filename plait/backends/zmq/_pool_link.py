"""A pool's link to its executor: the DEALER socket, registration, heartbeats, and knowing
when the executor is gone.

The link is watched through ZMTP heartbeats (the executor's socket pings twice a threshold
and asks us to drop the link after the threshold without traffic): zmq's threads keep it
up while the driver's loop is busy, and it breaks within the threshold when the driver
dies, freezes or the network parts. A pool pins the executor's Curve key: a peer at the
executor's address that fails the handshake is not this run's executor, and the pool
leaves rather than wait for another process to take over the address.
"""

from __future__ import annotations

import logging
import os
import struct
import time
import types
from collections.abc import Callable
from typing import Any, cast

import zmq
from zmq.backend import Socket as CythonSocket

from plait._version import __version__
from plait.backends.zmq._curve import configure_client
from plait.backends.zmq._frames import WIRE_BYTES, frames_of, join, split
from plait.backends.zmq._protocol import (
    PROTOCOL_VERSION,
    Accept,
    Message,
    ProtocolError,
    Register,
    ResultRow,
    Results,
    decode,
    encode,
    python_version,
)

__all__ = ["ExecutorLink"]

log = logging.getLogger("plait.zmq.pool")

# How long a pool waits for the executor to accept it before giving up.
_REGISTER_TIMEOUT = 60.0
# A driver whose link is up but whose loop sends nothing for this many thresholds is hung.
_SILENCE_THRESHOLDS = 10
# A peer at the executor's address that fails the handshake is not this run's executor
# (a pool pins its server key): whoever it is, the pool leaves rather than wait for it.
_HANDSHAKE_FAILED = (
    zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_AUTH
)
_LINK_EVENTS = zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_DISCONNECTED | _HANDSHAKE_FAILED
_RESULTS_PER_MESSAGE = 1024
_EVENT = struct.Struct("=H")
# pyzmq's flags as plain ints: its enums make each ``|`` and ``&`` a Python call, several a task.
_EVENTS, _POLLIN = int(zmq.EVENTS), int(zmq.POLLIN)


class ExecutorLink:
    """Pool ``pool_id``'s DEALER to the executor at ``url``, polled by ``poller``; in the
    clear without ``keys`` (to an executor made with ``encrypted=False``)."""

    def __init__(self, url: str, pool_id: str, keys: dict[str, bytes] | None, poller: zmq.Poller) -> None:
        self.url = url
        self.pool_id = pool_id
        self.accepted = False
        self.max_message_bytes: int | None = None  # the biggest frame the executor takes, from its accept
        self.heartbeat_period = 1.0
        self.threshold = _REGISTER_TIMEOUT / _SILENCE_THRESHOLDS  # until the executor says
        self.next_heartbeat = 0.0
        self.context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self.dealer = self.context.socket(zmq.DEALER)
        self.dealer.linger = 1000  # long enough to deliver the last results of a drain
        self.dealer.maxmsgsize = WIRE_BYTES  # what a peer failing the handshake can make us hold
        if keys is not None:
            configure_client(self.dealer, keys)
        self._frames = frames_of(self.dealer)
        # The Cython socket's own ``get``: pyzmq's turns EVENTS into an enum (two calls) each time.
        self._option: Callable[[int], Any] = types.MethodType(CythonSocket.get, self.dealer)
        self.monitor = self.dealer.get_monitor_socket(_LINK_EVENTS)
        self.link_down_since: float | None = None
        # The monitor is polled by its descriptor, not as a zmq socket: each zmq socket in
        # the poller costs every turn of the pool two system calls more (its state is asked
        # before and after the wait), for events that come a few times a run. The
        # descriptor signals that the monitor has news after a read found it had none: so
        # only ``watch`` reads it, always until nothing is left, and once now, before
        # there can be an event (zmq signals no first message to a reader that never read).
        self.monitor_fd = cast(int, self.monitor.getsockopt(zmq.FD))
        self.watch()
        self.dealer.connect(url)
        poller.register(self.dealer, zmq.POLLIN)
        poller.register(self.monitor_fd, zmq.POLLIN)
        self.last_heard = time.monotonic()

    def register(self, host: str, capacity: int) -> None:
        self.send(
            encode(
                Register(
                    protocol=PROTOCOL_VERSION,
                    plait=__version__,
                    python=python_version(),
                    capacity=capacity,
                    host=host,
                    pool=self.pool_id,
                    pid=os.getpid(),
                )
            )
        )

    def accept(self, accept: Accept) -> None:
        """Keep to the heartbeats and message size the executor's ``accept`` says."""
        self.accepted = True
        self.heartbeat_period = accept.heartbeat_period
        self.threshold = accept.heartbeat_threshold
        self.max_message_bytes = accept.max_message_bytes or None

    def send(self, frames: list[bytes]) -> None:
        self._frames.send(split(frames), 0)

    def messages(self) -> list[tuple[Message, bytes]]:
        """The executor's messages waiting now, each with its payload; malformed ones are dropped.

        Asked only when the poller has seen one waiting (it looks at the socket's state,
        not its edge-triggered descriptor): the first is read without asking again.
        """
        option = self._option
        received: list[tuple[Message, bytes]] = []
        while True:
            try:
                message, payload = decode(join(self._frames.receive()))
            except zmq.Again:  # none after all: never wait here, whoever asked
                return received
            except ProtocolError as error:
                log.warning("pool %s: dropped a message from the executor: %s", self.pool_id, error)
            else:
                self.last_heard = time.monotonic()
                received.append((message, payload))
            # Asked, not tried: a receive that finds nothing raises zmq.Again, ~10 us of every task.
            if not option(_EVENTS) & _POLLIN:
                return received

    def watch(self) -> bool:
        """Follow the link's events; whether the peer at the executor's address failed the handshake."""
        while True:
            try:
                # A monitor event's first frame: its id (16 bits), then a value (32 bits). Read here,
                # not by zmq.utils.monitor, which imports asyncio: ~15 ms of every pool's start-up.
                (event,) = _EVENT.unpack_from(self.monitor.recv_multipart(zmq.NOBLOCK)[0])
            except zmq.Again:
                return False
            if event == zmq.EVENT_DISCONNECTED and self.link_down_since is None:
                self.link_down_since = time.monotonic()
            elif event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self.link_down_since = None
            elif event & _HANDSHAKE_FAILED:
                log.error("pool %s: the peer at %s is not this run's executor; exiting", self.pool_id, self.url)
                return True

    def send_results(self, results: list[tuple[ResultRow, bytes]]) -> None:
        """Send ``results`` (and empty the list), as many to a message as the executor takes."""
        if len(results) == 1:  # a lone result, as at every round trip: it fits on its own
            ((row, value),) = results
            results.clear()
            self._frames.send(split(encode(Results([row]), [value])), 0)  # ``send``'s, a call fewer a round trip
            return
        while results:
            count = self._results_per_message(results)
            chunk = results[:count]
            del results[:count]
            self.send(encode(Results([row for row, _ in chunk]), [p for _, p in chunk]))

    def _results_per_message(self, results: list[tuple[ResultRow, bytes]]) -> int:
        """How many of ``results`` to send next in one message: at most _RESULTS_PER_MESSAGE,
        and no more than fit the executor's ``max_message_bytes`` (each one does, on its own)."""
        limit = self.max_message_bytes
        if limit is None:
            return _RESULTS_PER_MESSAGE
        count, size = 0, 0
        for row, _ in results[:_RESULTS_PER_MESSAGE]:
            size += row.size
            if count and size > limit:
                break
            count += 1
        return count

    def heartbeat_due(self, now: float) -> bool:
        """Whether a heartbeat is to go now (once accepted: one every period); it is counted as sent."""
        if not self.accepted or now < self.next_heartbeat:
            return False
        self.next_heartbeat = now + self.heartbeat_period
        return True

    def gone(self, now: float) -> str:
        """Why we think the executor is gone, or "" while we do not."""
        if not self.accepted and now - self.last_heard > _REGISTER_TIMEOUT:
            return f"the executor at {self.url} did not accept us within {_REGISTER_TIMEOUT} s"
        if self.link_down_since is not None and now - self.link_down_since > self.threshold:
            return f"the link to the executor at {self.url} has been down for {now - self.link_down_since:.1f} s"
        if now - self.last_heard > _SILENCE_THRESHOLDS * self.threshold:
            return f"the executor at {self.url} has sent nothing for {now - self.last_heard:.1f} s"
        return ""

    def due(self) -> list[float]:
        """When the link next needs looking at: to see whether the executor is gone, or to heartbeat."""
        due = [self.last_heard + min(_REGISTER_TIMEOUT, _SILENCE_THRESHOLDS * self.threshold)]
        if self.link_down_since is not None:
            due.append(self.link_down_since + self.threshold)
        if self.accepted:
            due.append(self.next_heartbeat)
        return due

    def close(self) -> None:
        self.dealer.disable_monitor()
        self.monitor.close()
        self.dealer.close()
        self.context.term()
