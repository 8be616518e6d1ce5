"""Apps for the ZMQExecutor tests, in a module so that workers import them by name."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import psutil
import zmq

from plait import File, ZMQExecutor, app, shell
from plait.backends.zmq._curve import configure_client, read_keys

FAST = {"heartbeat_period": 0.2, "heartbeat_threshold": 1.5}


@app
def inc(x: int) -> int:
    return x + 1


@app
def total(*xs: int) -> int:
    return sum(xs)


@app
def fail(message: str) -> int:
    raise ValueError(message)


@app(pure=False)
def nap(seconds: float, x: int = 0) -> int:
    time.sleep(seconds)
    return x


@app(pure=False)
def where(seconds: float, x: int, directory: str) -> int:
    """Leave this worker's pid in ``directory`` (so a test can kill it), then nap."""
    Path(directory, f"{x}-{os.getpid()}").touch()
    time.sleep(seconds)
    return x


@app(cache=False)
def big(size: int) -> bytes:
    """A result of ``size`` bytes."""
    return bytes(size)


@app(cache=False)
def length(data: bytes) -> int:
    return len(data)


@app(timeout=0.5)
def stuck(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def keyed_dealer(context: zmq.Context[zmq.Socket[bytes]], executor: ZMQExecutor) -> zmq.Socket[bytes]:
    """A raw socket connected to ``executor`` with the run's keys: a pool the test writes by hand."""
    socket = context.socket(zmq.DEALER)
    socket.linger = 0
    if executor.key_file is not None:
        configure_client(socket, read_keys(executor.key_file))
    socket.connect(executor.url)
    return socket


def workers_of(pool: psutil.Process) -> list[psutil.Process]:
    """A pool's worker processes: the children of its launcher, the pool's one child."""
    (launcher,) = pool.children()
    return launcher.children()


class Unspeakable(Exception):
    """An exception that can be neither pickled nor printed."""

    def __reduce__(self) -> Any:
        raise TypeError("no pickling")

    def __str__(self) -> str:
        raise TypeError("no printing")


@app
def unspeakable() -> int:
    raise Unspeakable()


@app(pure=False)
def blob(size: int) -> bytes:
    return b"x" * size


@app(pure=False)  # what it returns depends on where it runs
def host_of(seconds: float, x: int) -> tuple[str, int]:
    """The name of the test host this runs on, from its private /tmp (see .ci/hosts-up), and
    ``x``; it leaves /tmp/plait-task-X there when it starts."""
    Path(f"/tmp/plait-task-{x}").touch()
    time.sleep(seconds)
    return Path("/tmp/plait-host").read_text().strip(), x


@shell(outputs=["out"])
def shout(src: File, out: File) -> str:
    """Upper-cases ``src`` into ``out`` and signs it with the host it ran on."""
    return f"tr a-z A-Z < {src} > {out} && cat /tmp/plait-host >> {out}"
