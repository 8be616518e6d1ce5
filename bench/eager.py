"""The seed's eager idiom against the gathered graph, and against Parsl HTEX, side by side.

The seed writes ``fs = [rt.submit(f(x)) for x in xs]`` then ``[f.result() for f in fs]``:
one future at a time. This runs 5 000 no-ops that way and as one gathered graph on
plait's ZMQExecutor (2 local workers), and the same eager loop on Parsl's HTEX (2 local
workers) when Parsl is installed (``pip install -e '.[bench]'``). Each figure is taken in a
fresh process, the systems alternating, and the median of the rounds is printed with the
ratios: eager / gathered (goal >= 0.8) and plait eager / HTEX eager (goal >= 10).

Run: ``python bench/eager.py [--rounds 3] [--n 5000]``. With ``--tree before=/tmp/old-checkout
--tree after=.`` (one or more), plait's trees side by side instead: E, A and E / A of each
round, and the driver's CPU µs a task for each, a fresh process for each, the trees taking
turns (no Parsl).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _workloads as wl  # noqa: E402  (the no-op app and Parsl's set-up, shared with the other benches)
from _trees import alternate, show, trees_of  # noqa: E402


def child(way: str, n: int) -> tuple[float, float]:
    """Tasks/s of ``n`` no-ops run ``way``, and the CPU µs a task this process (the driver) spent."""
    if way == "parsl-eager":
        with wl.parsl_driver("htex") as driver:
            app = driver.wrap(wl.noop)
            assert app(-1).result() == -1
            started, spent = time.perf_counter(), time.process_time()
            futures = [app(i) for i in range(n)]
            assert [f.result() for f in futures] == list(range(n))
            return n / (time.perf_counter() - started), (time.process_time() - spent) * 1e6 / n
    import plait as pl

    noop = pl.app(pure=False)(wl.noop)
    with pl.Runtime([pl.ZMQExecutor(provider=pl.LocalProvider(workers=2))], progress=False) as rt:
        assert rt.run(noop(-1)) == -1
        started, spent = time.perf_counter(), time.process_time()
        if way == "plait-eager":
            futures = [rt.submit(noop(i)) for i in range(n)]
            assert [f.result() for f in futures] == list(range(n))
        else:
            assert rt.run(pl.gather([noop(i) for i in range(n)])) == list(range(n))
        return n / (time.perf_counter() - started), (time.process_time() - spent) * 1e6 / n


def run_child(way: str, n: int, tree: str | None = None) -> tuple[float, float]:
    """``child`` in a fresh process: on the plait of ``tree``, if given."""
    path = [str(Path(tree).resolve())] if tree is not None else [os.environ.get("PYTHONPATH")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), *path]))}
    argv = [sys.executable, __file__, "--child", way, "--n", str(n)]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=900, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{way} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    speed, cpu = json.loads(done.stdout.strip().splitlines()[-1])
    return float(speed), float(cpu)


def eager_and_gathered(tree: str, n: int) -> dict[str, float]:
    """E, A and E / A on the plait of ``tree``, a fresh process each, with the driver's CPU
    a task in each: the load moves it less than the tasks/s."""
    (eager, eager_cpu), (gathered, gathered_cpu) = (run_child(w, n, tree) for w in ("plait-eager", "plait-gathered"))
    return {
        "E_tasks_per_s": eager,
        "A_tasks_per_s": gathered,
        "E_over_A": eager / gathered,
        "E_driver_cpu_us": eager_cpu,
        "A_driver_cpu_us": gathered_cpu,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--tree", action="append", default=[], help="NAME=PATH of a plait checkout (repeatable)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.n)))
        return
    if args.tree:  # plait's trees side by side, without Parsl
        show(alternate(trees_of(args.tree), args.rounds, lambda tree: eager_and_gathered(tree, args.n)))
        return
    ways = ["plait-eager", "plait-gathered"]
    if importlib.util.find_spec("parsl") is not None:
        ways.append("parsl-eager")
    runs: dict[str, list[float]] = {way: [] for way in ways}
    for _ in range(args.rounds):
        for way in ways:
            runs[way].append(run_child(way, args.n)[0])
    median = {way: statistics.median(values) for way, values in runs.items()}
    for way in ways:
        print(f"{way:15} {median[way]:>10,.0f} tasks/s  (rounds: {', '.join(f'{v:,.0f}' for v in runs[way])})")
    print(f"eager / gathered      {median['plait-eager'] / median['plait-gathered']:.2f}  (goal >= 0.8)")
    if "parsl-eager" in median:
        print(f"plait / HTEX, eager   {median['plait-eager'] / median['parsl-eager']:.1f}x  (goal >= 10)")


if __name__ == "__main__":
    main()
