"""Which pools a ZMQExecutor drains, decided on plain values: near the block's walltime,
or idle too long while nothing waits, never below ``min_blocks``."""

from __future__ import annotations

from typing import cast

from plait.backends._encoding import EncodedTask
from plait.backends.zmq._pool_table import RegisteredPool
from plait.backends.zmq._scaling import pools_to_drain


def pool(name: str, *, joined: float = 0.0, idle_since: float | None = None, busy: bool = False) -> RegisteredPool:
    made = RegisteredPool(name.encode(), name, "h", 1, 0.0, joined=joined, idle_since=idle_since)
    if busy:
        made.inflight[1] = cast(EncodedTask, object())  # only that it holds one counts
    return made


def drained(pools: list[RegisteredPool], **settings: float | None) -> list[str]:
    decide = {"now": 100.0, "drain_after": None, "idle_timeout": 30.0, "queued": 0, "min_blocks": 0} | settings
    chosen = []
    for each, why in pools_to_drain(pools, blocks=len(pools), **decide):  # type: ignore[arg-type]
        assert why.startswith(each.where())
        each.draining = True  # as the executor does before the next one is judged
        chosen.append(each.pool_id)
    return chosen


def test_idle_pools_are_drained_once_idle_long_enough_and_never_below_min_blocks() -> None:
    pools = [pool("a", idle_since=50.0), pool("b", idle_since=50.0), pool("c", idle_since=90.0)]
    assert drained(pools, min_blocks=2) == ["a"]  # b too would leave fewer than 2; c is idle 10 s only
    assert pools[2].idle_since == 90.0


def test_a_busy_pool_stays_and_forgets_it_was_idle_and_a_new_idle_one_starts_counting() -> None:
    busy, fresh = pool("busy", idle_since=0.0, busy=True), pool("fresh")
    assert drained([busy, fresh]) == []
    assert busy.idle_since is None
    assert fresh.idle_since == 100.0


def test_nothing_idle_is_drained_while_tasks_wait() -> None:
    assert drained([pool("a", idle_since=0.0), pool("b", idle_since=0.0)], queued=1) == []


def test_a_pool_near_its_walltime_is_drained_even_if_busy_or_the_last() -> None:
    old, young = pool("old", joined=10.0, busy=True), pool("young", joined=90.0, busy=True)
    assert drained([old, young], drain_after=60.0, min_blocks=5) == ["old"]
