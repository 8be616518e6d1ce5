"""What the driver's ROUTER socket is asked per message, counted through a real pool: a
frame received says whether more follow (no RCVMORE option read after each), and a frame
is sent by the Cython socket itself, not through pyzmq's Python ``Socket.send``."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest
import zmq

import plait as pl

TRIPS = 40


@pl.app(pure=False)
def noop(x: int) -> int:
    return x


def _on_the_loop() -> bool:
    return threading.current_thread().name == "plait-runtime"


def test_a_round_trip_reads_no_option_but_readiness_and_sends_no_frame_through_python(monkeypatch: Any) -> None:
    options: Counter[int] = Counter()
    python_sends = [0]
    get, send = zmq.Socket.get, zmq.Socket.send

    def counting_get(sock: zmq.Socket[bytes], option: int) -> Any:
        if _on_the_loop():
            options[int(option)] += 1
        return get(sock, option)

    def counting_send(sock: zmq.Socket[bytes], *args: Any, **kwargs: Any) -> Any:
        if _on_the_loop():
            python_sends[0] += 1
        return send(sock, *args, **kwargs)

    monkeypatch.setattr(zmq.Socket, "get", counting_get)
    monkeypatch.setattr(zmq.Socket, "getsockopt", counting_get)
    monkeypatch.setattr(zmq.Socket, "send", counting_send)
    with pl.Runtime([pl.ZMQExecutor(provider=pl.LocalProvider(workers=2))], progress=False) as rt:
        assert rt.run(noop(-1)) == -1  # the pool is up
        options.clear()
        python_sends[0] = 0
        for x in range(TRIPS):
            assert rt.run(noop(x)) == x
        options, sent_through_python = Counter(options), python_sends[0]  # not shutdown's
    # On main: RCVMORE after each of a result's three frames, and three sends through Python.
    assert options[zmq.RCVMORE] == 0, options
    # Readiness: a look after each send (the fd is edge-triggered), and one to end each burst.
    assert options[zmq.EVENTS] <= 2.5 * TRIPS, options
    assert sent_through_python == 0, sent_through_python


@pytest.mark.parametrize("size", [10, 3 << 20])
def test_a_message_round_trips_whole_through_the_router(size: int) -> None:
    """Small frames are copied into zmq's message, big ones lent to it: both arrive whole."""
    import asyncio

    from plait.backends.zmq._frames import join, split
    from plait.backends.zmq._router import Router

    got: list[tuple[bytes, list[bytes]]] = []
    loop = asyncio.new_event_loop()
    router = Router("t", 1 << 30, lambda identity, frames: got.append((identity, frames)), print, lambda: None)
    port = router.bind(loop, "127.0.0.1", 0, 10.0, None)
    peer: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.DEALER)
    try:
        peer.connect(f"tcp://127.0.0.1:{port}")
        envelope, payload = b"e" * 7, bytes(range(256)) * (size // 256 + 1)
        peer.send_multipart(split([envelope, payload]))  # a big frame in pieces, as a pool sends it
        deadline = loop.time() + 10
        while not got and loop.time() < deadline:
            loop.run_until_complete(asyncio.sleep(0.01))
            router.receive_all()
        assert got and got[0][1] == [envelope, payload]
        assert router.send(got[0][0], [envelope, payload])
        assert peer.poll(10_000) and join(peer.recv_multipart()) == [envelope, payload]
    finally:
        peer.close(linger=0)
        router.close()
        loop.close()
