"""Checkouts of plait run side by side, for a before/after in one sitting: each round runs
every tree once, alternating, a fresh process each; the medians over rounds are printed
with every value (``bench/startup.py``, ``bench/latency.py``, ``bench/pool_start.py``)."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

Tree = TypeVar("Tree")
Runs = dict[str, list[dict[str, float]]]


def trees_of(specs: Iterable[str]) -> dict[str, str]:
    """``NAME=PATH`` specs (``--tree``), by name."""
    return dict(spec.split("=", 1) for spec in specs)


def child_figures(script: str, tree: str, args: Sequence[str]) -> dict[str, float]:
    """The figures ``script --child *args`` prints last, run in a fresh process that imports
    plait from ``tree``."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(tree).resolve()), str(Path(script).parent)])}
    argv = [sys.executable, script, "--child", *args]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the run on {tree} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def alternate(trees: Mapping[str, Tree], rounds: int, run: Callable[[Tree], dict[str, float]]) -> Runs:
    """The figures of ``rounds`` runs of each tree, the trees taking turns."""
    runs: Runs = {name: [] for name in trees}
    for _ in range(rounds):
        for name, tree in trees.items():
            runs[name].append(run(tree))
    return runs


def show(runs: Runs, form: str = ".3g") -> None:
    """Each figure's median per tree, and every value, in the ``form`` given."""
    rounds = len(next(iter(runs.values())))
    print(f"{rounds} rounds, load average {os.getloadavg()[0]:.1f} at the end")
    for figure in next(iter(runs.values()))[0]:
        for name, figures in runs.items():
            values = [run[figure] for run in figures]
            shown = ", ".join(f"{v:{form}}" for v in values)
            print(f"{figure:16} {name:8} median {statistics.median(values):{form}}  ({shown})")
