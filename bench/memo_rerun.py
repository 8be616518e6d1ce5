"""Warm re-run served entirely from the memo: plait's SQLite memo vs Parsl's checkpoints.

The workflow has 10 000 tasks: ``square(i)`` for 5 000 values of ``i`` and
``shift(square(i))`` after each. A cold run fills the memo (plait: ``cache=path``;
Parsl: ``cache=True`` apps with ``checkpoint_mode="task_exit"``); the warm run, in a
fresh runtime / DataFlowKernel, must compute nothing. Both run in this process, one
after the other, each round. Reported per warm run:

- load: open the store (plait: the SQLite file; Parsl: ``parsl.load`` reading its
  checkpoint files),
- build: plait computes the Merkle keys of the graph; Parsl has no separate step,
- run: submit to results,

and tasks/s = 10 000 / (load + build + run). Executor start-up is left out of both.
"cpu" is this process's CPU time over the same phases (every thread): on a machine
shared with other work, tasks per CPU-second is the steadier figure.

Run: ``python bench/memo_rerun.py [--tasks N] [--rounds R] [--profile] [--no-parsl]``;
``--profile`` prints pyinstrument profiles of one more warm plait run: the build on
the calling thread, the run on the runtime's loop thread.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import plait as pl

Phases = dict[str, float]


@pl.app
def square(i: int) -> int:
    return i * i


@pl.app
def shift(x: int) -> int:
    return x + 1


def expected(pairs: int) -> list[int]:
    return [i * i + 1 for i in range(pairs)]


def plait_run(db: str, pairs: int, profile: bool = False) -> Phases:
    """One plait run of the workflow against the memo ``db``; times of its phases."""
    cpu = time.process_time()
    started = time.perf_counter()
    runtime = pl.Runtime([pl.ProcessExecutor(2)], cache=db, progress=False)  # opens the memo
    loaded = time.perf_counter()
    cpu -= time.process_time()
    with runtime as rt:  # starting the workers is left out of the clock
        cpu += time.process_time()
        start_build = time.perf_counter()
        profiler = _profiler() if profile else None
        workflow = pl.gather(shift(square(i)) for i in range(pairs))
        built = time.perf_counter()
        if profiler is not None:
            profiler.stop()
            print("build (the calling thread):", profiler.output_text(unicode=True, color=False), sep="\n")
            # pyinstrument samples the thread that starts it: start one on the loop thread.
            profiler = rt._wait(_start_profiler())
        result = rt.run(workflow, timeout=600)
        ended = time.perf_counter()
        cpu = time.process_time() - cpu
        if profiler is not None:
            rt._wait(_stop_profiler(profiler))
            print("run (the runtime's loop thread):", profiler.output_text(unicode=True, color=False), sep="\n")
    assert result == expected(pairs)
    return {"load": loaded - started, "build": built - start_build, "run": ended - built, "cpu": cpu}


def _profiler() -> Any:
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.0002, async_mode="disabled")
    profiler.start()
    return profiler


async def _start_profiler() -> Any:
    return _profiler()


async def _stop_profiler(profiler: Any) -> None:
    profiler.stop()


def parsl_run(run_dir: str, pairs: int, warm: bool) -> Phases:
    """One Parsl run (ThreadPoolExecutor, checkpoint on task exit); times of its phases."""
    import parsl
    from parsl.config import Config
    from parsl.dataflow.memoization import BasicMemoizer
    from parsl.dataflow.states import States
    from parsl.executors.threads import ThreadPoolExecutor

    @parsl.python_app(cache=True)
    def square(i: int) -> int:
        return i * i

    @parsl.python_app(cache=True)
    def shift(x: int) -> int:
        return x + 1

    cpu = time.process_time()
    started = time.perf_counter()
    config = Config(
        executors=[ThreadPoolExecutor(max_threads=2, label="threads")],
        run_dir=run_dir,
        memoizer=BasicMemoizer(checkpoint_mode="task_exit"),  # loads every checkpoint in run_dir
        strategy="none",
    )
    dfk = parsl.load(config)
    loaded = time.perf_counter()
    try:
        futures = [shift(square(i)) for i in range(pairs)]
        result = [f.result() for f in futures]
        ended = time.perf_counter()
        cpu = time.process_time() - cpu
        if warm:
            memoized = dfk.task_state_counts[States.memo_done]
            assert memoized == 2 * pairs, f"parsl served only {memoized} of {2 * pairs} tasks from its checkpoint"
    finally:
        dfk.cleanup()
        parsl.clear()
    assert result == expected(pairs)
    return {"load": loaded - started, "build": 0.0, "run": ended - loaded, "cpu": cpu}


def rate(tasks: int, phases: Phases) -> float:
    return tasks / (phases["load"] + phases["build"] + phases["run"])


def cpu_rate(tasks: int, phases: Phases) -> float:
    return tasks / phases["cpu"]


def rounds(name: str, tasks: int, n: int, once: Callable[[int], Phases]) -> list[Phases]:
    results = []
    for r in range(n):
        phases = once(r)
        results.append(phases)
        parts = "  ".join(f"{k} {v * 1000:6.1f} ms" for k, v in phases.items())
        print(
            f"  {name:<6} round {r + 1}: {parts}  -> {rate(tasks, phases):7.0f} tasks/s, "
            f"{cpu_rate(tasks, phases):7.0f} per CPU-s",
            flush=True,
        )
    return results


def _medians(tasks: int, runs: list[Phases]) -> tuple[float, float]:
    return statistics.median(rate(tasks, p) for p in runs), statistics.median(cpu_rate(tasks, p) for p in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=10_000, help="tasks in the workflow (even)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="pyinstrument profile of one warm plait run")
    parser.add_argument("--no-parsl", action="store_true")
    args = parser.parse_args()
    pairs = args.tasks // 2
    tmp = tempfile.mkdtemp(prefix="plait-memo-bench-")
    # Parsl starts its interchange and workers by name; ThreadPoolExecutor needs neither,
    # but keep the venv's bin on PATH as for the other benchmarks.
    os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
    try:
        db = os.path.join(tmp, "plait.db")
        cold = plait_run(db, pairs)
        print(f"plait cold run: {sum(cold.values()):.2f} s ({rate(args.tasks, cold):.0f} tasks/s)")
        ours = rounds("plait", args.tasks, args.rounds, lambda _: plait_run(db, pairs))
        if args.profile:
            plait_run(db, pairs, profile=True)
        theirs: list[Phases] = []
        if not args.no_parsl:
            run_dir = os.path.join(tmp, "parsl")
            try:
                cold = parsl_run(run_dir, pairs, warm=False)
            except ImportError as error:
                print(f"parsl: not run ({error}); pip install -e '.[bench]'")
            else:
                print(f"parsl cold run: {sum(cold.values()):.2f} s ({rate(args.tasks, cold):.0f} tasks/s)")
                theirs = rounds("parsl", args.tasks, args.rounds, lambda _: parsl_run(run_dir, pairs, warm=True))
        print(f"\nwarm re-run of {args.tasks} tasks, median of {args.rounds} (goal for plait: >= 50 000 tasks/s):")
        summary = {name: _medians(args.tasks, runs) for name, runs in (("plait", ours), ("parsl", theirs)) if runs}
        for name, (wall, cpu) in summary.items():
            print(f"  {name}  {wall:9.0f} tasks/s  {cpu:9.0f} tasks per CPU-second")
        if len(summary) == 2:
            (pw, pc), (qw, qc) = summary["plait"], summary["parsl"]
            print(f"  plait / parsl = {pw / qw:.1f}x wall, {pc / qc:.1f}x CPU")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
