"""What importing costs: ``import plait`` loads its names when they are first used, a
runtime on local pools loads no batch provider, memo store, planner or process pool, and
a worker pool (``plait worker``) loads only what it runs: neither the DSL, nor the
runtime, nor asyncio, nor the other subcommands."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from typing import Any

import pytest

import plait
import plait as pl


def modules_after(code: str) -> set[str]:
    """The modules a fresh interpreter holds after running ``code``."""
    return set(shown_after(code, "sorted(sys.modules)"))


def shown_after(code: str, what: str) -> Any:
    """The value of the expression ``what`` in a fresh interpreter that ran ``code``."""
    show = f"import json, sys; print(json.dumps({what}))"
    done = subprocess.run([sys.executable, "-c", f"{code}\n{show}"], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def test_import_plait_loads_none_of_its_parts_until_a_name_is_used() -> None:
    loaded = {m for m in modules_after("import plait") if m.startswith("plait")}
    assert loaded == {"plait", "plait._collector", "plait._lazy", "plait._version"}
    used = modules_after("import plait; plait.ZMQExecutor")
    assert "plait.backends.zmq._executor" in used
    assert "plait.backends._dask" not in used and "plait.dsl" not in used


def test_a_pool_loads_neither_the_dsl_nor_the_runtime_nor_asyncio_nor_click() -> None:
    # What ``pool_command`` runs, up to the pool's main, and the pool.
    loaded = modules_after(
        "from plait.backends.zmq._pool_start import command; from plait.backends.zmq._pool import Pool"
    )
    assert not {m for m in loaded if m.startswith(("plait.dsl", "plait.runtime", "plait.monitoring", "plait.report"))}
    assert "asyncio" not in loaded
    assert "plait.backends._processes" not in loaded
    assert "click" not in loaded and "plait.cli" not in loaded  # ``plait worker`` forwards to the same command


def test_a_pool_forks_its_launcher_before_it_loads_zmq_and_leaves_the_workers_modules_to_it() -> None:
    # The launcher must be forked before a zmq context starts threads, and each loads its share of start-up.
    before_fork = modules_after("from plait.backends.zmq._pool_start import command")
    assert "zmq" not in before_fork and "msgspec" not in before_fork
    pool = modules_after("from plait.backends.zmq._pool import Pool")
    workers_only = {"cloudpickle", "tblib", "plait.backends._wire", "plait.backends._worker", "plait.backends._task"}
    assert not workers_only & pool
    assert "psutil" not in pool  # imported when the first sample is near (``Pool._sample_every``)


def test_a_pool_loads_none_of_what_only_its_launcher_or_an_executor_runs() -> None:
    # All a pool imports, its options parsed: ctypes makes a launcher a subreaper, subprocess
    # spawns a driver's launcher, tempfile writes an executor's key file, shutil sizes help
    # for a terminal.
    loaded = modules_after(
        "from plait.backends.zmq._pool_start import _parser; _parser('plait worker')"
        "\nfrom plait.backends._launcher import Launcher"
        "\nfrom plait.backends.zmq._curve import read_keys; from plait.backends.zmq._pool import Pool"
    )
    assert not {"ctypes", "subprocess", "tempfile", "shutil"} & loaded


def test_a_pool_forks_its_launcher_before_it_loads_attrs_which_the_launcher_never_loads() -> None:
    # The launcher's imports are then under way ~10 ms sooner, beside the pool's.
    before_fork = modules_after(
        "from plait.backends.zmq._pool_start import _parser; _parser('plait worker')"
        "\nfrom plait.backends._launcher import Launcher"
    )
    launcher = modules_after("from plait.backends._launcher import serve\nimport plait.backends._worker")
    assert "attrs" not in before_fork | launcher


def test_a_driver_on_local_pools_loads_neither_the_pools_options_nor_their_launcher_nor_error_hints() -> None:
    # ``_blocks`` writes a pool's command line: the option names, not argparse or the launcher;
    # difflib's "did you mean" is for a misspelt keyword or option.
    loaded = modules_after(
        "import plait as pl; noop = pl.app(abs); noop(-1)"
        "\npl.Runtime([pl.ZMQExecutor(provider=pl.LocalProvider(workers=1))], progress=False)"
    )
    assert "plait.backends.zmq._pool_start" in loaded
    assert not {"argparse", "ctypes", "plait.backends._launcher", "difflib"} & loaded


@pytest.mark.parametrize("executor", ["zmq", "processes"])
def test_launchers_and_pools_import_without_the_collector_and_freeze_what_they_imported(executor: str) -> None:
    # A worker, forked by a launcher, inherits its collection counts and its frozen
    # modules; its user's task runs with the collector on, as a fresh interpreter has it.
    show = "import gc; print(gc.get_stats()[0]['collections'], list(gc.get_threshold()))"
    fresh = subprocess.run([sys.executable, "-P", "-c", show], capture_output=True, text=True, check=True)
    at_start, default = fresh.stdout.split(" ", 1)

    @pl.app(pure=False)  # a closure: sent by value, so the worker imports no test module for it
    def collector_state() -> tuple[int, bool, tuple[int, ...], int]:
        return gc.get_stats()[0]["collections"], gc.isenabled(), gc.get_threshold(), gc.get_freeze_count()

    chosen = pl.ZMQExecutor(provider=pl.LocalProvider(workers=1)) if executor == "zmq" else pl.ProcessExecutor(1)
    with pl.Runtime([chosen], progress=False) as rt:
        collections, enabled, threshold, frozen = rt.run(collector_state())
    assert enabled and list(threshold) == json.loads(default)
    assert frozen > 10_000  # the launcher's modules (and a pool's, before it forked its launcher)
    assert collections <= int(at_start) + 3  # ~20 more when they imported with it on


WATCH_COLLECTIONS = (
    "import gc; import plait; seen = []"
    "\ngc.callbacks.append(lambda phase, info: phase == 'start' and seen.append(info['generation']))"
)
FIRST_USES = "plait.app; plait.Runtime; plait.ZMQExecutor; plait.LocalProvider"


def test_a_names_modules_load_with_no_young_collection_and_leave_none_due() -> None:
    # ~55 young collections on a driver's start, over objects that all live on.
    seen, count, threshold, frozen = shown_after(
        f"{WATCH_COLLECTIONS}\n{FIRST_USES}", "[seen, gc.get_count()[0], gc.get_threshold(), gc.get_freeze_count()]"
    )
    assert seen == [] and count < threshold[0]  # none ran, none is due now
    assert threshold == list(gc.get_threshold()) and frozen == 0  # the collector as it was


def test_plait_gc_threshold_off_leaves_the_collector_alone_as_names_load() -> None:
    off = "import os; os.environ['PLAIT_GC_THRESHOLD'] = 'off'"
    seen = shown_after(f"{off}\n{WATCH_COLLECTIONS}\n{FIRST_USES}", "seen")
    assert seen.count(0) > 10  # young collections, as Python runs them


def test_a_process_that_froze_objects_of_its_own_keeps_them_frozen_as_names_load() -> None:
    # A frozen object is in no generation the collector looks at (``gc.get_objects``).
    looked_at = shown_after(
        f"{WATCH_COLLECTIONS}\nmine = [[]]; gc.freeze()\n{FIRST_USES}", "any(o is mine for o in gc.get_objects())"
    )
    assert looked_at is False


def test_every_public_name_is_listed_by_dir_and_found_once() -> None:
    assert set(plait.__all__) <= set(dir(plait))
    assert plait.Runtime is plait.runtime.Runtime
    assert vars(plait)["Runtime"] is plait.Runtime  # kept: the next lookup is a plain attribute


def test_a_runtime_on_local_pools_loads_no_batch_provider_memo_planner_or_process_pool() -> None:
    # What start-up to a first result imports in the driver: each module is milliseconds.
    loaded = modules_after(
        "import plait as pl; pl.Runtime([pl.ZMQExecutor(provider=pl.LocalProvider(workers=1))], progress=False)"
    )
    assert "plait.backends.providers._local" in loaded
    batch = {"_condor", "_gridengine", "_kubernetes", "_lsf", "_pbspro", "_scheduler", "_slurm", "_ssh"}
    assert not {f"plait.backends.providers.{name}" for name in batch} & loaded
    assert not {"plait.monitoring._db", "plait.monitoring._summary", "plait.monitoring._usage"} & loaded
    on_demand = {"plait.runtime._memo", "plait.runtime._memo_file", "plait.runtime._plan", "plait.backends._processes"}
    assert not on_demand & loaded
    assert not {"pdb", "html"} & loaded  # a post-mortem's, a notebook's: ~5 ms of start-up
    # Each is there when asked for.
    asked = modules_after("import plait as pl; pl.Runtime(cache=':memory:', monitor=':memory:').plan(pl.gather())")
    assert on_demand <= asked
    assert "plait.monitoring._writer" in asked


def test_awaiting_an_expr_after_import_plait_alone_runs_it() -> None:
    """``import plait`` loads no runtime; ``await`` of an app's call must still find one."""
    script = (
        "import asyncio, plait as pl\n"
        "@pl.app\ndef inc(x: int) -> int:\n    return x + 1\n"
        "async def main() -> int:\n    return await inc(1)\n"
        "print(asyncio.run(main()))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert (done.returncode, done.stdout.strip()) == (0, "2"), done.stderr
