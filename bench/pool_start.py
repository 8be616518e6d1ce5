"""A pool's start alone, for trees side by side: ``Popen`` → Register, and → the first result.

Start-up as ``bench/startup.py`` measures it is the driver's imports, then the pool's
start, then the first task; on a shared machine the driver's part hides a change in the
pool's. Here a bare ROUTER stands for the executor (in the clear): it starts the pool each
tree's own ``pool_command`` gives, accepts it, sends one task (``abs(-1)``) with the accept,
and times the Register and the result; then the CPU the pool process used to that point,
and the pool with its launcher and workers. Each round runs every tree once, alternating.

Run: ``python bench/pool_start.py --tree before=DIR --tree after=DIR [--rounds 20]``
(the protocol of the tree this script is run from must be the trees' own).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

import psutil
import zmq
from _trees import alternate, show, trees_of

from plait.backends.zmq._protocol import Accept, Register, Results, Shutdown, TaskRow, Tasks, decode, encode


def command_of(tree: Path, url: str) -> tuple[list[str], dict[str, str]]:
    """The argv the tree's executor would start a pool of 2 workers with, and its environment."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    show = (
        "import json, sys; from plait.backends.zmq._blocks import pool_command"
        "; print(json.dumps(pool_command(sys.argv[1], 'p', 2)))"
    )
    done = subprocess.run([sys.executable, "-c", show, url], env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout), env


def one_start(tree: Path, context: zmq.Context[zmq.Socket[bytes]]) -> dict[str, float]:
    router = context.socket(zmq.ROUTER)
    port = router.bind_to_random_port("tcp://127.0.0.1")
    argv, env = command_of(tree, f"tcp://127.0.0.1:{port}")
    started = time.perf_counter()
    pool = subprocess.Popen(argv, env=env)
    try:
        identity, *frames = router.recv_multipart()
        registered = time.perf_counter()
        assert isinstance(decode(frames)[0], Register)
        fn, call = pickle.dumps(abs), pickle.dumps(((-1,), {}))
        accept = Accept(1.0, 5.0, sys.path, usage_interval=5.0, max_message_bytes=0)
        router.send_multipart([identity, *encode(accept)])
        router.send_multipart(
            [identity, *encode(Tasks([TaskRow(1, "abs", b"k", None, len(fn), len(call))]), [fn + call])]
        )
        while not isinstance(decode(router.recv_multipart()[1:])[0], Results):
            pass
        done = time.perf_counter()
        process = psutil.Process(pool.pid)
        pool_cpu = sum(process.cpu_times()[:2])
        all_cpu = pool_cpu + sum(sum(child.cpu_times()[:2]) for child in process.children(recursive=True))
        router.send_multipart([identity, *encode(Shutdown())])
        pool.wait(10)
    finally:
        if pool.poll() is None:
            pool.kill()
            pool.wait()
        router.close(0)
    return {
        "register_ms": (registered - started) * 1000,
        "first_result_ms": (done - started) * 1000,
        "pool_cpu_ms": pool_cpu * 1000,
        "all_cpu_ms": all_cpu * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", action="append", required=True, help="NAME=PATH of a plait checkout (repeatable)")
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    trees = {name: Path(path).resolve() for name, path in trees_of(args.tree).items()}
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    runs = alternate(trees, args.rounds, lambda tree: one_start(tree, context))
    context.term()
    show(runs, ".0f")


if __name__ == "__main__":
    main()
