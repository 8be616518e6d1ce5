"""Start-up to first result on a ZMQExecutor (2 local workers), and where it goes.

Each round is a fresh process that imports plait, starts a Runtime with a ZMQExecutor,
and runs one no-op; it reports the whole and its parts: importing the DSL (and defining
the app), importing and starting the runtime and executor, the pool's start until it has
registered (its Python, its imports, the CurveZMQ handshake), and the first task; and
the CPU the driver process used to its first result (its interpreter's start included):
steadier than the wall time when other work shares the cores.

Run: ``python bench/startup.py [--rounds 7]``; ``--tree before=DIR --tree after=DIR``
compares checkouts side by side, alternating, a fresh process each.
"""

from __future__ import annotations

import time

T0 = time.perf_counter()  # before any import of plait: start-up counts them

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

from _trees import alternate, show, trees_of  # noqa: E402

HERE = Path(__file__).resolve().parent


def child() -> dict[str, float]:
    import plait as pl

    sys.path.insert(0, str(HERE))
    import _workloads as wl

    noop = pl.app(pure=False)(wl.noop)
    dsl = time.perf_counter()
    executor = pl.ZMQExecutor(provider=pl.LocalProvider(workers=2))
    with pl.Runtime([executor], progress=False) as rt:
        runtime = time.perf_counter()
        while not executor.pools:
            time.sleep(0.0005)
        pool = time.perf_counter()
        assert rt.run(noop(-1)) == -1
        done, cpu = time.perf_counter(), time.process_time()
    return {
        "dsl": dsl - T0,
        "runtime": runtime - dsl,
        "pool": pool - runtime,
        "first_task": done - pool,
        "total": done - T0,
        "driver_cpu": cpu,
    }


def run_child(tree: str | None) -> dict[str, float]:
    """One fresh process's parts, importing plait from ``tree`` (None: as this one does)."""
    path = [str(HERE), *([str(Path(tree).resolve())] if tree else []), os.environ.get("PYTHONPATH")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, path))}
    done = subprocess.run(
        [sys.executable, __file__, "--child"], env=env, capture_output=True, text=True, timeout=120, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--tree", action="append", default=[], help="NAME=PATH of a plait checkout (repeatable)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child()))
        return
    trees: dict[str, str | None] = {**trees_of(args.tree)} or {"this": None}
    show(alternate(trees, args.rounds, run_child), ".3f")


if __name__ == "__main__":
    main()
