"""Parsl's ``Config``: which executors, how often to retry, where the run keeps its files."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from plait.compat.parsl.errors import ConfigurationError
from plait.compat.parsl.executors import ThreadPoolExecutor

__all__ = ["Config"]

# Parsl settings that change nothing here: plait scales its pools and manages its memory
# itself, and keeps no usage statistics.
_NO_EFFECT = frozenset(
    {"strategy", "strategy_period", "max_idletime", "usage_tracking", "project_name", "initialize_logging",
     "garbage_collect", "dependency_resolver", "monitoring", "app_cache"}
)  # fmt: skip


class Config:
    """A run's configuration, given to ``parsl.load``.

    ``executors`` (default: one ``ThreadPoolExecutor``); the first is where apps with
    ``executors='all'`` run. ``retries`` is how many times a failed task is tried again,
    ``retry_handler(exception, task_record)`` the cost of a failure (default 1).
    ``std_autopath(task_record, "stdout")`` names the file of ``stdout=parsl.AUTO_LOGNAME``.
    ``exit_mode`` is what leaving ``with parsl.load(config):`` does: ``cleanup`` (shut
    down), ``wait`` (wait for the tasks first, unless leaving on an exception), ``skip``.
    """

    def __init__(
        self,
        executors: Iterable[Any] | None = None,
        *,
        retries: int = 0,
        retry_handler: Callable[[BaseException, dict[str, Any]], float] | None = None,
        run_dir: str = "runinfo",
        exit_mode: str = "cleanup",
        internal_tasks_max_threads: int = 10,
        std_autopath: Callable[[dict[str, Any], str], Any] | None = None,
        **ignored: Any,
    ) -> None:
        unknown = set(ignored) - _NO_EFFECT
        if unknown:
            raise ConfigurationError(f"Config: unexpected arguments {sorted(unknown)}")
        if ignored.get("monitoring") is not None:
            raise ConfigurationError("Config(monitoring=...): use plait's own monitoring, pl.Runtime(monitor=...)")
        self.executors: Sequence[Any] = tuple(executors or ()) or (ThreadPoolExecutor(),)
        labels = [e.label for e in self.executors]
        if len(set(labels)) != len(labels):
            raise ConfigurationError(f"Executors must have unique labels, got {labels}")
        if exit_mode not in ("cleanup", "skip", "wait"):
            raise TypeError(f"exit_mode must be 'cleanup', 'skip' or 'wait', not {exit_mode!r}")
        self.retries = retries
        self.retry_handler = retry_handler
        self.run_dir = run_dir
        self.exit_mode = exit_mode
        self.internal_tasks_max_threads = internal_tasks_max_threads
        self.std_autopath = std_autopath

    def __repr__(self) -> str:
        return f"Config(executors={list(self.executors)!r}, retries={self.retries!r}, run_dir={self.run_dir!r})"
