"""How many plait tasks go into one engine task, decided from how long they take.

An engine such as Ray or Dask costs the driver more CPU per task than a short task takes
to run, so short tasks are packed: several plait tasks run one after another as one engine
task, and the engine's cost is paid once per pack. A pack must stay short, or it would cost
parallelism and make results late: a task's run time is learnt from earlier tasks of its
app, and a task never measured goes alone, so a first wave of long tasks is never packed.

:class:`Packer` keeps that bookkeeping for an executor (Ray, Dask): it cuts what the
runtime submitted into packs and learns from each pack that comes back.
"""

from __future__ import annotations

import asyncio
import itertools
import math
from collections.abc import Iterable, Sequence
from typing import Any

import attrs

from plait.backends._records import Task
from plait.backends._task import TaskResult, TaskSpec

__all__ = ["CAP", "TARGET", "Pack", "Packer", "Resources", "Waiting", "pack_sizes", "typical"]

# A pack runs about this long (s): the engine's cost per task (of the driver's CPU: Ray
# ~0.5 ms, Dask ~1.3 ms) is then a few % of it, and a result waits at most this long for
# its pack-mates.
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


# An app's resources as a dict key: tasks with different ones never share a pack.
Resources = tuple[tuple[str, Any], ...]

# A task submitted and not yet sent to the engine: what it is, as bytes, and its future.
Waiting = tuple[TaskSpec, Task, asyncio.Future[TaskResult]]


@attrs.frozen(eq=False)  # one engine task: two packs are never the same, whatever their tasks
class Pack:
    """plait tasks that run as one engine task, in this order."""

    handle: Any  # the engine's task: a Ray ObjectRef, a Dask future
    specs: tuple[TaskSpec, ...]
    futures: tuple[asyncio.Future[TaskResult], ...]

    @classmethod
    def of(cls, handle: Any, items: Sequence[Waiting]) -> Pack:
        return cls(handle, tuple(spec for spec, _, _ in items), tuple(future for _, _, future in items))

    @property
    def unwanted(self) -> bool:
        """Whether each of its tasks is cancelled or settled: then the engine task is of no use."""
        return all(future.done() for future in self.futures)


class Packer:
    """How an executor packs: each app's expected run time here, and how many packs are out.

    Used from one thread only, the one the executor talks to its engine on.
    """

    def __init__(self) -> None:
        self.cpus = 1  # the cluster's, as the executor counted them at start
        self._out = 0  # packs sent to the engine and not back
        self._typical: dict[bytes, float] = {}  # by fn_key

    def cut(self, waiting: Iterable[Waiting]) -> dict[Resources, list[list[Waiting]]]:
        """The tasks still wanted, grouped by resources, each group cut into packs.

        Each pack returned counts as out from now on: the caller sends every one.
        """
        groups: dict[Resources, list[Waiting]] = {}
        for item in waiting:
            if not item[2].done():  # else cancelled before it was sent
                groups.setdefault(tuple(sorted(item[0].resources.items())), []).append(item)
        packs: dict[Resources, list[list[Waiting]]] = {}
        for resources, group in groups.items():
            # A CPU already busy with a pack of ours needs no share of these to keep working.
            sizes = pack_sizes([self._typical.get(spec.fn_key) for spec, _, _ in group], self.cpus - self._out)
            self._out += len(sizes)
            items = iter(group)
            packs[resources] = [list(itertools.islice(items, size)) for size in sizes]
        return packs

    def ended(self, pack: Pack, results: Sequence[TaskResult]) -> None:
        """A pack came back, run or lost: one fewer out, and the run time of each task learnt."""
        self._out -= 1
        for spec, result in zip(pack.specs, results, strict=True):
            if result.started:  # measured on the worker, even if cancelled meanwhile; a lost one was not
                self._typical[spec.fn_key] = typical(self._typical.get(spec.fn_key), result.ended - result.started)
