"""How an expression becomes a value: scheduling, failure, retries, memo hooks."""

from plait.runtime._errors import DependencyError, root_cause
from plait.runtime._hooks import MISSING, Memo, Monitor
from plait.runtime._runtime import PlaitFuture, Runtime, current_runtime, run

__all__ = [
    "MISSING",
    "DependencyError",
    "Memo",
    "Monitor",
    "PlaitFuture",
    "Runtime",
    "current_runtime",
    "root_cause",
    "run",
]
