"""The benchmark suite (``make bench``): plait against Parsl, Dask and Ray, side by side.

Runs the workloads of ``bench/_workloads.py`` (start-up, A throughput, E the same no-ops
submitted one future at a time, B latency, C chain, D fan-out + reduce; from
../shared/notes/peers.md) on plait (ThreadExecutor,
ProcessExecutor, ZMQExecutor), Parsl (ThreadPool, HTEX), Dask distributed and Ray, each
with 2 workers. One system at a time, each repetition in a fresh process (so start-up
counts imports), systems alternating within a repetition. Prints the medians and each
peer's ratio to plait's ZMQExecutor (how many times plait is better: > 1 means plait
wins), writes the raw runs as JSON and a bar chart of the ratios to ``bench/results/``.
Every process the suite starts carries a marker in its environment; at the end the suite
checks with psutil that none is left (and ends any that is, saying so).

Run: ``python bench/run.py [--quick] [--reps 3] [--only plait-zmq,dask] [--chart PATH]``;
``python bench/run.py --chart docs/performance-chart.png --from bench/results/X.json``
redraws a chart from a saved run.
"""

from __future__ import annotations

import time

T0 = time.perf_counter()  # before any import of the system under test: start-up counts them

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import uuid  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _workloads as wl  # noqa: E402

RESULTS = HERE / "results"
BASELINE = "plait-zmq"
MARKER = "PLAIT_BENCH_RUN"
CHILD_TIMEOUT = 600.0
LABELS = {
    "startup_s": "start-up s",
    "A_tasks_per_s": "A no-op tasks/s",
    "E_eager_tasks_per_s": "E eager no-op tasks/s",
    "B_median_ms": "B median ms",
    "B_p99_ms": "B p99 ms",
    "C_s": "C chain s",
    "D_s": "D fan-out + reduce s",
}


def child(system: str, sizes: wl.Sizes) -> None:
    with wl.SYSTEMS[system]() as driver:
        figures = wl.measure(driver, T0, sizes)
        print(json.dumps({"figures": figures, "version": driver.version}), flush=True)
    os._exit(0)  # some systems leave non-daemon threads behind once shut down; all is printed


def run_child(system: str, sizes: wl.Sizes, marker: str) -> dict[str, Any]:
    env = {
        **os.environ,
        MARKER: marker,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])),
    }
    argv = [sys.executable, __file__, "--child", system, "--sizes", ",".join(map(str, sizes))]
    try:
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=CHILD_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {CHILD_TIMEOUT:.0f} s"}
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        return {"error": f"exit status {done.returncode}: {done.stderr.strip()[-2000:]}"}
    return json.loads(lines[-1])  # type: ignore[no-any-return]


def leftovers(marker: str) -> list[str]:
    """End every process still carrying ``marker`` (ours, even if re-parented); describe them."""
    import psutil

    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            if proc.pid != os.getpid() and proc.environ().get(MARKER) == marker:
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    described = [f"{p.pid}: {' '.join(p.info['cmdline'] or [])[:120]}" for p in found]
    for proc in found:
        with _gone():
            proc.terminate()
    _, alive = psutil.wait_procs(found, timeout=5)
    for proc in alive:
        with _gone():
            proc.kill()
    return described


class _gone:
    """Ignore a process that ended on its own meanwhile."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> bool:
        import psutil

        return kind is not None and issubclass(kind, psutil.NoSuchProcess)


def machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if "model name" in line), platform.processor())
    memory = next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if "MemTotal" in line)
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(int(memory) / 2**20, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average": os.getloadavg(),
    }


def table(systems: list[str], medians: dict[str, wl.Figures]) -> str:
    """Markdown: a row per figure, a column per system, each peer's ratio to the baseline (plait-zmq)."""
    base = medians.get(BASELINE)
    lines = ["| figure | " + " | ".join(systems) + " |", "|---" + "|---:" * len(systems) + "|"]
    for key, label in LABELS.items():
        cells = []
        for system in systems:
            value = medians[system].get(key)
            cell = "-" if value is None else f"{value:,.0f}" if value >= 100 else f"{value:.3g}"
            if value is not None and base is not None and not system.startswith("plait"):
                cell += f" ({wl.speedup(key, base[key], value):.1f}x)"
            cells.append(cell)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def eager_ratios(medians: dict[str, wl.Figures]) -> str:
    """For each plait system: the seed's eager idiom (E) over the same tasks as one graph (A)."""
    plaits = {s: m for s, m in medians.items() if s.startswith("plait")}
    ratios = [f"{s} {m['E_eager_tasks_per_s'] / m['A_tasks_per_s']:.2f}" for s, m in plaits.items()]
    return "\nE / A, eager over gathered (goal >= 0.8): " + (", ".join(ratios) or "no plait system ran")


def chart(result: dict[str, Any], path: Path) -> None:
    """Bars of how many times plait's ZMQExecutor beats each system, per workload (log scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    medians = result["medians"]
    peers = [s for s in medians if not s.startswith("plait")]
    keys = [k for k in LABELS if k != "B_p99_ms"]
    width = 0.8 / max(1, len(peers))
    fig, ax = plt.subplots(figsize=(10, 4.5))
    for i, peer in enumerate(peers):
        ratios = [wl.speedup(k, medians[BASELINE][k], medians[peer][k]) for k in keys]
        ax.bar([x + i * width for x in range(len(keys))], ratios, width, label=peer)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_yscale("log")
    ax.set_xticks([x + width * (len(peers) - 1) / 2 for x in range(len(keys))], [LABELS[k] for k in keys])
    ax.set_ylabel(f"{BASELINE} is N x better (log)")
    ax.set_title(f"plait ZMQExecutor vs each system, median of {result['reps']} runs, 2 workers, 2 cores")
    ax.legend(fontsize="small", ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 repetition of workloads a fifth the size")
    parser.add_argument("--reps", type=int, help="repetitions per system (default 3, 1 with --quick)")
    parser.add_argument("--only", help=f"comma-separated systems out of {','.join(wl.SYSTEMS)}")
    parser.add_argument("--chart", type=Path, help="where to draw the chart (default: next to the JSON)")
    parser.add_argument("--from", dest="source", type=Path, help="draw --chart from this saved run, run nothing")
    parser.add_argument("--child", choices=sorted(wl.SYSTEMS), help=argparse.SUPPRESS)
    parser.add_argument("--sizes", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, wl.Sizes(*map(int, args.sizes.split(","))))
    if args.source:
        chart(json.loads(args.source.read_text()), args.chart or args.source.with_suffix(".png"))
        return 0

    systems = args.only.split(",") if args.only else list(wl.SYSTEMS)
    unknown = set(systems) - set(wl.SYSTEMS)
    if unknown:
        parser.error(f"--only: unknown system(s) {sorted(unknown)}; choose from {','.join(wl.SYSTEMS)}")
    reps = args.reps or (1 if args.quick else 3)
    sizes = wl.Sizes(*(n // 5 for n in wl.Sizes())) if args.quick else wl.Sizes()
    return report(suite(systems, reps, sizes), args.chart)


def suite(systems: list[str], reps: int, sizes: wl.Sizes) -> dict[str, Any]:
    """Run every system ``reps`` times, alternating; the raw runs, medians and machine."""
    marker = uuid.uuid4().hex
    started = datetime.datetime.now(datetime.UTC)
    result: dict[str, Any] = {"started": started.isoformat(timespec="seconds"), "machine": machine()}
    result |= {"reps": reps, "sizes": sizes._asdict(), "baseline": BASELINE, "runs": {s: [] for s in systems}}
    versions: dict[str, str] = {}
    print(f"{len(systems)} systems x {reps} repetitions, sizes {sizes._asdict()}", flush=True)
    try:
        for rep in range(reps):
            for system in systems:
                outcome = run_child(system, sizes, marker)
                stray = leftovers(marker)  # a child's processes must not disturb the next system
                if stray:
                    outcome.setdefault("leftovers", stray)
                result["runs"][system].append(outcome)
                versions[system] = outcome.get("version", versions.get(system, "?"))
                shown = outcome.get("error") or ", ".join(f"{k}={v:.3g}" for k, v in outcome["figures"].items())
                left = f" [left {len(stray)} processes]" if stray else ""
                print(f"rep {rep + 1} {system}: {shown}{left}", flush=True)
    finally:
        stray = leftovers(marker)
        result["leftovers_at_end"] = stray
    ok = {s: [r["figures"] for r in runs if "figures" in r] for s, runs in result["runs"].items()}
    result["medians"] = {s: wl.medians(runs) for s, runs in ok.items() if runs}
    result["versions"] = versions
    result["machine"]["load_average_end"] = os.getloadavg()
    return result


def report(result: dict[str, Any], chart_path: Path | None) -> int:
    """Save the JSON and chart, print the table; 1 if a run failed or left a process behind."""
    systems, versions = list(result["runs"]), result["versions"]
    started = datetime.datetime.fromisoformat(result["started"])
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / f"suite-{started:%Y%m%dT%H%M%S}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=1))
    shown_systems = [s for s in systems if s in result["medians"]]
    print()
    print(table(shown_systems, result["medians"]))
    print(eager_ratios(result["medians"]))
    print(f"\n(Nx): how many times {BASELINE} is better than that system. Versions: {versions}")
    print(f"raw runs: {stem.with_suffix('.json')}")
    if BASELINE in result["medians"] and any(not s.startswith("plait") for s in result["medians"]):
        chart(result, chart_path or stem.with_suffix(".png"))
        print(f"chart: {chart_path or stem.with_suffix('.png')}")
    failed = [s for s, runs in result["runs"].items() if any("error" in r for r in runs)]
    stray = result["leftovers_at_end"]
    leaked = [s for s, runs in result["runs"].items() if any("leftovers" in r for r in runs)] + ["(end)"] * bool(stray)
    if failed:
        print(f"FAILED runs: {failed}", file=sys.stderr)
    if leaked:
        print(f"processes left behind (now ended) by: {leaked}", file=sys.stderr)
    print("no process of the suite is left" if not stray else f"ended {len(stray)} stray processes at the end")
    return 1 if failed or leaked else 0


if __name__ == "__main__":
    sys.exit(main())
