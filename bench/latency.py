"""Sequential latency (B) and a dependent chain (C) on plait's ZMQExecutor, for trees side by side.

A change to the round trip is judged by running the tree before it and the tree after it
in one sitting: each round starts a fresh process per tree (``PYTHONPATH`` pointing at
it), alternating, and the medians over rounds are printed with every value. B is
``--trips`` sequential ``rt.run(noop(i))`` round trips: median and p90 (ms), and the CPU
each costs the driver (and of that, the runtime's loop thread) and the pool with its
workers, which the machine's load moves less than wall time. C is a chain of ``--chain``
dependent tasks (s); start-up is import + a Runtime with a ZMQExecutor of 2 local workers
+ the first result (s).

Run: ``python bench/latency.py --tree before=/tmp/old-checkout --tree after=. [--rounds 5]``
(one ``--tree`` measures one tree).
"""

from __future__ import annotations

import time

T0 = time.perf_counter()  # before plait is imported: start-up counts it

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

from _trees import alternate, child_figures, show, trees_of  # noqa: E402
from driver_path import thread_time_on  # noqa: E402

HERE = Path(__file__).resolve().parent


def child(trips: int, chain: int) -> dict[str, float]:
    sys.path.insert(0, str(HERE))
    import _workloads as wl

    import plait as pl

    noop, inc = pl.app(pure=False)(wl.noop), pl.app(pure=False)(wl.inc)
    with pl.Runtime([pl.ZMQExecutor(provider=pl.LocalProvider(workers=2))], progress=False) as rt:
        assert rt.run(noop(-1)) == -1
        figures = {"startup_s": time.perf_counter() - T0}
        times = []
        spent, on_loop = _cpu_seconds(), thread_time_on(rt._loop)
        for i in range(trips):
            started = time.perf_counter()
            assert rt.run(noop(i)) == i
            times.append(time.perf_counter() - started)
        on_loop = thread_time_on(rt._loop) - on_loop
        driver, pools = (after - before for after, before in zip(_cpu_seconds(), spent, strict=True))
        figures["B_driver_cpu_us"], figures["B_pool_cpu_us"] = driver / trips * 1e6, pools / trips * 1e6
        figures["B_loop_cpu_us"] = on_loop / trips * 1e6
        times.sort()
        figures["B_median_ms"] = statistics.median(times) * 1000
        figures["B_p90_ms"] = times[int(0.9 * len(times))] * 1000
        started = time.perf_counter()
        expr = inc(0)
        for _ in range(chain - 1):
            expr = inc(expr)
        assert rt.run(expr) == chain
        figures["C_s"] = time.perf_counter() - started
    return figures


def _cpu_seconds() -> tuple[float, float]:
    """CPU seconds used so far by this process, and by its children (a pool and its workers)."""
    import psutil

    children = psutil.Process().children(recursive=True)
    return time.process_time(), sum(sum(child.cpu_times()[:2]) for child in children)


def run_child(tree: str, trips: int, chain: int) -> dict[str, float]:
    return child_figures(__file__, tree, ["--trips", str(trips), "--chain", str(chain)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", action="append", default=[], help="NAME=PATH of a plait checkout (repeatable)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--trips", type=int, default=300)
    parser.add_argument("--chain", type=int, default=500)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.trips, args.chain)))
        return
    trees = trees_of(args.tree or ["this=."])
    show(alternate(trees, args.rounds, lambda tree: run_child(tree, args.trips, args.chain)))


if __name__ == "__main__":
    main()
