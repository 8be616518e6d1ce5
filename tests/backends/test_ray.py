"""RayExecutor on a real local Ray (2 CPUs), shared by the module."""

from __future__ import annotations

import itertools
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from hypothesis import HealthCheck, given, settings

import plait as pl
import plait.testing as pt
from tests.backends.engine_apps import (
    PI_EXPECTED,
    Events,
    a_failing_task_fails_alone,
    cancelling_one_of_a_pack_spares_the_rest,
    failing,
    in_engine_task,
    kill_a_worker_mid_run,
    licensed,
    long_tasks_never_share,
    napping,
    pi_estimate,
    unmeasured_then_packed,
)
from tests.waiting import wait_for

ray = pytest.importorskip("ray")

pytestmark = pytest.mark.slow  # Ray takes seconds to start; CI runs these all the same


@pytest.fixture(scope="module")
def ray_here() -> Iterator[Any]:
    # Ray's workers do not inherit the driver's sys.path: they find the test apps through PYTHONPATH.
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).parents[2]), saved]))
    ray.init(
        num_cpus=2, resources={"licence": 1}, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False
    )
    try:
        yield ray
    finally:
        ray.shutdown()
        if saved is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = saved


@pytest.fixture(scope="module")
def runtime(ray_here: Any) -> Iterator[pl.Runtime]:
    with pl.Runtime(executors=[pl.RayExecutor()]) as rt:
        yield rt


def test_the_pi_workflow_runs_on_ray(runtime: pl.Runtime) -> None:
    assert runtime.run(pi_estimate(), timeout=60) == PI_EXPECTED


def test_an_apps_error_comes_back_as_itself(runtime: pl.Runtime) -> None:
    with pytest.raises(ValueError, match="no good: 4"):
        runtime.run(failing(4), timeout=60)


def test_tasks_run_in_ray_worker_processes(runtime: pl.Runtime, tmp_path: Path) -> None:
    done = runtime.run(pl.gather([napping(i, 0.0, str(tmp_path)) for i in range(4)]), timeout=60)
    assert [i for i, _ in done] == [0, 1, 2, 3]
    assert os.getpid() not in {pid for _, pid in done}
    assert all(psutil.Process(pid).parent().name() == "raylet" for _, pid in done)


def test_an_apps_resources_are_ray_resources(runtime: pl.Runtime, tmp_path: Path) -> None:
    # The node has one "licence" and two CPUs: tasks that each need the licence run one at a time.
    spans = sorted(runtime.run(pl.gather([licensed(i, 0.3, str(tmp_path)) for i in range(3)]), timeout=60))
    assert all(end <= next_start for (_, end), (next_start, _) in itertools.pairwise(spans)), spans


def test_a_worker_killed_mid_run_is_lost_and_its_task_retried(ray_here: Any, tmp_path: Path) -> None:
    _, lost = kill_a_worker_mid_run(pl.RayExecutor(), tmp_path)
    assert "Ray lost the task" in str(lost)


def test_a_worker_killed_mid_pack_takes_its_pack_and_all_of_it_is_retried(ray_here: Any, tmp_path: Path) -> None:
    # Napping known to be short: the four naps go two to a Ray task, so the victim ran two.
    events = Events()
    _, lost = kill_a_worker_mid_run(pl.RayExecutor(), tmp_path, known=True, events=events)
    assert "napping: Ray lost the task" in str(lost)
    assert len(events.retried_for(pl.WorkerLost)) == 2, events.seen


def test_an_app_never_measured_runs_a_task_per_ray_task_then_its_short_tasks_are_packed(ray_here: Any) -> None:
    unmeasured_then_packed(pl.RayExecutor(), in_engine_task)


def test_long_tasks_never_share_a_ray_task(ray_here: Any) -> None:
    long_tasks_never_share(pl.RayExecutor(), in_engine_task)


def test_a_task_failing_in_a_pack_fails_alone(ray_here: Any) -> None:
    a_failing_task_fails_alone(pl.RayExecutor(), in_engine_task, "Ray")


def test_cancelling_one_task_of_a_pack_lets_its_pack_mates_finish(ray_here: Any, tmp_path: Path) -> None:
    cancelling_one_of_a_pack_spares_the_rest(pl.RayExecutor(), in_engine_task, tmp_path)


def test_cancel_kills_a_running_task(runtime: pl.Runtime, tmp_path: Path) -> None:
    future = runtime.submit(napping(0, 60.0, str(tmp_path)))
    wait_for(lambda: any(tmp_path.iterdir()), "the task to start")
    pid = int(next(tmp_path.iterdir()).name)
    assert future.cancel()

    def gone() -> bool:
        try:
            return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    wait_for(gone, "Ray to kill the worker running the cancelled task", 30)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pt.exprs(max_leaves=8))
def test_random_graphs_give_the_same_outcome_on_ray_and_on_threads(runtime: pl.Runtime, expr: pl.Expr[int]) -> None:
    pt.assert_equivalent(expr, pt.local_runtime(), runtime)


def test_without_ray_installed_it_says_which_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ImportError, match=r"RayExecutor needs the ray package: pip install plait\[ray\]"):
        pl.RayExecutor()
