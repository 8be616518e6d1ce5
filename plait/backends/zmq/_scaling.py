"""When a ZMQExecutor starts more blocks and when it lets an idle one go: pure decisions."""

from __future__ import annotations

import math
from collections.abc import Collection, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from plait.backends.zmq._pool_table import RegisteredPool

__all__ = ["blocks_to_start", "may_scale_in", "pools_to_drain"]


def blocks_to_start(
    *, queued: int, running: int, starting: int, per_block: int, min_blocks: int, max_blocks: int
) -> int:
    """How many blocks to submit now.

    ``queued`` tasks wait for room in a pool; ``running`` blocks have a pool registered
    and ``starting`` ones were submitted but have not registered yet (their room is
    counted as coming). Never more than ``max_blocks`` in all, never fewer than
    ``min_blocks``.

    >>> blocks_to_start(queued=10, running=1, starting=0, per_block=4, min_blocks=0, max_blocks=8)
    3
    >>> blocks_to_start(queued=10, running=1, starting=2, per_block=4, min_blocks=0, max_blocks=8)
    1
    >>> blocks_to_start(queued=100, running=1, starting=0, per_block=4, min_blocks=0, max_blocks=2)
    1
    >>> blocks_to_start(queued=0, running=0, starting=0, per_block=4, min_blocks=1, max_blocks=2)
    1
    """
    have = running + starting
    wanted = max(min_blocks - have, math.ceil(queued / max(per_block, 1)) - starting)
    return max(0, min(wanted, max_blocks - have))


def may_scale_in(*, idle_for: float, idle_timeout: float, queued: int, blocks: int, min_blocks: int) -> bool:
    """Whether a pool with nothing in flight may be drained and its block cancelled.

    >>> may_scale_in(idle_for=31.0, idle_timeout=30.0, queued=0, blocks=2, min_blocks=1)
    True
    >>> may_scale_in(idle_for=31.0, idle_timeout=30.0, queued=0, blocks=1, min_blocks=1)
    False
    >>> may_scale_in(idle_for=31.0, idle_timeout=30.0, queued=5, blocks=2, min_blocks=0)
    False
    """
    return queued == 0 and idle_for >= idle_timeout and blocks > min_blocks


def pools_to_drain(
    pools: Collection[RegisteredPool],
    *,
    now: float,
    drain_after: float | None,
    idle_timeout: float,
    queued: int,
    blocks: int,
    min_blocks: int,
) -> Iterator[tuple[RegisteredPool, str]]:
    """The pools to drain now, each with why: its block is ``drain_after`` seconds old (near
    its walltime), or it has had nothing to do for ``idle_timeout`` while nothing is
    ``queued`` (never leaving fewer than ``min_blocks`` of the ``blocks``).

    Records when each pool became idle (``idle_since``). Lazy: a pool is drained before the next
    one is judged, as a draining one is judged differently.
    """
    staying = blocks - sum(p.draining for p in pools)
    for pool in list(pools):
        if drain_after is not None and not pool.draining and now - pool.joined >= drain_after:
            staying -= 1
            yield pool, f"{pool.where()} is near its block's walltime"
            continue
        if pool.inflight or pool.draining:
            pool.idle_since = None
            continue
        pool.idle_since = idle_since = pool.idle_since or now
        idle_for = now - idle_since
        if may_scale_in(
            idle_for=idle_for, idle_timeout=idle_timeout, queued=queued, blocks=staying, min_blocks=min_blocks
        ):
            staying -= 1
            yield pool, f"{pool.where()} idle for {idle_for:.0f} s"
