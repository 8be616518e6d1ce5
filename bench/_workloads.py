"""The workloads of ../shared/notes/peers.md, written once, and each compared system's driver.

A system is driven through two functions (a :class:`Driver`): ``wrap(fn)`` makes ``fn`` the
system's unit of work (a plait app, a Parsl app, a Ray remote function, ``client.submit``),
whose calls return a handle (an Expr, a future, an ObjectRef) that other calls may take as
arguments; ``gather(handles)`` waits for their values. Every workload is written against
those two, so each system runs exactly the same graphs:

- startup: import + configuration + executor start -> first result (s), from ``t0``;
- A: ``sizes.a`` no-op tasks submitted at once, tasks/s from the first submit to the last result;
- E: ``sizes.e`` no-op tasks the seed's eager way, ``fs = [submit(f(x)) for x in xs]`` then
  every result, one future at a time (tasks/s): ``Driver.submit`` starts a handle (plait's
  ``rt.submit``; the peers' calls start at once) and ``Driver.collect`` waits for the futures;
- B: ``sizes.b`` sequential submit -> result round trips, median and p99 (ms);
- C: a chain of ``sizes.c`` dependent tasks f(f(...f(0))), submitted at once (s);
- D: ``sizes.d`` tasks sleeping 1 ms each, then one reduce over all their results (s).

The task functions live in this module, so every worker imports them by name (the
benchmarks put ``bench/`` on the workers' ``PYTHONPATH``) rather than receiving them
pickled by value.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

Figures = dict[str, float]
HIGHER_IS_BETTER = {"A_tasks_per_s", "E_eager_tasks_per_s"}


class Sizes(NamedTuple):
    a: int = 5000
    b: int = 200
    c: int = 500
    d: int = 2000
    e: int = 5000


def noop(x: int) -> int:
    return x


def inc(x: int) -> int:
    return x + 1


def nap(x: int) -> int:
    import time  # Parsl may ship a function without its module's globals

    time.sleep(0.001)
    return x


def total(*xs: int) -> int:
    return sum(xs)


def inside(x: float, y: float) -> int:
    """The seed's dart: 4 inside the quarter circle, else 0."""
    return 4 if x * x + y * y < 1 else 0


class Driver(NamedTuple):
    wrap: Callable[[Callable[..., Any]], Callable[..., Any]]
    gather: Callable[[list[Any]], list[Any]]
    version: str
    submit: Callable[[Any], Any] = lambda handle: handle  # a peer's call has started already
    collect: Callable[[list[Any]], list[Any]] | None = None  # the values of submitted futures; None: gather


FULL = Sizes()


def measure(driver: Driver, t0: float, sizes: Sizes = FULL, profile: str | None = None) -> Figures:
    """Run start-up and workloads A-D on ``driver``; ``profile`` names one to pyinstrument."""
    w_noop, w_inc, w_nap, w_total = (driver.wrap(f) for f in (noop, inc, nap, total))
    gather = driver.gather
    assert gather([w_noop(-1)]) == [-1]
    figures = {"startup_s": time.perf_counter() - t0}

    with profiled(profile == "A"):
        started = time.perf_counter()
        assert gather([w_noop(i) for i in range(sizes.a)]) == list(range(sizes.a))
        figures["A_tasks_per_s"] = sizes.a / (time.perf_counter() - started)

    with profiled(profile == "E"):
        started = time.perf_counter()
        futures = [driver.submit(w_noop(i)) for i in range(sizes.e)]
        assert (driver.collect or gather)(futures) == list(range(sizes.e))
        figures["E_eager_tasks_per_s"] = sizes.e / (time.perf_counter() - started)

    with profiled(profile == "B"):
        trips = []
        for i in range(sizes.b):
            started = time.perf_counter()
            assert gather([w_noop(i)]) == [i]
            trips.append(time.perf_counter() - started)
        trips.sort()
        figures["B_median_ms"] = statistics.median(trips) * 1000
        figures["B_p99_ms"] = trips[max(0, int(0.99 * len(trips)) - 1)] * 1000

    with profiled(profile == "C"):
        started = time.perf_counter()
        chain = w_inc(0)
        for _ in range(sizes.c - 1):
            chain = w_inc(chain)
        assert gather([chain]) == [sizes.c]
        figures["C_s"] = time.perf_counter() - started

    with profiled(profile == "D"):
        started = time.perf_counter()
        assert gather([w_total(*[w_nap(i) for i in range(sizes.d)])]) == [sum(range(sizes.d))]
        figures["D_s"] = time.perf_counter() - started
    return figures


@contextlib.contextmanager
def profiled(on: bool) -> Iterator[None]:
    """pyinstrument around a block, printed to stderr, when ``on``."""
    if not on:
        yield
        return
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.0005, async_mode="disabled")
    profiler.start()
    try:
        yield
    finally:
        profiler.stop()
        print(profiler.output_text(unicode=True, color=False), file=sys.stderr)


# -- the systems: each a context manager yielding a Driver, started inside the measured process --


@contextlib.contextmanager
def plait_driver(executor: str) -> Iterator[Driver]:
    """plait on ``threads``, ``processes``, ``zmq`` or ``zmq-clear`` (no CurveZMQ), 2 workers each."""
    import plait as pl

    make = {
        "threads": lambda: pl.ThreadExecutor(2),
        "processes": lambda: pl.ProcessExecutor(2),
        "zmq": lambda: pl.ZMQExecutor(provider=pl.LocalProvider(workers=2)),
        "zmq-clear": lambda: pl.ZMQExecutor(provider=pl.LocalProvider(workers=2), encrypted=False),
    }[executor]
    with pl.Runtime([make()], progress=False) as rt:
        yield plait_on(rt)


def plait_on(rt: Any) -> Driver:
    """The Driver of a started plait Runtime ``rt``."""
    import plait as pl

    def gather(exprs: list[Any]) -> list[Any]:
        # One Expr runs without a gather node around it, as a user would run it.
        return [rt.run(exprs[0])] if len(exprs) == 1 else list(rt.run(pl.gather(*exprs)))

    def collect(futures: list[Any]) -> list[Any]:
        return [future.result() for future in futures]

    return Driver(pl.app(pure=False), gather, pl.__version__, rt.submit, collect)


@contextlib.contextmanager
def parsl_driver(executor: str, package: str = "parsl") -> Iterator[Driver]:
    """Parsl's ``htex`` (HighThroughputExecutor, 2 local workers) or ``threads`` (ThreadPool(2)).

    ``package`` is where Parsl is imported from: ``parsl``, or ``plait.compat.parsl`` to run
    the same script on plait's compatibility layer.
    """
    import importlib

    parsl = importlib.import_module(package)
    Config = importlib.import_module(f"{package}.config").Config
    HighThroughputExecutor = importlib.import_module(f"{package}.executors").HighThroughputExecutor
    ThreadPoolExecutor = importlib.import_module(f"{package}.executors").ThreadPoolExecutor
    LocalProvider = importlib.import_module(f"{package}.providers").LocalProvider

    if executor == "htex":
        # HTEX starts its interchange and worker pool by name: this venv's bin/ must be on PATH.
        os.environ["PATH"] = f"{os.path.dirname(sys.executable)}:{os.environ.get('PATH', '')}"
        chosen: Any = HighThroughputExecutor(
            address="127.0.0.1",
            max_workers_per_node=2,
            cores_per_worker=1,
            provider=LocalProvider(init_blocks=1, min_blocks=1, max_blocks=1),
        )
    else:
        chosen = ThreadPoolExecutor(max_threads=2)
    with tempfile.TemporaryDirectory(prefix="parsl-bench-") as run_dir:
        parsl.load(Config(executors=[chosen], strategy="none", run_dir=run_dir))
        try:
            version = getattr(parsl, "__version__", "compat")
            yield Driver(parsl.python_app, lambda futures: [f.result() for f in futures], version)
        finally:
            parsl.dfk().cleanup()
            parsl.clear()


@contextlib.contextmanager
def dask_driver() -> Iterator[Driver]:
    """Dask distributed: a LocalCluster of 2 single-threaded worker processes."""
    import logging

    import distributed

    logging.getLogger("distributed").setLevel(logging.ERROR)
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):

        def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
            return lambda *args: client.submit(fn, *args, pure=False)

        yield Driver(wrap, client.gather, distributed.__version__)


@contextlib.contextmanager
def ray_driver() -> Iterator[Driver]:
    """Ray with num_cpus=2 (ObjectRefs are resolved at the top level of arguments, as here)."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
    try:
        yield Driver(lambda fn: ray.remote(fn).remote, ray.get, ray.__version__)
    finally:
        ray.shutdown()


SYSTEMS: dict[str, Callable[[], contextlib.AbstractContextManager[Driver]]] = {
    "plait-threads": lambda: plait_driver("threads"),
    "plait-processes": lambda: plait_driver("processes"),
    "plait-zmq": lambda: plait_driver("zmq"),
    "plait-zmq-clear": lambda: plait_driver("zmq-clear"),
    "parsl-threads": lambda: parsl_driver("threads"),
    "parsl-htex": lambda: parsl_driver("htex"),
    "compat-threads": lambda: parsl_driver("threads", "plait.compat.parsl"),
    "compat-htex": lambda: parsl_driver("htex", "plait.compat.parsl"),
    "dask": dask_driver,
    "ray": ray_driver,
}


def medians(runs: Sequence[Figures]) -> Figures:
    """The median of each figure over runs.

    >>> medians([{"C_s": 1.0}, {"C_s": 3.0}, {"C_s": 2.0}])
    {'C_s': 2.0}
    """
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def alternate(rounds: int, names: Sequence[str], run: Callable[[str], Figures]) -> dict[str, list[Figures]]:
    """``run`` every name once a round, alternating (so a busy spell hurts all alike),
    printing each result as it comes; every name's figures, round by round."""
    results: dict[str, list[Figures]] = {name: [] for name in names}
    for number in range(rounds):
        for name in names:
            figures = run(name)
            results[name].append(figures)
            print(f"round {number + 1} {name}: " + ", ".join(f"{k}={v:.3g}" for k, v in figures.items()), flush=True)
    return results


def speedup(key: str, ours: float, theirs: float) -> float:
    """How many times better ``ours`` is than ``theirs`` on figure ``key`` (> 1: ours wins).

    >>> speedup("A_tasks_per_s", 2000.0, 500.0), speedup("C_s", 0.5, 2.0)
    (4.0, 4.0)
    """
    return ours / theirs if key in HIGHER_IS_BETTER else theirs / ours
