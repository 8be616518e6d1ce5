"""Foundation throughput: plait's ProcessExecutor against a bare process pool and Parsl.

Workload A of ../shared/notes/peers.md: 5000 no-op tasks submitted at once, tasks/s from the
first submit (for plait: from building the graph) to the last result; each system with 2
workers, each measurement in a fresh process, median of --rounds. Then the interpreter's own
overhead: a gather of 100 000 pure -> map pairs on a runtime that runs no task at all.

Run: ``python bench/foundation.py [--tasks 5000] [--rounds 3]``. Goals (issue 2): plait >= 0.7x
the bare pool and >= 5x Parsl's thread pool.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable


def noop(x: int) -> int:
    return x


def inc(x: int) -> int:
    return x + 1


def plait_processes(n: int) -> float:
    import plait as pl

    app = pl.app(noop)
    with pl.Runtime([pl.ProcessExecutor(2)]) as rt:
        rt.run(app(-1))  # workers up and the function shipped before the clock starts
        started = time.perf_counter()
        result = rt.run(pl.traverse(app, range(n)))
        elapsed = time.perf_counter() - started
    assert result == list(range(n))
    return n / elapsed


def process_pool(n: int) -> float:
    import concurrent.futures

    with concurrent.futures.ProcessPoolExecutor(2) as pool:
        pool.submit(noop, -1).result()
        started = time.perf_counter()
        futures = [pool.submit(noop, i) for i in range(n)]
        result = [f.result() for f in futures]
        elapsed = time.perf_counter() - started
    assert result == list(range(n))
    return n / elapsed


def parsl_threads(n: int) -> float:
    import tempfile

    import parsl
    from parsl.config import Config
    from parsl.executors.threads import ThreadPoolExecutor

    app = parsl.python_app(noop)
    with tempfile.TemporaryDirectory() as run_dir:
        parsl.load(Config(executors=[ThreadPoolExecutor(max_threads=2)], run_dir=run_dir, strategy="none"))
        try:
            app(-1).result()
            started = time.perf_counter()
            futures = [app(i) for i in range(n)]
            result = [f.result() for f in futures]
            elapsed = time.perf_counter() - started
        finally:
            parsl.dfk().cleanup()
    assert result == list(range(n))
    return n / elapsed


def interpreter_nodes(n: int) -> float:
    import plait as pl

    with pl.Runtime([pl.ThreadExecutor(1)]) as rt:
        started = time.perf_counter()
        result = rt.run(pl.gather([pl.pure(i).map(inc) for i in range(n)]))
        elapsed = time.perf_counter() - started
    assert result[-1] == n
    return (2 * n + 1) / elapsed


SYSTEMS: dict[str, tuple[Callable[[int], float], str]] = {
    "plait ProcessExecutor(2)": (plait_processes, "tasks/s"),
    "ProcessPoolExecutor(2)": (process_pool, "tasks/s"),
    "Parsl ThreadPoolExecutor(2)": (parsl_threads, "tasks/s"),
}


def measure_in_fresh_process(name: str, n: int) -> float:
    out = subprocess.run(
        [sys.executable, __file__, "--one", name, "--tasks", str(n)], capture_output=True, text=True, check=True
    )
    return float(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--nodes", type=int, default=100_000)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        fn = interpreter_nodes if args.one == "interpreter" else SYSTEMS[args.one][0]
        print(json.dumps(fn(args.nodes if args.one == "interpreter" else args.tasks)))
        return
    medians = {}
    for name in SYSTEMS:
        runs = [measure_in_fresh_process(name, args.tasks) for _ in range(args.rounds)]
        medians[name] = statistics.median(runs)
        print(f"{name:30s} {medians[name]:9.0f} tasks/s   (runs: {', '.join(f'{r:.0f}' for r in runs)})")
    ours = medians["plait ProcessExecutor(2)"]
    print(f"\nplait / ProcessPoolExecutor(2) = {ours / medians['ProcessPoolExecutor(2)']:.2f}x   (goal >= 0.7x)")
    print(f"plait / Parsl ThreadPoolExecutor(2) = {ours / medians['Parsl ThreadPoolExecutor(2)']:.2f}x   (goal >= 5x)")
    nodes = [measure_in_fresh_process("interpreter", args.tasks) for _ in range(args.rounds)]
    print(
        f"\ninterpreter overhead: {statistics.median(nodes):.0f} nodes/s "
        f"(gather of {args.nodes} pure -> map pairs, no tasks)"
    )


if __name__ == "__main__":
    main()
