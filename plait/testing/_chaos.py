"""ChaosExecutor: a seeded executor that fails, loses, delays and reorders tasks.

Every decision about a task is drawn from a generator seeded with ``(seed, the task's
content, the attempt number)``: the app's identity and its resolved arguments, never
the order tasks arrive in or their task ids. Rerunning a failing test with the same
seed therefore injects the same faults into the same calls, on any schedule.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from typing import Literal

import attrs
import msgspec

from plait.backends import Executor, TaskResult, TaskSpec, ThreadExecutor, WorkerLost
from plait.dsl._token import Untokenizable, digest, token_of

__all__ = ["ChaosError", "ChaosEvent", "ChaosExecutor"]

Fault = Literal["ok", "fail", "lost-before", "lost-after"]

# A straggler is held this many times the upper bound of ``delay``.
_SLOW_FACTOR = 10.0


class ChaosError(Exception):
    """A transient failure injected by a :class:`ChaosExecutor`: the app itself did not run."""


@attrs.frozen
class ChaosEvent:
    """What a ChaosExecutor decided for one attempt of one call (``call``: its identity, hex)."""

    name: str
    call: str
    attempt: int
    fault: Fault
    delay: float


@attrs.frozen
class _Plan:
    fault: Fault
    delay: float


def task_identity(spec: TaskSpec) -> bytes:
    """The content of a call: its function's key and its resolved arguments.

    Arguments with no deterministic token fall back to their ``repr``, which is
    stable for most values a test passes.

    >>> from plait.backends import TaskSpec
    >>> a = TaskSpec(1, "f", b"k", print, (1, [2]), {})
    >>> b = TaskSpec(9, "f", b"k", print, (1, [2]), {})
    >>> task_identity(a) == task_identity(b) != task_identity(TaskSpec(1, "f", b"k", print, (2,), {}))
    True
    """
    try:
        args = token_of((spec.args, dict(spec.kwargs)))
    except Untokenizable:
        args = repr((spec.args, sorted(spec.kwargs.items()))).encode()
    return digest(spec.fn_key, args)


class ChaosExecutor:
    """Runs tasks on ``inner`` (4 threads by default), injecting seeded faults.

    Per attempt of a call, with the given probabilities: ``fail_rate`` fails it with
    :class:`ChaosError` before it runs; ``lose_rate`` fails it with ``WorkerLost``,
    half the time before it runs and half the time *after* it ran (so an app that is
    not safe to run twice shows it). Every completion is held ``delay=(lo, hi)``
    seconds, which reorders them; ``slow_rate`` of the tasks straggle for ten times
    ``hi``. The runtime's retries (``Runtime(retries=..., lost_retries=...)``) must
    absorb the faults; :func:`plait.testing.chaos_runtime` sets them up.

    ``events`` records every decision, in the order tasks arrived.
    """

    def __init__(
        self,
        seed: int = 0,
        *,
        fail_rate: float = 0.0,
        lose_rate: float = 0.0,
        delay: tuple[float, float] = (0.0, 0.0),
        slow_rate: float = 0.0,
        inner: Executor | None = None,
        label: str | None = None,
    ) -> None:
        for name, rate in (("fail_rate", fail_rate), ("lose_rate", lose_rate), ("slow_rate", slow_rate)):
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"ChaosExecutor: {name} must be between 0 and 1, not {rate!r}")
        if fail_rate + lose_rate > 1.0:
            raise ValueError(f"ChaosExecutor: fail_rate + lose_rate must be at most 1, not {fail_rate + lose_rate!r}")
        lo, hi = delay
        if not 0.0 <= lo <= hi:
            raise ValueError(f"ChaosExecutor: delay must be (lo, hi) with 0 <= lo <= hi, not {delay!r}")
        self.seed = seed
        self.fail_rate = fail_rate
        self.lose_rate = lose_rate
        self.delay = (float(lo), float(hi))
        self.slow_rate = slow_rate
        self.inner: Executor = inner if inner is not None else ThreadExecutor(4)
        self.label = label or self.inner.label
        self.events: list[ChaosEvent] = []
        self._attempts: Counter[bytes] = Counter()
        # task id -> (the future the runtime holds, the pending delayed completion if any)
        self._open: dict[int, tuple[asyncio.Future[TaskResult], asyncio.TimerHandle | None]] = {}

    @property
    def capacity(self) -> int:
        return self.inner.capacity

    @property
    def can_kill(self) -> bool:
        return self.inner.can_kill

    @property
    def in_flight(self) -> int:
        """Tasks submitted and not yet answered: 0 once a run or a cancellation settles."""
        return len(self._open)

    def faults(self) -> Counter[Fault]:
        """How many attempts got each fault so far."""
        return Counter(e.fault for e in self.events)

    def plan(self, identity: bytes, attempt: int) -> _Plan:
        """The fault and delay for ``attempt`` of the call ``identity``: a pure function of the seed."""
        rng = random.Random(digest(str(self.seed).encode(), identity, str(attempt).encode()))
        draw = rng.random()
        fault: Fault = "ok"
        if draw < self.fail_rate:
            fault = "fail"
        elif draw < self.fail_rate + self.lose_rate:
            fault = "lost-before" if rng.random() < 0.5 else "lost-after"
        lo, hi = self.delay
        seconds = hi * _SLOW_FACTOR if rng.random() < self.slow_rate else rng.uniform(lo, hi)
        return _Plan(fault, seconds)

    async def start(self) -> None:
        await self.inner.start()

    def submit(self, spec: TaskSpec) -> asyncio.Future[TaskResult]:
        identity = task_identity(spec)
        self._attempts[identity] += 1
        attempt = self._attempts[identity]
        plan = self.plan(identity, attempt)
        self.events.append(ChaosEvent(spec.name, identity.hex()[:16], attempt, plan.fault, plan.delay))
        outer: asyncio.Future[TaskResult] = asyncio.get_running_loop().create_future()
        self._open[spec.task_id] = (outer, None)
        where = f"{spec.name} attempt {attempt} (chaos seed {self.seed})"
        if plan.fault == "fail":
            error: BaseException = ChaosError(f"injected failure in {where}")
            self._answer(spec.task_id, TaskResult(spec.task_id, error=error), plan)
        elif plan.fault == "lost-before":
            error = WorkerLost(f"injected loss before {where} ran")
            self._answer(spec.task_id, TaskResult(spec.task_id, error=error), plan)
        else:
            inner = self.inner.submit(spec)
            inner.add_done_callback(lambda f: self._inner_done(spec.task_id, f, plan, where))
        return outer

    def _inner_done(self, task_id: int, inner: asyncio.Future[TaskResult], plan: _Plan, where: str) -> None:
        if inner.cancelled():
            self._settle(task_id, None)
            return
        error = inner.exception()
        # An executor answers with a TaskResult; one that raises instead still ends the task.
        result = inner.result() if error is None else TaskResult(task_id, error=error)
        if plan.fault == "lost-after":
            result = msgspec.structs.replace(result, value=None, error=WorkerLost(f"injected loss after {where} ran"))
        self._answer(task_id, result, plan)

    def _answer(self, task_id: int, result: TaskResult, plan: _Plan) -> None:
        entry = self._open.get(task_id)
        if entry is None:  # cancelled meanwhile
            return
        if plan.delay <= 0:
            self._settle(task_id, result)
            return
        handle = asyncio.get_running_loop().call_later(plan.delay, self._settle, task_id, result)
        self._open[task_id] = (entry[0], handle)

    def _settle(self, task_id: int, result: TaskResult | None) -> None:
        entry = self._open.pop(task_id, None)
        if entry is None or entry[0].done():
            return
        if result is None:
            entry[0].cancel()
        else:
            entry[0].set_result(result)

    def cancel(self, task_id: int) -> None:
        entry = self._open.get(task_id)
        if entry is None:
            return
        _, handle = entry
        if handle is not None:  # the inner task has ended: only the delayed answer is left
            handle.cancel()
            self._settle(task_id, None)
        else:
            self.inner.cancel(task_id)

    async def shutdown(self) -> None:
        for task_id in list(self._open):
            self.cancel(task_id)
        await self.inner.shutdown()

    def __repr__(self) -> str:
        return (
            f"ChaosExecutor(seed={self.seed}, fail_rate={self.fail_rate}, lose_rate={self.lose_rate}, "
            f"delay={self.delay}, slow_rate={self.slow_rate}, inner={type(self.inner).__name__})"
        )
