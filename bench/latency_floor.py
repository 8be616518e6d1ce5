"""B and C's floor on this machine: a plait ZMQ round trip's threads, processes and sockets,
with none of plait's code on them, side by side with plait's B and C in one sitting.

A plait round trip (B: a sequential ``rt.run(noop(i))``) goes from the caller's thread to
the runtime's asyncio loop thread, out of a CurveZMQ ROUTER over a unix socket (as a pool on
the driver's host connects) to a pool's DEALER (each side's ZeroMQ I/O thread on the way),
from the pool over a socket pair to a forked worker, and back the same way. The floor makes
the same hops and does nothing at each: the caller hands a ``concurrent.futures.Future`` to
the loop with ``call_soon_threadsafe``, the loop sends 60 bytes, the pool relays them to its
worker and back, the loop sets the future. C's floor is a chain: the loop sends the next
link as it reads the last one's answer.

What plait adds to a round trip is its B less the floor; what no code of plait's can take
off is the floor. A third floor has each worker hold its own CurveZMQ link (no pool between):
what that redesign could take off at most. Each round runs the floor (with and without CurveZMQ) and plait's
``bench/latency.py --child`` in fresh processes, alternating, and prints medians with every
value and plait's ratio to the floor.

Run: ``python bench/latency_floor.py [--rounds 5] [--trips 2000] [--chain 500]``.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import zmq

from plait.backends._worker import die_with

HERE = Path(__file__).resolve().parent
_PAYLOAD = b"x" * 60  # about a no-op's pickled call


def worker(sock: socket.socket) -> None:
    """Echo what the pool writes until it hangs up."""
    while data := sock.recv(1 << 16):
        sock.sendall(data)
    os._exit(0)


def _dealer(url: str) -> zmq.Socket[bytes]:
    """A DEALER connected to the driver at ``url``, which it has told it is ready; keys,
    when given, come on stdin."""
    die_with(os.getppid())  # never outlive the bench; its worker sees the socket pair close
    keys = sys.stdin.buffer.read().split()
    dealer = zmq.Context().socket(zmq.DEALER)
    if keys:
        dealer.curve_serverkey, dealer.curve_publickey, dealer.curve_secretkey = keys
    dealer.connect(url)
    dealer.send(b"ready")
    return dealer


def direct(url: str) -> None:
    """A worker that holds its own link: it echoes the driver's messages itself."""
    dealer = _dealer(url)
    while (message := dealer.recv()) != b"bye":
        dealer.send(message)
    os._exit(0)


def pool(url: str) -> None:
    """Relay the driver's messages to a forked worker and its answers back, as a pool does:
    one poller over the DEALER and the worker's socket."""
    ours, theirs = socket.socketpair()
    if os.fork() == 0:  # before any zmq: a forked child must not touch its parent's context
        ours.close()
        worker(theirs)
    theirs.close()
    dealer = _dealer(url)
    poller = zmq.Poller()
    poller.register(dealer, zmq.POLLIN)
    poller.register(ours.fileno(), zmq.POLLIN)
    while True:
        for target, _ in poller.poll():
            if target is dealer:
                while dealer.getsockopt(zmq.EVENTS) & zmq.POLLIN:
                    message = dealer.recv()
                    if message == b"bye":
                        ours.close()  # its worker sees the end and exits
                        os._exit(0)
                    ours.sendall(message)
            else:
                dealer.send(ours.recv(1 << 16))


class Driver:
    """A ROUTER read by an asyncio loop on its own thread; one pool behind it (or, ``direct``,
    one worker with its own link)."""

    def __init__(self, curve: bool, direct: bool = False) -> None:
        self.router = zmq.Context().socket(zmq.ROUTER)
        keys = b""
        if curve:
            server_public, server_secret = zmq.curve_keypair()
            client_public, client_secret = zmq.curve_keypair()
            self.router.curve_server = True
            self.router.curve_publickey, self.router.curve_secretkey = server_public, server_secret
            keys = b" ".join([server_public, client_public, client_secret])
        self.directory = tempfile.mkdtemp(prefix="floor-")
        url = f"ipc://{self.directory}/driver"
        self.router.bind(url)
        self.pool = subprocess.Popen(
            [sys.executable, "-P", __file__, "--direct" if direct else "--pool", url],
            stdin=subprocess.PIPE,
        )
        assert self.pool.stdin is not None
        self.pool.stdin.write(keys)
        self.pool.stdin.close()
        if not self.router.poll(30_000):
            self.pool.kill()
            raise RuntimeError(f"the floor's pool did not start (exit code {self.pool.wait()})")
        self.peer, _ = self.router.recv_multipart()
        self.waiting: list[tuple[concurrent.futures.Future[int], int]] = []  # (future, links left)
        self.loop = asyncio.new_event_loop()
        self.loop.add_reader(self.router.getsockopt(zmq.FD), self._read)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def _send(self, future: concurrent.futures.Future[int], links: int) -> None:
        self.waiting.append((future, links))
        self.router.send_multipart([self.peer, _PAYLOAD])
        self._read()  # a send may take the descriptor's edge: look, as every zmq reader must

    def _read(self) -> None:
        while self.router.getsockopt(zmq.EVENTS) & zmq.POLLIN:
            self.router.recv_multipart()
            future, links = self.waiting.pop(0)
            if links > 1:
                self._send(future, links - 1)  # C: the next link leaves as this one's answer is read
            else:
                future.set_result(0)

    def trip(self, links: int = 1) -> None:
        future: concurrent.futures.Future[int] = concurrent.futures.Future()
        self.loop.call_soon_threadsafe(self._send, future, links)
        future.result()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.router.send_multipart, [self.peer, b"bye"])
        self.pool.wait(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        shutil.rmtree(self.directory)


def floor(trips: int, chain: int, curve: bool, direct: bool) -> dict[str, float]:
    driver = Driver(curve, direct)
    try:
        for _ in range(300):
            driver.trip()
        times = []
        for _ in range(trips):
            started = time.perf_counter()
            driver.trip()
            times.append(time.perf_counter() - started)
        started = time.perf_counter()
        driver.trip(chain)
        return {"B_median_ms": statistics.median(times) * 1000, "C_s": time.perf_counter() - started}
    finally:
        driver.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--trips", type=int, default=2000)
    parser.add_argument("--chain", type=int, default=500)
    parser.add_argument("--pool", help=argparse.SUPPRESS)
    parser.add_argument("--direct", help=argparse.SUPPRESS)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--floor", choices=["curve", "clear", "direct"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.pool:
        pool(args.pool)
    if args.direct:
        direct(args.direct)
    if args.floor:
        print(json.dumps(floor(args.trips, args.chain, args.floor != "clear", args.floor == "direct")))
        return
    from _trees import child_figures  # here: the floor's pool runs with -P, without this directory on its path

    sizes = ["--trips", str(args.trips), "--chain", str(args.chain)]
    kinds = {
        "floor, CurveZMQ": (str(HERE / "latency_floor.py"), ["--floor", "curve", *sizes]),
        "floor, in the clear": (str(HERE / "latency_floor.py"), ["--floor", "clear", *sizes]),
        "floor, workers' own links": (str(HERE / "latency_floor.py"), ["--floor", "direct", *sizes]),
        "plait (ZMQExecutor, CurveZMQ)": (str(HERE / "latency.py"), sizes),
    }
    rounds: dict[str, list[dict[str, float]]] = {kind: [] for kind in kinds}
    for _ in range(args.rounds):
        for kind, (script, argv) in kinds.items():
            rounds[kind].append(child_figures(script, str(HERE.parent), argv))
    figures = ("B_median_ms", "C_s")
    medians = {kind: {k: statistics.median(r[k] for r in runs) for k in figures} for kind, runs in rounds.items()}
    print(f"{args.rounds} rounds, load average {os.getloadavg()[0]:.1f} at the end")
    for kind, runs in rounds.items():
        b = ", ".join(f"{r['B_median_ms']:.3f}" for r in runs)
        c = ", ".join(f"{r['C_s']:.3f}" for r in runs)
        print(f"{kind:32} B {medians[kind]['B_median_ms']:.3f} ms ({b})   C {medians[kind]['C_s']:.3f} s ({c})")
    plait, base = medians["plait (ZMQExecutor, CurveZMQ)"], medians["floor, CurveZMQ"]
    b, c = plait["B_median_ms"], plait["C_s"]
    print(f"plait / floor (CurveZMQ): B {b / base['B_median_ms']:.2f}x, C {c / base['C_s']:.2f}x")
    link = (c - base["C_s"]) / args.chain * 1e6
    print(f"plait adds {b - base['B_median_ms']:.3f} ms a round trip and {link:.0f} us a link of C")


if __name__ == "__main__":
    main()
