"""When a ZMQExecutor starts more blocks and when it lets an idle one go: pure decisions."""

from __future__ import annotations

import math

__all__ = ["blocks_to_start", "may_scale_in"]


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
