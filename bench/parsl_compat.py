"""The same Parsl script on Parsl and on plait's compatibility layer, side by side in one run.

The script is bench/_workloads.py's Parsl driver: ``parsl.load(Config(...))``, ``@python_app``
and ``future.result()``, imported once from ``parsl`` and once from ``plait.compat.parsl``
(the only difference). Each round starts a fresh process per system, alternating them, on
2 workers: ``ThreadPoolExecutor(max_threads=2)``, or ``HighThroughputExecutor`` with 2 local
workers (plait's ZMQExecutor under the layer). Figures (see bench/_workloads.py):
startup, A (no-op tasks/s), B (round trip ms), C (chain of 500), D (2000 x 1 ms + reduce),
and seed: the seed session's 500-dart estimate of pi, launched at once (s).

It prints the median over rounds and the ratio compat / Parsl (how many times better).
The machine is shared: compare only within one run.

Run: ``python bench/parsl_compat.py [--rounds 3] [--executor threads|htex|both]``.
"""

from __future__ import annotations

import time

T0 = time.perf_counter()  # before any import of the system under test: start-up counts them

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _workloads as wl  # noqa: E402

SMALL = wl.Sizes(a=2000, b=200, c=500, d=2000, e=2000)


def child(system: str) -> wl.Figures:
    with wl.SYSTEMS[system]() as driver:
        figures = wl.measure(driver, T0, SMALL)
        dart, total = driver.wrap(wl.inside), driver.wrap(wl.total)
        started = time.perf_counter()
        darts = [dart(random.random(), random.random()) for _ in range(500)]
        pi = driver.gather([total(*darts)])[0] / len(darts)
        figures["seed_s"] = time.perf_counter() - started
        assert 2.5 < pi < 3.8, pi
        return figures


def run_child(system: str) -> wl.Figures:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run(
        [sys.executable, __file__, "--child", system], env=env, capture_output=True, text=True, timeout=900, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{system} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def table(results: dict[str, list[wl.Figures]], executor: str) -> str:
    ours, theirs = wl.medians(results[f"compat-{executor}"]), wl.medians(results[f"parsl-{executor}"])
    lines = [f"| {executor} | Parsl | plait.compat.parsl | compat vs Parsl |", "|---|---|---|---|"]
    for key in theirs:
        ratio = wl.speedup(key, ours[key], theirs[key])
        lines.append(f"| {key} | {theirs[key]:.3g} | {ours[key]:.3g} | {ratio:.1f}x |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--executor", choices=["threads", "htex", "both"], default="both")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child)))
        return
    executors = ["threads", "htex"] if args.executor == "both" else [args.executor]
    systems = [f"{side}-{e}" for e in executors for side in ("parsl", "compat")]
    results: dict[str, list[wl.Figures]] = {s: [] for s in systems}
    for number in range(args.rounds):
        for system in systems:
            results[system].append(figures := run_child(system))
            print(f"round {number + 1} {system}: " + ", ".join(f"{k}={v:.3g}" for k, v in figures.items()), flush=True)
    for executor in executors:
        print()
        print(table(results, executor))


if __name__ == "__main__":
    main()
