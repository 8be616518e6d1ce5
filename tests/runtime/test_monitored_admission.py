"""A monitored graph's admission: what the driver makes for its calls before they start (issue 19, goal 5)."""

from __future__ import annotations

import gc
import sqlite3
import time
from pathlib import Path
from typing import Any

import plait as pl
from plait._collector import Collector
from plait.runtime._interpreter import QUEUED_AHEAD, Interpreter
from plait.runtime._monitor import EventLog, Monitors
from plait.runtime._nodes import Node
from tests.runtime.test_node_memory import GATE, held  # a call that waits for GATE
from tests.waiting import wait_for

CALLS = 200


@pl.app(pure=False)
def noop(x: int) -> int:
    return x


class Recorder:
    """A monitor of the user's: it hears of each call as it is admitted."""

    def __init__(self) -> None:
        self.pending = 0

    def task_event(self, state: str, task_id: int, name: str, key: bytes, **info: Any) -> None:
        self.pending += state == "pending"

    def close(self) -> None:
        pass


def nodes(interpreter: Interpreter) -> int:
    """Nodes in the index (a call not started yet is marked by its user's node)."""
    return len({id(entry) for entry in interpreter.index.values() if isinstance(entry, Node)})


def test_a_monitoring_db_leaves_a_gathers_calls_unstarted_and_dates_each_pending_by_its_admission(
    tmp_path: Path,
) -> None:
    GATE.clear()
    with pl.Runtime([pl.ThreadExecutor(1)], monitor=tmp_path / "run.db", progress=False) as rt:
        future = rt.submit(pl.traverse(held, range(CALLS)))
        interpreter = rt._interpreter
        wait_for(lambda: interpreter.inflight["threads"] > 0, "the first call sent", timeout=10)
        admitted = time.time()
        # The gather's node and the few calls that keep the worker's queue full: not a node
        # and a pending event per call (CALLS + 1 nodes when a monitor made them all at admission).
        assert nodes(interpreter) <= 1 + 2 * QUEUED_AHEAD, f"{nodes(interpreter)} nodes for {CALLS} calls admitted"
        time.sleep(0.3)  # the calls wait their turn
        GATE.set()
        assert future.result(30) == list(range(CALLS))
    db = sqlite3.connect(tmp_path / "run.db")
    try:
        rows = db.execute("SELECT pending, dispatched FROM attempts ORDER BY task").fetchall()
    finally:
        db.close()
    assert len(rows) == CALLS
    # Each call entered pending when the gather was admitted, not when its node was made:
    # dispatched - pending holds the whole wait, 0.3 s and more for the last ones.
    assert all(pending <= admitted for pending, _ in rows), "a pending time after the calls were admitted"
    assert max(dispatched - pending for pending, dispatched in rows) >= 0.3


@pl.app(pure=False)
def first_fails(x: int) -> int:
    if x == 0:
        raise ValueError("the first call fails")
    return x


def test_a_call_that_never_started_because_its_gather_failed_first_has_no_row(tmp_path: Path) -> None:
    # One worker: the first call fails while the few queued behind it wait, and the gather
    # fails; the rest were never started, so they are no tasks (each a cancelled row when
    # a monitor made every call a node at admission).
    with pl.Runtime([pl.ThreadExecutor(1)], monitor=tmp_path / "run.db", progress=False) as rt:
        future = rt.submit(pl.traverse(first_fails, range(CALLS)))
        assert future.exception(30) is not None
    db = sqlite3.connect(tmp_path / "run.db")
    try:
        states = dict(db.execute("SELECT state, count(*) FROM attempts GROUP BY state").fetchall())
    finally:
        db.close()
    assert states["failed"] == 1
    assert sum(states.values()) <= 1 + 2 * QUEUED_AHEAD, states


def test_a_monitor_beside_the_db_that_counts_calls_as_admitted_still_hears_of_each_at_admission(
    tmp_path: Path,
) -> None:
    recorder = Recorder()
    GATE.clear()
    monitor = Monitors([recorder, EventLog(tmp_path / "run.db")])
    with pl.Runtime([pl.ThreadExecutor(1)], monitor=monitor, progress=False) as rt:
        future = rt.submit(pl.traverse(held, range(50)))
        wait_for(lambda: recorder.pending == 50, "a pending event for each call", timeout=10)
        GATE.set()
        assert future.result(30) == list(range(50))


def test_a_graph_admitted_with_a_monitor_raises_the_collectors_threshold_before_its_nodes_are_made() -> None:
    # A monitor that hears of calls at admission makes a node of each: 20 000 nodes that
    # live on, walked by a young collection every 700 (26 of them) if the threshold is
    # raised only after they are made.
    graph = pl.traverse(noop, range(20_000))
    interpreter = Interpreter(
        {"threads": pl.ThreadExecutor(1)},
        retry=pl.Retry(),
        lost_retries=0,
        monitor=Recorder(),
        collector=Collector(50_000),
    )
    young = 0

    def count(phase: str, info: dict[str, int]) -> None:
        nonlocal young
        young += phase == "start" and info["generation"] == 0

    before = gc.get_threshold()
    assert before[0] < 20_000, "the test needs the threshold below the graph's size"
    gc.callbacks.append(count)
    try:
        interpreter.admit(graph)
    finally:
        gc.callbacks.remove(count)
        interpreter.collector.idle()
    assert nodes(interpreter) == 20_001
    assert young <= 1, f"{young} young collections while 20 000 nodes were made"
