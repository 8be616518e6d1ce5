"""What CurveZMQ costs plait's ZMQExecutor: the same run with and without it, side by side.

Both run 2 local workers. Each round starts a fresh process per mode, alternating the
modes, and measures (see ``_workloads.py``):

- startup: import + configuration + executor start -> first result (s);
- A: 5000 no-op tasks submitted at once, tasks/s from the first submit to the last result;
- B: 200 sequential submit -> result round trips, median and p99 (ms);
- C: a chain of 500 dependent tasks f(f(...f(0))), submitted at once (s).

It prints the median over rounds of each figure and the cost of Curve: how many times
slower the encrypted run is (1.05 is 5 % slower). The machine is shared: runs vary by
tens of percent, so compare only within one run, over several rounds.

Run: ``python bench/zmq_curve.py [--rounds 5]``.
"""

from __future__ import annotations

import time

T0 = time.perf_counter()  # before importing plait: start-up counts the import

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _workloads as wl  # noqa: E402

MODES = {"curve": "plait-zmq", "clear": "plait-zmq-clear"}
SIZES = wl.Sizes(d=1)  # D is not about the link: one task, and not reported


def child(mode: str) -> wl.Figures:
    with wl.SYSTEMS[MODES[mode]]() as driver:
        figures = wl.measure(driver, T0, SIZES)
    figures.pop("D_s")
    return figures


def run_child(mode: str) -> wl.Figures:
    # Workers import the task functions from bench/_workloads.py by name.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")]))}
    argv = [sys.executable, __file__, "--child", mode]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=900, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{mode} run failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def table(results: dict[str, list[wl.Figures]]) -> str:
    curve, clear = wl.medians(results["curve"]), wl.medians(results["clear"])
    lines = ["| figure | curve | clear | curve costs |", "|---|---|---|---|"]
    for key in curve:
        cost = 1 / wl.speedup(key, curve[key], clear[key])
        lines.append(f"| {key} | {curve[key]:.3g} | {clear[key]:.3g} | {cost:.2f}x |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--child", choices=sorted(MODES), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child)))
        return
    results = wl.alternate(args.rounds, list(MODES), run_child)
    print()
    print(table(results))


if __name__ == "__main__":
    main()
