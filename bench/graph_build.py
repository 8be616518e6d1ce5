"""Graph build cost: Expr construction and key hashing, with nothing run; Dask's beside it.

Builds ``pl.traverse(app, range(n))`` (n Call nodes, each keyed by hashing the app's
identity and its argument, then one Gather keyed over all of them) and a chain of n
dependent calls (each key hashes its input's key), --rounds times each, and prints the
best and median nodes/s, per second of wall time and per second of CPU time
(the latter is steadier when other work shares the cores). The peer, in the same
process and alternating with plait's when Dask is installed: n ``dask.delayed`` calls
(``delayed(noop, pure=True)(i)``, each keyed by tokenizing its function and argument).
It has no gather: ``delayed(list)`` over them, and a chain of delayed calls, take
time quadratic in n in Dask (each merges its inputs' graphs), so they are left out.
The goal (issue 19) is >= 300 000 nodes/s for the traverse.

Run: ``python bench/graph_build.py [--n 1000000] [--rounds 3] [--no-dask] [--profile]``.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import importlib.util
import pstats
import statistics
import time
from collections.abc import Callable
from typing import Any

import plait as pl


@pl.app
def noop(x: int) -> int:
    return x


def traverse(n: int) -> Any:
    return pl.traverse(noop, range(n))


def chain(n: int) -> Any:
    expr = noop(0)
    for _ in range(n - 1):
        expr = noop(expr)
    return expr


def dask_calls(n: int) -> Any:
    from dask import delayed

    call = delayed(_dask_noop, pure=True)
    return [call(i) for i in range(n)]


def _dask_noop(x: int) -> int:
    return x


def rates(build: Callable[[int], Any], n: int) -> tuple[float, float]:
    """Nodes per second of wall time and of this process's CPU time (steadier on a busy machine)."""
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    graph = build(n)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    del graph
    return n / wall, n / cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="cProfile one traverse build")
    parser.add_argument("--no-dask", action="store_true", help="plait only")
    args = parser.parse_args()
    if args.profile:
        profile = cProfile.Profile()
        profile.runcall(traverse, args.n)
        pstats.Stats(profile).sort_stats("tottime").print_stats(15)
        return
    shapes = {"plait traverse": traverse, "plait chain": chain}
    if not args.no_dask and importlib.util.find_spec("dask") is not None:
        dask_calls(1)  # its imports, outside the clock
        shapes["dask delayed calls"] = dask_calls
    measured: dict[str, list[tuple[float, float]]] = {name: [] for name in shapes}
    for _ in range(args.rounds):  # shapes alternate within a round: the same moment's load for each
        for name, build in shapes.items():
            measured[name].append(rates(build, args.n))
    for name, runs in measured.items():
        walls, cpus = zip(*runs, strict=True)
        print(
            f"{name:<18} {args.n:>9,} nodes: median {statistics.median(walls):9,.0f} nodes/s,"
            f" best {max(walls):9,.0f}; per CPU second: median {statistics.median(cpus):9,.0f}, best {max(cpus):9,.0f}"
        )


if __name__ == "__main__":
    main()
