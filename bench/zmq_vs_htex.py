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
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _workloads as wl  # noqa: E402  (the workloads and both systems' set-up, shared with bench/run.py)

Figures = wl.Figures


def child(system: str, profile: str | None) -> Figures:
    with wl.SYSTEMS[system]() as driver:
        return wl.measure(driver, T0, profile=profile if system == "plait-zmq" else None)


# -- the side-by-side run ------------------------------------------------------------------------

CHILDREN = {"plait": "plait-zmq", "htex": "parsl-htex"}
# Issue 19's goals (startup, B and C were 0.5 s, 0.5 ms and 0.25 s before it).
GOALS = {
    "startup_s": "≤ 0.3",
    "A_tasks_per_s": "≥ 10x HTEX",
    "E_eager_tasks_per_s": "≥ 10x HTEX, ≥ 0.8 A",
    "B_median_ms": "≤ 0.3",
    "C_s": "≤ 0.15",
    "D_s": "≤ 1.3",
}


def run_child(system: str, profile: str | None) -> Figures:
    # Workers import the task functions from bench/_workloads.py by name.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")]))}
    argv = [sys.executable, __file__, "--child", system, *(["--profile", profile] if profile else [])]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=900, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{system} run failed ({done.returncode}):\n{done.stderr[-3000:]}")
    if profile:
        print(done.stderr, file=sys.stderr)
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def table(results: dict[str, list[Figures]]) -> str:
    medians = {s: wl.medians(runs) for s, runs in results.items()}
    systems = list(medians)
    lines = ["| figure | " + " | ".join(systems) + (" | plait vs HTEX | goal |" if len(systems) == 2 else " |")]
    lines.append("|---" * (len(systems) + 1 + 2 * (len(systems) == 2)) + "|")
    for key in medians[systems[0]]:
        row = [key, *(f"{medians[s][key]:.3g}" for s in systems)]
        if len(systems) == 2:
            ratio = wl.speedup(key, medians["plait"][key], medians["htex"][key])
            row += [f"{ratio:.1f}x", GOALS.get(key, "")]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", choices=sorted(CHILDREN))
    parser.add_argument("--profile", choices=["A", "B", "C", "D", "E"], help="pyinstrument one plait workload")
    parser.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(CHILDREN[args.child], args.profile)))
        return
    systems = [args.only] if args.only else ["plait", "htex"]
    results = wl.alternate(args.rounds, systems, lambda s: run_child(s, args.profile if s == "plait" else None))
    print()
    print(table(results))


if __name__ == "__main__":
    main()
