"""What the interpreter tells observers and asks of a memo. Both are optional."""

from __future__ import annotations

from typing import Any, Protocol

from plait.backends import TaskUsage

__all__ = ["Memo", "Monitor", "MISSING"]

MISSING: Any = object()


class Memo(Protocol):
    """A store of results by node key that outlives a run."""

    def get(self, key: bytes) -> Any:
        """The stored value, or ``MISSING``."""
        ...

    def put(self, key: bytes, name: str, value: Any) -> None: ...

    def close(self) -> None: ...


class Monitor(Protocol):
    """Receives every state change of every task, on the runtime's thread: keep it cheap.

    A monitor may also have ``samples(samples: Sequence[NodeSample | TaskSample])``:
    executors that look at their nodes and running tasks (zmq pools, local processes)
    then hand it what they saw. And ``failed_call(spec: TaskSpec)``: the interpreter
    then hands it the call of each task that failed for good, to keep for ``plait debug``.
    And ``settled()``: called just before a submitted
    Expr's result is handed over, so what it draws comes before what the program does next.
    And ``pending_at_start = True``: a call without inputs is then told ``pending`` when it
    starts, not when it is admitted, its ``at`` the time it was admitted (a big gather's
    calls wait unstarted, with no node each; without it, each is made a node and told
    pending at admission, as a progress bar's total needs). A call never started, because
    what needed it failed or was cancelled first, is then told nothing.
    """

    def task_event(
        self,
        state: str,
        task_id: int,
        name: str,
        key: bytes,
        *,
        executor: str = "",
        worker: str = "",
        attempt: int = 1,
        error: BaseException | None = None,
        at: float = 0.0,
        usage: TaskUsage | None = None,
    ) -> None:
        """``at`` is when it happened by the wall clock where it happened (0: now).

        ``usage`` comes with an attempt that ran (done, failed, retried) on an executor
        that measures what tasks use.
        """
        ...

    def close(self) -> None: ...
