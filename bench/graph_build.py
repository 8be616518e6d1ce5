"""Graph build cost: Expr construction and key hashing, with nothing run.

Builds ``pl.traverse(app, range(n))`` (n Call nodes, each keyed by hashing the app's
identity and its argument, then one Gather keyed over all of them) and a chain of n
dependent calls (each key hashes its input's key), --rounds times each, and prints the
best and median nodes/s, per second of wall time and per second of CPU time
(the latter is steadier when other work shares the cores). The goal (issue 9) is >= 200 000 nodes/s for the traverse.

Run: ``python bench/graph_build.py [--n 1000000] [--rounds 3] [--profile]``.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
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
    args = parser.parse_args()
    if args.profile:
        profile = cProfile.Profile()
        profile.runcall(traverse, args.n)
        pstats.Stats(profile).sort_stats("tottime").print_stats(15)
        return
    for name, build in [("traverse", traverse), ("chain", chain)]:
        walls, cpus = zip(*(rates(build, args.n) for _ in range(args.rounds)), strict=True)
        print(
            f"{name:<8} {args.n:>9,} nodes: median {statistics.median(walls):9,.0f} nodes/s, "
            f"best {max(walls):9,.0f}; per CPU second: median {statistics.median(cpus):9,.0f}, best {max(cpus):9,.0f}"
        )


if __name__ == "__main__":
    main()
