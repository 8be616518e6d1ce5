"""How an expression becomes a value: scheduling, failure, retries, memo hooks."""

from typing import TYPE_CHECKING

from plait.runtime._errors import DependencyError, root_cause
from plait.runtime._future import PlaitFuture
from plait.runtime._hooks import MISSING, Memo, Monitor
from plait.runtime._monitor import EventLog, Monitors
from plait.runtime._open_runtimes import current_runtime, run  # registers Expr.awaitable's runtime
from plait.runtime._progress import ProgressMonitor
from plait.runtime._runtime import Runtime

# Imported when first used (see plait._lazy): a Runtime starts without the memo store and
# the planner, which it loads when it is given a cache file or asked for a plan.
if TYPE_CHECKING:
    from plait.runtime._memo import CorruptEntryWarning, MemoWarning, SQLiteMemo
    from plait.runtime._plan import AppPlan, Plan, Step
else:
    from plait._lazy import exports

    __getattr__, __dir__ = exports(
        __name__,
        {
            "plait.runtime._memo": ["CorruptEntryWarning", "MemoWarning", "SQLiteMemo"],
            "plait.runtime._plan": ["AppPlan", "Plan", "Step"],
        },
    )

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
