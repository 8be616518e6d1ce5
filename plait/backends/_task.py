"""What crosses between the runtime and an executor: TaskSpec in, TaskResult out."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import msgspec

if TYPE_CHECKING:  # only named: a worker pool, which imports this module, starts ~15 ms sooner without it
    import asyncio

from plait.backends._usage import TaskUsage

__all__ = ["Executor", "TaskResult", "TaskSpec", "running", "running_task", "task_error"]


# The records an executor gets and gives are msgspec Structs, not attrs classes: frozen,
# slotted values all the same, made per task, where attrs' frozen __init__ (a bound
# object.__setattr__ per field) cost ~0.9 µs for a TaskSpec and ~1.3 µs for a TaskResult
# made by keyword, and a Struct ~0.1-0.15 (docs/performance.md, round four). A changed copy is
# ``msgspec.structs.replace(result, value=...)``.


class TaskSpec(msgspec.Struct, frozen=True):
    """One call to run: the function, its resolved arguments, and how to run it.

    ``fn_key`` identifies the function (an app's identity hash), so an executor that
    ships functions to other processes pickles each one once and workers cache it.
    """

    task_id: int
    name: str
    fn_key: bytes
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: Mapping[str, Any]
    timeout: float | None = None
    resources: Mapping[str, Any] = msgspec.field(default_factory=dict)


class TaskResult(msgspec.Struct, frozen=True):
    """How one task ended: ``value`` when ``error`` is None.

    ``worker`` names where it ran; ``started``/``ended`` are wall-clock times there;
    ``usage`` what it used there (CPU time, peak memory), when the executor measures it.
    """

    task_id: int
    value: Any = None
    error: BaseException | None = None
    worker: str = ""
    started: float = 0.0
    ended: float = 0.0
    usage: TaskUsage | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@runtime_checkable
class Executor(Protocol):
    """Where leaves run. An executor never sees an Expr, only TaskSpecs.

    ``submit`` returns an asyncio future of the task's result; it is called on the
    runtime's event loop, after ``start`` and before ``shutdown``. ``capacity`` is how
    many tasks it wants in flight at once: the runtime keeps the rest. ``can_kill``
    says whether it can stop a running task (timeouts and cancellation need that).
    """

    label: str

    @property
    def capacity(self) -> int: ...

    @property
    def can_kill(self) -> bool: ...

    async def start(self) -> None: ...

    def submit(self, spec: TaskSpec) -> asyncio.Future[TaskResult]: ...

    def cancel(self, task_id: int) -> None: ...

    async def shutdown(self) -> None: ...


_this_thread = threading.local()


def running_task() -> str | None:
    """The name of the task this thread is running, or None outside tasks."""
    return getattr(_this_thread, "task", None)


def task_error(error: BaseException, name: str) -> BaseException:
    """What the task ``name`` that raised ``error`` failed with. A ``sys.exit`` in an app is
    its error: raised again in the driver, it ended the whole run with the app's exit code
    and no word of why."""
    if not isinstance(error, SystemExit):
        return error
    failure = RuntimeError(f"{name} called sys.exit({error.code!r}): an app returns a value or raises")
    return failure.with_traceback(error.__traceback__)


class running:
    """Within: this thread runs the task ``name`` (so the runtime can refuse to nest).

    A class, not a ``contextlib.contextmanager``: a worker enters one around every task,
    and a generator's context manager costs seven calls where this costs three.
    """

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __enter__(self) -> None:
        _this_thread.task = self.name

    def __exit__(self, *exc: object) -> None:
        _this_thread.task = None
