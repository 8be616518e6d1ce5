"""Parsl's executors (``parsl.executors``), as descriptions of plait's.

``ThreadPoolExecutor`` becomes plait's :class:`~plait.ThreadExecutor`;
``HighThroughputExecutor`` becomes plait's :class:`~plait.ZMQExecutor`, whose worker
pools its provider starts.
"""

from __future__ import annotations

import os
from typing import Any

import plait as pl
from plait.compat.parsl.providers import LocalProvider

__all__ = ["HighThroughputExecutor", "ThreadPoolExecutor"]

# Parsl settings of a HighThroughputExecutor that change nothing on plait's: its logging,
# ports and polling are its own; plait's pools report and pick ports themselves.
_HTEX_NO_EFFECT = frozenset(
    {
        "launch_cmd", "interchange_launch_cmd", "worker_ports", "worker_port_range", "interchange_port_range",
        "storage_access", "working_dir", "worker_debug", "poll_period", "address_probe_timeout",
        "worker_logdir_root", "mem_per_worker", "cpu_affinity", "drain_period", "loopback_address",
        "manager_selector", "block_error_handler",
    }
)  # fmt: skip


class ThreadPoolExecutor:
    """Tasks on ``max_threads`` threads of this process."""

    def __init__(
        self,
        label: str = "threads",
        max_threads: int | None = 2,
        thread_name_prefix: str = "",
        storage_access: object = None,
        working_dir: str | None = None,
    ) -> None:
        # working_dir is where Parsl stages files for this executor; threads do not chdir
        if storage_access:
            raise TypeError("ThreadPoolExecutor(storage_access=...): this layer stages no files")
        self.label = label
        self.max_threads = max_threads

    def to_plait(self) -> pl.ThreadExecutor:
        return pl.ThreadExecutor(self.max_threads, label=self.label)

    def __repr__(self) -> str:
        return f"ThreadPoolExecutor(label={self.label!r}, max_threads={self.max_threads!r})"


class HighThroughputExecutor:
    """Pilot-job worker pools that connect back over ZeroMQ: plait's ZMQExecutor.

    ``encrypted`` defaults to True, as in Parsl: pools prove they hold the run's keys
    (CurveZMQ), also on loopback.
    """

    def __init__(
        self,
        label: str = "HighThroughputExecutor",
        provider: Any = None,
        *,
        address: str | None = None,
        cores_per_worker: float = 1.0,
        max_workers_per_node: int | float | None = None,
        max_workers: int | float | None = None,
        prefetch_capacity: int = 0,
        heartbeat_period: float | None = None,
        heartbeat_threshold: float | None = None,
        encrypted: bool = True,
        **ignored: Any,
    ) -> None:
        unknown = set(ignored) - _HTEX_NO_EFFECT
        if unknown:
            raise TypeError(f"HighThroughputExecutor: unexpected arguments {sorted(unknown)}")
        self.label = label
        self.provider = provider if provider is not None else LocalProvider()
        self.address = address or "127.0.0.1"
        self.cores_per_worker = cores_per_worker
        self.max_workers_per_node = max_workers_per_node if max_workers_per_node is not None else max_workers
        self.prefetch_capacity = prefetch_capacity
        self.heartbeat = {"heartbeat_period": heartbeat_period, "heartbeat_threshold": heartbeat_threshold}
        self.encrypted = encrypted

    def workers_per_node(self) -> int | None:
        """Parsl's rule: at most ``max_workers_per_node``, else a worker per ``cores_per_worker``."""
        if self.max_workers_per_node is not None and self.max_workers_per_node != float("inf"):
            return max(1, int(self.max_workers_per_node))
        if self.cores_per_worker != 1.0:
            return max(1, int((os.cpu_count() or 1) / self.cores_per_worker))
        return None

    def to_plait(self) -> pl.ZMQExecutor:
        heartbeat: dict[str, Any] = {k: v for k, v in self.heartbeat.items() if v is not None}
        return pl.ZMQExecutor(
            self.label,
            self.provider.to_plait(self.workers_per_node()),
            address=self.address,
            prefetch=self.prefetch_capacity or None,
            encrypted=self.encrypted,
            **heartbeat,
        )

    def __repr__(self) -> str:
        return f"HighThroughputExecutor(label={self.label!r}, provider={self.provider!r})"
