"""The worker supervisor as a state machine, without a process: what ProcessExecutor and
each zmq pool are told to do with their workers."""

from __future__ import annotations

from typing import NamedTuple

from plait.backends._supervisor import Supervisor


class _Task(NamedTuple):
    task_id: int
    fn_key: bytes = b"f"
    timeout: float | None = None


def _ids(batch: list[tuple[_Task, bool]]) -> list[int]:
    return [task.task_id for task, _ in batch]


def _started(workers: int, tasks: int, rooms: tuple[int, ...] = (1, 2)) -> Supervisor[_Task]:
    supervisor: Supervisor[_Task] = Supervisor(workers)
    for slot in supervisor.slots:
        supervisor.complete(slot, [])  # each says it has started
    for task_id in range(tasks):
        supervisor.submit(_Task(task_id, timeout=10.0))
    supervisor.assign(rooms)
    return supervisor


def test_every_idle_worker_gets_a_task_before_any_gets_a_second_and_a_function_goes_once() -> None:
    supervisor: Supervisor[_Task] = Supervisor(2)
    for task_id in range(5):
        supervisor.submit(_Task(task_id))
    batches = supervisor.assign((1, 2))
    assert {index: _ids(batch) for index, batch in batches.items()} == {0: [0, 2], 1: [1, 3]}
    assert [send for _, send in batches[0]] == [True, False]
    assert [task.task_id for task in supervisor.queue] == [4]


def test_a_timeout_counts_from_when_the_worker_has_started_and_moves_on_with_each_result() -> None:
    now = [0.0]
    supervisor: Supervisor[_Task] = Supervisor(1, clock=lambda: now[0])
    supervisor.submit(_Task(0, timeout=5.0))
    supervisor.submit(_Task(1, timeout=7.0))
    supervisor.assign((2,))
    assert supervisor.next_deadline() is None  # still starting up
    (slot,) = supervisor.slots
    now[0] = 1.0
    supervisor.complete(slot, [])
    assert supervisor.next_deadline() == 6.0
    now[0] = 5.9
    assert supervisor.expired() == []
    now[0] = 5.5
    assert supervisor.complete(slot, [0]) == [_Task(0, timeout=5.0)]
    assert supervisor.next_deadline() == 12.5
    now[0] = 12.5
    assert supervisor.expired() == [slot]


def test_cancel_drops_what_is_queued_skips_what_a_worker_holds_and_kills_what_runs() -> None:
    supervisor = _started(workers=1, tasks=3)  # 0 runs, 1 waits in the worker, 2 is queued
    (slot,) = supervisor.slots
    cancelled = supervisor.cancel({1, 2})
    assert [task.task_id for task in cancelled.queued] == [2]
    assert {index: [task.task_id for task in held] for index, held in cancelled.skip.items()} == {0: [1]}
    assert cancelled.running == []
    assert supervisor.complete(slot, [0, 1]) == [_Task(0, timeout=10.0), None]  # 1's result says nothing
    assert supervisor.idle()
    assert supervisor.cancel({0}).running == []  # done already


def test_a_lost_worker_fails_its_running_task_requeues_the_rest_first_and_its_replacement_starts_afresh() -> None:
    supervisor = _started(workers=1, tasks=4)  # 0 runs, 1 waits in the worker, 2 and 3 are queued
    (slot,) = supervisor.slots
    assert supervisor.cancel({0}).running == [slot]
    assert supervisor.lose(slot) == _Task(0, timeout=10.0)
    assert [task.task_id for task in supervisor.queue] == [1, 2, 3]
    assert supervisor.assign((1,)) == {}  # a lost worker gets nothing
    assert supervisor.complete(slot, [1]) == []  # what it still says is stale
    fresh = supervisor.replace(slot)
    assert supervisor.slots == [fresh]
    batch = supervisor.assign((1,))[0]
    assert batch == [(_Task(1, timeout=10.0), True)]  # its function again: a new process
    assert supervisor.next_deadline() is None  # until it says it has started


def test_a_task_told_to_skip_is_not_requeued_when_its_worker_is_lost() -> None:
    supervisor = _started(workers=1, tasks=3, rooms=(3,))
    (slot,) = supervisor.slots
    supervisor.cancel({1})
    supervisor.lose(slot)
    assert [task.task_id for task in supervisor.queue] == [2]
