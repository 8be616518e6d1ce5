"""``rt.plan(expr)`` and ``plait plan``: what a run would do, against a memo holding part of the
graph, worked out without running an app or handing an executor a task."""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path

import pytest

import plait as pl
from plait.backends import TaskResult, TaskSpec
from plait.runtime import EventLog
from plait.runtime._plan import AppPlan
from tests.test_cli_run import plait


@pl.app
def step(x: int, marks: str) -> int:
    Path(marks, f"step-{x}").touch()  # a marker: proof that it ran
    return x + 1


@pl.app
def combine(values: list[int], marks: str) -> int:
    Path(marks, "combine").touch()
    return sum(values)


class Refusing:
    """An executor that records every task it is handed (a plan must hand it none)."""

    label = "refusing"
    capacity = 6
    can_kill = True
    workers = 3

    def __init__(self) -> None:
        self.submitted: list[TaskSpec] = []

    async def start(self) -> None:
        pass

    def submit(self, spec: TaskSpec) -> asyncio.Future[TaskResult]:
        self.submitted.append(spec)
        raise AssertionError(f"a plan submitted {spec.name}")

    def cancel(self, task_id: int) -> None:
        pass

    async def shutdown(self) -> None:
        pass


@pytest.fixture
def marks(tmp_path: Path) -> Path:
    (tmp_path / "marks").mkdir()
    return tmp_path / "marks"


def workflow(marks: Path) -> pl.Expr[list[int]]:
    firsts = [step(i, str(marks)) for i in range(4)]
    # step(10) twice: the same work, one task
    return pl.gather(combine(firsts, str(marks)), step(10, str(marks)), step(10, str(marks)))


def memo_holding_steps_0_and_1(tmp_path: Path, marks: Path) -> Path:
    memo = tmp_path / "memo.db"
    with pl.Runtime([pl.ThreadExecutor(2)], cache=memo, progress=False) as rt:
        rt.run(pl.gather(step(0, str(marks)), step(1, str(marks))))
    for mark in marks.iterdir():
        mark.unlink()
    return memo


def test_plan_counts_what_the_memo_serves_and_runs_nothing(tmp_path: Path, marks: Path) -> None:
    memo = memo_holding_steps_0_and_1(tmp_path, marks)
    executor = Refusing()
    with pl.Runtime([executor], cache=memo, progress=False) as rt:
        plan = rt.plan(workflow(marks))
    assert plan.apps == (AppPlan("combine", 1, 0, 1, None), AppPlan("step", 5, 2, 3, None))
    assert (plan.tasks, plan.cached, plan.to_run) == (6, 2, 4)
    assert [s.name for s in plan.critical_path] == ["step", "combine"]  # no times: the longest chain
    assert plan.unestimated == ("combine", "step") and plan.unknown == ()
    assert list(marks.iterdir()) == [] and executor.submitted == []


def test_a_bind_is_expanded_from_the_memo_and_unknown_when_its_input_must_run(tmp_path: Path, marks: Path) -> None:
    memo = memo_holding_steps_0_and_1(tmp_path, marks)

    def fan_out(v: int) -> pl.Expr[list[int]]:
        return pl.gather(*(step(v + k, str(marks)) for k in range(3)))

    with pl.Runtime([Refusing()], cache=memo, progress=False) as rt:
        served = rt.plan(step(0, str(marks)).bind(fan_out))  # step(0) is 1: step 1 (cached), 2, 3
        blind = rt.plan(step(5, str(marks)).bind(fan_out))
    assert served.apps == (AppPlan("step", 4, 2, 2, None),) and served.unknown == ()
    assert blind.apps == (AppPlan("step", 1, 0, 1, None),)
    (bind,) = blind.unknown
    assert bind.endswith(".fan_out)") and f"unknown beyond {bind}" in str(blind)
    assert list(marks.iterdir()) == []


def record_history(path: Path, durations: dict[str, list[float]]) -> None:
    log = EventLog(path)
    task = 0
    for name, walls in durations.items():
        for wall in walls:
            task += 1
            log.task_event("pending", task, name, b"k", at=100.0)
            log.task_event("running", task, name, b"k", at=100.0)
            log.task_event("done", task, name, b"k", at=100.0 + wall)
    log.close()


def test_times_come_from_the_median_of_earlier_runs(tmp_path: Path, marks: Path) -> None:
    memo = memo_holding_steps_0_and_1(tmp_path, marks)
    history = tmp_path / "run.db"
    record_history(history, {"step": [1.0, 2.0, 30.0], "combine": [5.0]})
    with pl.Runtime([Refusing()], cache=memo, progress=False) as rt:
        plan = rt.plan(workflow(marks), history=history)
    assert [a.median_seconds for a in plan.apps] == [5.0, 2.0]
    assert plan.critical_seconds == pytest.approx(7.0)  # a step to run (2 s), then combine (5 s)
    assert plan.work_seconds == pytest.approx(3 * 2.0 + 5.0)
    assert plan.estimated_seconds == pytest.approx(7.0)  # 11 s of work on 3 workers is less
    assert [(s.name, s.seconds) for s in plan.critical_path] == [("step", 2.0), ("combine", 5.0)]


FLOW = """
import plait as pl
from pathlib import Path

@pl.app
def mark(x: int) -> int:
    Path(f"ran-{x}").touch()
    return x

@pl.app
def add(xs: list[int]) -> int:
    Path("ran-add").touch()
    return sum(xs)

part = pl.gather(mark(1), mark(2))
whole = add([mark(i) for i in range(1, 5)])
"""


def test_plait_plan_prints_the_plan_and_runs_nothing(tmp_path: Path) -> None:
    (tmp_path / "flow.py").write_text(textwrap.dedent(FLOW))
    options = ["--executor", "threads:2", "--cache", "memo.db", "--monitor", "run.db"]
    ran = plait("run", "flow.py:part", *options, cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    for mark in tmp_path.glob("ran-*"):
        mark.unlink()
    planned = plait("plan", "flow.py:whole", *options, cwd=tmp_path)  # the same options as the run
    assert planned.returncode == 0, planned.stderr
    rows = {line.split()[0]: line.split()[1:4] for line in planned.stdout.splitlines()[1:4]}
    assert rows == {"add": ["1", "0", "1"], "mark": ["4", "2", "2"], "total": ["5", "2", "3"]}
    assert "critical path (2 tasks" in planned.stdout and "on 2 workers" in planned.stdout
    assert "no recorded time for: add" in planned.stdout  # mark has times from the run, add none
    assert list(tmp_path.glob("ran-*")) == []
    with pl.monitoring.open(tmp_path / "run.db") as db:
        assert len(db.runs()) == 1  # the plan recorded no run of its own
