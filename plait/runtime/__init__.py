"""How an expression becomes a value: scheduling, failure, retries, memo hooks."""

from plait.runtime._errors import DependencyError, root_cause
from plait.runtime._hooks import MISSING, Memo, Monitor
from plait.runtime._memo import CorruptEntryWarning, MemoWarning, SQLiteMemo
from plait.runtime._monitor import EventLog, Monitors
from plait.runtime._plan import AppPlan, Plan, Step
from plait.runtime._progress import ProgressMonitor
from plait.runtime._runtime import PlaitFuture, Runtime, current_runtime, run

__all__ = [
    "MISSING",
    "AppPlan",
    "CorruptEntryWarning",
    "DependencyError",
    "EventLog",
    "Memo",
    "MemoWarning",
    "Monitor",
    "Monitors",
    "Plan",
    "PlaitFuture",
    "ProgressMonitor",
    "Runtime",
    "SQLiteMemo",
    "Step",
    "current_runtime",
    "root_cause",
    "run",
]
