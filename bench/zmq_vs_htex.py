"""plait's ZMQExecutor against Parsl's HighThroughputExecutor, side by side in one run.

Both run 2 local workers. Each round starts a fresh process per system (so start-up
counts imports), alternating the systems, and measures:

- startup: import + configuration + executor start -> first result (s);
- A: 5000 no-op tasks submitted at once, tasks/s from the first submit to the last result;
- B: 200 sequential submit -> result round trips, median and p99 (ms);
- C: a chain of 500 dependent tasks f(f(...f(0))), submitted at once (s);
- D: 2000 tasks sleeping 1 ms each, then one reduce over all their results (s).

It prints the median over rounds of each figure and the ratio plait / HTEX (for A, how
many times more tasks/s; for the others, how many times less time). The machine is
shared: runs vary by tens of percent, so compare only within one run.

Run: ``python bench/zmq_vs_htex.py [--rounds 3] [--only plait|htex] [--profile A]``.
"""

from __future__ import annotations

import time

T0 = time.perf_counter()  # before any import of the system under test: start-up counts them

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

A_TASKS, B_TRIPS, C_CHAIN, D_TASKS = 5000, 200, 500, 2000
Figures = dict[str, float]


def noop(x: int) -> int:
    return x


def inc(x: int) -> int:
    return x + 1


def nap(x: int) -> int:
    import time  # Parsl ships a __main__ function without its module's globals

    time.sleep(0.001)
    return x


def total(*xs: int) -> int:
    return sum(xs)


def timed(run: Callable[[], Any]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def latencies(call: Callable[[int], Any]) -> Figures:
    trips = []
    for i in range(B_TRIPS):
        started = time.perf_counter()
        assert call(i) == i
        trips.append(time.perf_counter() - started)
    trips.sort()
    return {"B_median_ms": statistics.median(trips) * 1000, "B_p99_ms": trips[int(0.99 * len(trips)) - 1] * 1000}


# -- plait --------------------------------------------------------------------------------


def plait_child(profile: str | None) -> Figures:
    import plait as pl

    p_noop, p_inc, p_nap, p_total = (pl.app(cache=False)(f) for f in (noop, inc, nap, total))
    executor = pl.ZMQExecutor(provider=pl.LocalProvider(workers=2))
    with pl.Runtime([executor], progress=False) as rt:
        assert rt.run(p_noop(-1)) == -1
        figures = {"startup_s": time.perf_counter() - T0}

        def a() -> None:
            assert rt.run(pl.gather(*[p_noop(i) for i in range(A_TASKS)])) == list(range(A_TASKS))

        def c() -> None:
            chain = p_inc(0)
            for _ in range(C_CHAIN - 1):
                chain = p_inc(chain)
            assert rt.run(chain) == C_CHAIN

        def d() -> None:
            assert rt.run(p_total(*[p_nap(i) for i in range(D_TASKS)])) == sum(range(D_TASKS))

        with _profiled(profile == "A"):
            figures["A_tasks_per_s"] = A_TASKS / timed(a)
        with _profiled(profile == "B"):
            figures |= latencies(lambda i: rt.run(p_noop(i)))
        with _profiled(profile == "C"):
            figures["C_s"] = timed(c)
        with _profiled(profile == "D"):
            figures["D_s"] = timed(d)
    return figures


class _profiled:
    """pyinstrument around a block, printed to stderr, when ``on``."""

    def __init__(self, on: bool) -> None:
        self.profiler: Any = None
        if on:
            from pyinstrument import Profiler

            self.profiler = Profiler(interval=0.0005, async_mode="disabled")

    def __enter__(self) -> None:
        if self.profiler is not None:
            self.profiler.start()

    def __exit__(self, *exc: object) -> None:
        if self.profiler is not None:
            self.profiler.stop()
            print(self.profiler.output_text(unicode=True, color=False), file=sys.stderr)


# -- Parsl HTEX ------------------------------------------------------------------------------


def htex_child(profile: str | None) -> Figures:
    import parsl
    from parsl.config import Config
    from parsl.executors import HighThroughputExecutor
    from parsl.providers import LocalProvider

    run_dir = tempfile.mkdtemp(prefix="parsl-bench-")
    htex = HighThroughputExecutor(
        address="127.0.0.1",
        max_workers_per_node=2,
        cores_per_worker=1,
        provider=LocalProvider(init_blocks=1, min_blocks=1, max_blocks=1),
    )
    parsl.load(Config(executors=[htex], strategy="none", run_dir=run_dir))
    try:
        h_noop, h_inc, h_nap, h_total = (parsl.python_app(f) for f in (noop, inc, nap, total))
        assert h_noop(-1).result() == -1
        figures = {"startup_s": time.perf_counter() - T0}

        def a() -> None:
            futures = [h_noop(i) for i in range(A_TASKS)]
            assert [f.result() for f in futures] == list(range(A_TASKS))

        def c() -> None:
            chain = h_inc(0)
            for _ in range(C_CHAIN - 1):
                chain = h_inc(chain)
            assert chain.result() == C_CHAIN

        def d() -> None:
            assert h_total(*[h_nap(i) for i in range(D_TASKS)]).result() == sum(range(D_TASKS))

        figures["A_tasks_per_s"] = A_TASKS / timed(a)
        figures |= latencies(lambda i: h_noop(i).result())
        figures["C_s"] = timed(c)
        figures["D_s"] = timed(d)
        return figures
    finally:
        parsl.dfk().cleanup()


# -- the side-by-side run ------------------------------------------------------------------------

CHILDREN = {"plait": plait_child, "htex": htex_child}
GOALS = {"startup_s": 0.5, "B_median_ms": 0.5, "C_s": 0.25, "D_s": 1.3}
HIGHER_IS_BETTER = {"A_tasks_per_s"}


def run_child(system: str, profile: str | None) -> Figures:
    # HTEX starts its interchange and worker pool by name: this venv's bin must be on PATH.
    env = {**os.environ, "PATH": f"{os.path.dirname(sys.executable)}:{os.environ.get('PATH', '')}"}
    argv = [sys.executable, __file__, "--child", system, *(["--profile", profile] if profile else [])]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=900, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{system} run failed ({done.returncode}):\n{done.stderr[-3000:]}")
    if profile:
        print(done.stderr, file=sys.stderr)
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def table(results: dict[str, list[Figures]]) -> str:
    medians = {s: {k: statistics.median(r[k] for r in runs) for k in runs[0]} for s, runs in results.items()}
    systems = list(medians)
    lines = ["| figure | " + " | ".join(systems) + (" | plait vs HTEX | goal |" if len(systems) == 2 else " |")]
    lines.append("|---" * (len(systems) + 1 + 2 * (len(systems) == 2)) + "|")
    for key in medians[systems[0]]:
        row = [key, *(f"{medians[s][key]:.3g}" for s in systems)]
        if len(systems) == 2:
            plait, htex = medians["plait"][key], medians["htex"][key]
            ratio = plait / htex if key in HIGHER_IS_BETTER else htex / plait
            goal = "≥ 10x HTEX" if key == "A_tasks_per_s" else (f"≤ {GOALS[key]}" if key in GOALS else "")
            row += [f"{ratio:.1f}x", goal]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", choices=sorted(CHILDREN))
    parser.add_argument("--profile", choices=["A", "B", "C", "D"], help="pyinstrument one plait workload")
    parser.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(CHILDREN[args.child](args.profile)))
        return
    systems = [args.only] if args.only else ["plait", "htex"]
    results: dict[str, list[Figures]] = {s: [] for s in systems}
    for number in range(args.rounds):
        for system in systems:
            figures = run_child(system, args.profile if system == "plait" else None)
            results[system].append(figures)
            print(f"round {number + 1} {system}: " + ", ".join(f"{k}={v:.3g}" for k, v in figures.items()), flush=True)
    print()
    print(table(results))


if __name__ == "__main__":
    main()
