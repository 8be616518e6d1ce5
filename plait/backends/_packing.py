"""How many plait tasks go into one engine task, decided from how long they take.

An engine such as Ray costs the driver about as much CPU per task as a no-op task takes
to run, so short tasks are packed: several plait tasks run one after another as one engine
task, and the engine's cost is paid once per pack. A pack must stay short, or it would cost
parallelism and make results late: a task's run time is learnt from earlier tasks of its
app, and a task never measured goes alone, so a first wave of long tasks is never packed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["CAP", "TARGET", "pack_sizes", "typical"]

# A pack runs about this long (s): the engine's ~0.5 ms per task is then a few % of it, and
# a result waits at most this long for its pack-mates.
TARGET = 0.02

# At most this many tasks a pack: what one lost worker takes with it stays small.
CAP = 64

# How much a new measurement moves the expected run time: a few tasks of a new kind suffice.
_WEIGHT = 0.25


def typical(expected: float | None, measured: float) -> float:
    """The run time (s) to expect of an app's next task, after one more was measured.

    A moving average, so that an app whose tasks grow longer soon stops being packed.

    >>> typical(None, 0.5)
    0.5
    >>> typical(0.5, 1.5)
    0.75
    """
    return measured if expected is None else expected + _WEIGHT * (measured - expected)


def pack_sizes(expected: Sequence[float | None], idle_cpus: int, target: float = TARGET, cap: int = CAP) -> list[int]:
    """Cut tasks, in order, into packs: the size of each pack.

    ``expected`` is each task's expected run time, None for an app never measured. A task
    never measured goes alone; the others join the pack before them while it stays
    within ``target`` seconds and ``cap`` tasks, and has no more than its share of the tasks
    when they are spread over ``idle_cpus``, so every idle CPU gets work.

    >>> pack_sizes([0.003] * 15, idle_cpus=1)          # 6 of 3 ms fit in the 20 ms target
    [6, 6, 3]
    >>> pack_sizes([0.00001] * 100, idle_cpus=1)       # no-op tasks: the cap
    [64, 36]
    >>> pack_sizes([0.00001] * 10, idle_cpus=2)        # a pack for each idle CPU
    [5, 5]
    >>> pack_sizes([0.5, 0.5, 0.5], idle_cpus=1)       # long tasks go alone
    [1, 1, 1]
    >>> pack_sizes([None, None, 0.001, 0.001], idle_cpus=1)  # so do tasks never measured
    [1, 1, 2]
    >>> pack_sizes([], idle_cpus=4)
    []
    """
    limit = min(cap, math.ceil(len(expected) / max(1, idle_cpus)))
    sizes: list[int] = []
    count, seconds_in_pack = 0, 0.0  # the pack being filled
    for seconds in expected:
        if seconds is not None and 0 < count < limit and seconds_in_pack + seconds <= target:
            count, seconds_in_pack = count + 1, seconds_in_pack + seconds
            continue
        if count:
            sizes.append(count)
        # A task never measured fills its pack at once: it may be long.
        count, seconds_in_pack = 1, math.inf if seconds is None else seconds
    return [*sizes, count] if count else sizes
