"""DaskExecutor on a real LocalCluster of 2 worker processes, shared by the module."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
import traceback
import urllib.error
import urllib.request
from collections.abc import Iterator
from multiprocessing import resource_tracker
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
    engine_tasks,
    failing,
    in_engine_task,
    kill_a_worker_mid_run,
    licensed,
    long_tasks_never_share,
    napping,
    pi_estimate,
    spec,
    taught,
    touching,
    unmeasured_then_packed,
    unpicklable,
)
from tests.waiting import wait_for

dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    # allowed-failures=0: Dask gives up on a task at its first lost worker (KilledWorker), so
    # the kill test sees plait, not Dask, retry it.
    with (
        dask.config.set({"distributed.scheduler.allowed-failures": 0}),
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            resources={"licence": 1},
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client
    # Dask's nannies started multiprocessing's resource tracker, a child that would outlive the
    # module; later tests check that no child process outlives them.
    resource_tracker._resource_tracker._stop()


@pytest.fixture(scope="module")
def runtime(client: Any) -> Iterator[pl.Runtime]:
    with pl.Runtime(executors=[pl.DaskExecutor(client)]) as rt:
        yield rt


def test_the_pi_workflow_runs_on_a_cluster_given_by_address(client: Any) -> None:
    executor = pl.DaskExecutor(client.scheduler.address)
    with pl.Runtime(executors=[executor]) as rt:
        assert rt.run(pi_estimate(), timeout=60) == PI_EXPECTED
        own = executor.client
        assert own is not client
    assert own.status == "closed"  # its own connection, closed; the cluster goes on
    assert client.status == "running"


def test_tasks_run_in_the_dask_workers_and_say_where(runtime: pl.Runtime, client: Any, tmp_path: Path) -> None:
    done = runtime.run(pl.gather([napping(i, 0.0, str(tmp_path)) for i in range(4)]), timeout=60)
    worker_pids = set(client.run(os.getpid).values())
    assert {pid for _, pid in done} <= worker_pids


def test_an_apps_error_comes_back_as_itself(runtime: pl.Runtime) -> None:
    with pytest.raises(ValueError, match="no good: 3") as caught:
        runtime.run(failing(3), timeout=60)
    assert any(frame.name == "failing" for frame in traceback.extract_tb(caught.value.__traceback__))


def test_an_unpicklable_result_names_the_app(runtime: pl.Runtime) -> None:
    with pytest.raises(TypeError, match=r"unpicklable: its result, a lock, cannot be pickled"):
        runtime.run(unpicklable(1), timeout=60)


def test_an_apps_resources_are_dask_worker_resources(runtime: pl.Runtime, client: Any, tmp_path: Path) -> None:
    future = runtime.submit(licensed(0, 1.0, str(tmp_path)))
    wait_for(lambda: any(tmp_path.iterdir()), "the task to start")
    restrictions = client.run_on_scheduler(
        lambda dask_scheduler: [ts.resource_restrictions for ts in dask_scheduler.tasks.values()]
    )
    assert {"licence": 1} in restrictions
    future.result(timeout=60)


def test_a_worker_killed_mid_run_is_lost_and_its_task_retried(client: Any, tmp_path: Path) -> None:
    victim, lost = kill_a_worker_mid_run(pl.DaskExecutor(client), tmp_path)
    assert "KilledWorker" in str(lost)
    wait_for_a_worker_in_place_of(victim, client)


def test_a_worker_killed_mid_pack_takes_its_pack_and_all_of_it_is_retried(client: Any, tmp_path: Path) -> None:
    # Napping known to be short: the four naps go two to a Dask task, so the victim ran two.
    events = Events()
    victim, lost = kill_a_worker_mid_run(pl.DaskExecutor(client), tmp_path, known=True, events=events)
    assert "napping: Dask lost the task (KilledWorker" in str(lost)
    retried = [str(error) for error in events.retried_for(pl.WorkerLost)]
    assert len(retried) == 2, events.seen
    # Both lost with one Dask task, as Dask's KilledWorker names it: a worker also holds Dask
    # tasks queued for it, so two tasks lost with a worker do not show that they were packed.
    assert len({key for error in retried for key in re.findall(r"'(napping-\w+)'", error)}) == 1, retried
    wait_for_a_worker_in_place_of(victim, client)


def wait_for_a_worker_in_place_of(victim: int, client: Any) -> None:
    """Dask's nanny starts a new worker process in the killed one's place: later tests need both."""

    def restarted() -> bool:
        pids = client.run(os.getpid).values()
        return len(pids) == 2 and victim not in pids

    wait_for(restarted, "Dask to restart the killed worker")


def test_an_app_never_measured_runs_a_task_per_dask_task_then_its_short_tasks_are_packed(client: Any) -> None:
    unmeasured_then_packed(pl.DaskExecutor(client), in_engine_task)


def test_long_tasks_never_share_a_dask_task(client: Any) -> None:
    long_tasks_never_share(pl.DaskExecutor(client), in_engine_task)


def test_a_task_failing_in_a_pack_fails_alone(client: Any) -> None:
    a_failing_task_fails_alone(pl.DaskExecutor(client), in_engine_task, "Dask")


def test_cancelling_one_task_of_a_pack_lets_its_pack_mates_finish(client: Any, tmp_path: Path) -> None:
    cancelling_one_of_a_pack_spares_the_rest(pl.DaskExecutor(client), in_engine_task, tmp_path)


def test_cancelling_every_task_of_a_pack_cancels_its_dask_task(client: Any, tmp_path: Path) -> None:
    busy_markers, never = tmp_path / "busy", tmp_path / "never"
    busy_markers.mkdir()
    never.mkdir()

    async def scenario() -> list[tuple[int, str]]:
        executor = pl.DaskExecutor(client)
        await taught(executor, in_engine_task)
        try:
            # Naps never measured: one to a Dask task, a worker busy with each. Then two short
            # tasks make one pack, which Dask holds.
            busy = [executor.submit(spec(i, napping, i, 1.0, str(busy_markers))) for i in range(2)]
            await asyncio.to_thread(wait_for, lambda: len(list(busy_markers.iterdir())) == 2, "both workers busy")
            for i in (2, 3):
                executor.submit(spec(i, in_engine_task, i, 0.0, False, str(never)))
            await asyncio.sleep(0.2)  # the pack reaches Dask
            executor.cancel(2)
            executor.cancel(3)
            await asyncio.wait_for(asyncio.gather(*busy), 60)
            await asyncio.sleep(0.5)
            # No longer counted as at Dask: four short tasks make a pack for each idle worker thread.
            after = [executor.submit(spec(i, in_engine_task, i)) for i in range(4, 8)]
            return [r.value for r in await asyncio.wait_for(asyncio.gather(*after), 60)]
        finally:
            await executor.shutdown()

    after = asyncio.run(scenario())
    assert not any(never.iterdir()), "a cancelled pack ran"
    assert len(engine_tasks(after)) == 2, after


def test_cancel_cancels_the_dask_future_of_a_task_not_started(runtime: pl.Runtime, client: Any, tmp_path: Path) -> None:
    markers, never = tmp_path / "markers", tmp_path / "never"
    markers.mkdir()
    busy = [runtime.submit(napping(i, 1.5, str(markers))) for i in range(2)]
    wait_for(lambda: len(list(markers.iterdir())) == 2, "both workers to be busy")
    queued = runtime.submit(touching(str(never)))
    time.sleep(0.2)  # it reaches Dask, which holds it: both workers are busy
    assert queued.cancel()
    assert [f.result(timeout=60)[0] for f in busy] == [0, 1]
    time.sleep(0.5)
    assert not never.exists(), "a cancelled task ran"
    wait_for(lambda: not client.processing() or not any(client.processing().values()), "Dask to forget it")


def test_an_app_with_a_timeout_is_refused_as_dask_cannot_stop_a_running_task(client: Any) -> None:
    timed = pl.app(timeout=5)(lambda x: x)
    with (
        pl.Runtime(executors=[pl.DaskExecutor(client)]) as rt,
        pytest.raises(ValueError, match="cannot stop a running task"),
    ):
        rt.run(timed(1), timeout=60)


def test_with_nothing_given_it_starts_and_stops_its_own_local_cluster() -> None:
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    executor = pl.DaskExecutor()
    with pl.Runtime(executors=[executor]) as rt:
        assert rt.run(pi_estimate(), timeout=60) == PI_EXPECTED
        workers = executor.client.run(os.getpid)
        assert len(workers) == 2
        assert set(workers.values()).isdisjoint(before)
    wait_for(lambda: not any(psutil.pid_exists(pid) for pid in workers.values()), "its workers to stop", 30)


def test_its_own_cluster_admits_no_stranger_and_serves_no_pages() -> None:
    # A stranger on the node: no credentials, only the ports it can find on loopback.
    executor = pl.DaskExecutor()
    with pl.Runtime(executors=[executor]) as rt:
        assert rt.run(pi_estimate(), timeout=60) == PI_EXPECTED
        scheduler = executor.client.scheduler.address
        assert scheduler.startswith("tls://127.0.0.1:")
        # Its own certificate (TLS with a key of its own), or none (plain TCP).
        for address, security in (
            (scheduler, distributed.Security.temporary()),
            (scheduler.replace("tls", "tcp"), None),
        ):
            with pytest.raises((OSError, TimeoutError)):
                distributed.Client(address, security=security, timeout=3)
        for port in _http_ports(executor):
            with pytest.raises(urllib.error.HTTPError, match="404"):
                urllib.request.urlopen(f"http://127.0.0.1:{port}/info/main/workers.html", timeout=5)


def test_a_script_that_starts_its_own_cluster_at_its_top_level_is_told_to_guard_it(tmp_path: Path) -> None:
    # Dask spawns its workers: each imports the script again, which starts another cluster
    # there; Dask's own report of that is hundreds of lines, the reason in the children's.
    script = tmp_path / "unguarded.py"
    script.write_text(
        "import plait as pl\n"
        "square = pl.app(lambda x: x * x)\n"
        "with pl.Runtime([pl.DaskExecutor()], progress=False) as rt:\n"
        "    print(rt.run(square(3)))\n"
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("RuntimeError: DaskExecutor(): the workers of its own LocalCluster failed to start")
    assert f"import your script {script} again" in last
    assert 'put that under `if __name__ == "__main__":`' in last


def _http_ports(executor: pl.DaskExecutor) -> list[int]:
    workers = executor.client.run(lambda dask_worker: dask_worker.http_server.port)
    ports = [executor.client.cluster.scheduler.http_server.port, *workers.values()]
    assert len(ports) == 3
    return ports


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pt.exprs(max_leaves=8))
def test_random_graphs_give_the_same_outcome_on_dask_and_on_threads(runtime: pl.Runtime, expr: pl.Expr[int]) -> None:
    pt.assert_equivalent(expr, pt.local_runtime(), runtime)


def test_without_distributed_installed_it_says_which_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(ImportError, match=r"DaskExecutor needs the distributed package: pip install plait\[dask\]"):
        pl.DaskExecutor()


def test_its_own_cluster_without_cryptography_says_which_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "cryptography", None)
    with pytest.raises(ImportError, match=r"DaskExecutor needs the cryptography package: pip install plait\[dask\]"):
        pl.DaskExecutor()
    pl.DaskExecutor("tls://scheduler:8786")  # a site's cluster: its security is the site's
