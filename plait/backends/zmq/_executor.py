"""ZMQExecutor: a ROUTER socket on the runtime's loop, feeding worker pools by credit."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plait._tracebacks import user_facing
from plait._version import __version__
from plait.backends._completion import Done, Endings, NextTurn
from plait.backends._encoding import AnyEncoded, TaskEncoder
from plait.backends._errors import WorkerLost
from plait.backends._sampling import NodeSample, Sample, TaskSample
from plait.backends._task import TaskResult, TaskSpec
from plait.backends.providers import LocalProvider, Provider
from plait.backends.providers._base import single_line
from plait.backends.zmq._blocks import Blocks, pool_in
from plait.backends.zmq._curve import Keys, remove_key_file, write_key_file
from plait.backends.zmq._lifecycle import PoolLifecycle
from plait.backends.zmq._pool_table import PoolTable, RegisteredPool
from plait.backends.zmq._protocol import (
    PROTOCOL_VERSION,
    Accept,
    Cancel,
    Drained,
    Heartbeat,
    ProtocolError,
    Refuse,
    Register,
    Results,
    Shutdown,
    Tasks,
    decode,
    encode,
    mismatch,
    pieces,
    python_version,
)
from plait.backends.zmq._router import Router
from plait.staging import Staging, StagingMode, staging_of

if TYPE_CHECKING:  # imported when an environment is packed: it costs start-up ~10 ms otherwise
    from plait.backends._environment import PackedEnvironment

__all__ = ["ZMQExecutor"]

log = logging.getLogger("plait.zmq")


def _chosen_key_file(label: str, key_file: str | os.PathLike[str] | None, encrypted: bool) -> Path | None:
    if key_file is not None and not encrypted:
        raise ValueError(f"ZMQExecutor({label!r}): key_file={str(key_file)!r} with encrypted=False: no keys to write")
    return None if key_file is None else Path(key_file).absolute()


def _check_label(label: object) -> None:
    if not isinstance(label, str):  # BatchExecutor(provider) takes its provider first; this does not
        raise TypeError(
            f"ZMQExecutor's first argument is its label, not a {type(label).__name__}: "
            "pass the provider by name, ZMQExecutor(provider=...)"
        )
    single_line(f"ZMQExecutor({label!r})", "label", label)  # it names the provider's jobs


@user_facing
class ZMQExecutor(PoolLifecycle):
    """Run tasks on worker pools that connect over ZeroMQ: pilot jobs.

    The executor binds a ROUTER socket on ``address`` (``port`` 0 picks a free one) and
    starts ``provider.init_blocks`` pools through ``provider``; each pool runs
    ``provider.workers_per_block`` worker processes and holds at most that many tasks
    plus about 5 ms of work per worker, never more than ``prefetch`` (default: 64 per
    worker): short tasks travel in batches, long ones are not hoarded by one pool. Pools and executor exchange
    heartbeats every ``heartbeat_period`` seconds; a pool silent for
    ``heartbeat_threshold`` is lost (its tasks fail with WorkerLost, which the runtime
    retries), and a pool that stops hearing from the executor exits.

    Every link is CurveZMQ with keys made for this run, loopback included: only a pool
    holding the run's key file (mode 0600, named in its command line) can connect, and
    a pool talks only to this executor. ``encrypted=False`` turns that off: then any
    process that can reach the port can take tasks and answer with pickles the driver
    loads, so it is unsafe on any host with other users (a shared login node is one).
    Pools of a provider whose jobs run on this host (``shares_host``: LocalProvider
    without a container) connect over a unix socket in a directory only this user can
    enter, with the same handshake: a round trip skips TCP's loopback path.

    Blocks scale with the work: when tasks wait, more blocks are submitted, up to
    ``provider.max_blocks``; a pool idle for ``idle_timeout`` seconds is drained and its
    block cancelled (never below ``min_blocks``). A block that ends before its pool
    registers is reported with its output files; after ``max_failed_blocks`` such
    blocks in a row, the executor fails its tasks with that reason. With a batch
    provider, a pool is drained ``walltime_margin`` seconds before its block's walltime
    ends (default: a tenth of the walltime, at most a minute), so no task is cut short.

    Each pool samples its node (CPU, memory, load) every ``usage_interval`` seconds
    (None: never) and sends the samples with its heartbeats; they go to ``on_samples``,
    which a runtime with a monitoring db sets.

    ``environment`` packs the driver's packages at start, for hosts that lack them: each
    host unpacks them once and its pools run in them (see PackedEnvironment).

    ``key_file`` is where to write the pools' half of the keys (mode 0600, replaced at
    each start, removed at shutdown), for pools started by hand with ``plait worker --url
    URL --key-file FILE``; by default a provider's ``job_dir``, else a private directory.

    ``staging`` says whether the pools' hosts share the driver's filesystem (see
    :class:`~plait.staging.Staging`): ``"auto"`` (default) stages files named by URL and
    passes local paths as they are, which suits one machine and clusters with a shared
    filesystem and costs nothing when no URL is used; ``"isolated"`` refuses local paths,
    for hosts that see none of the driver's files; ``"shared"`` stages nothing.
    """

    can_kill = True

    def __init__(
        self,
        label: str = "zmq",
        provider: Provider | None = None,
        *,
        address: str = "127.0.0.1",
        port: int = 0,
        heartbeat_period: float = 2.0,
        heartbeat_threshold: float = 10.0,
        prefetch: int | None = None,
        encrypted: bool = True,
        max_message_bytes: int = 1 << 30,
        idle_timeout: float = 30.0,
        max_failed_blocks: int = 3,
        walltime_margin: float | None = None,
        usage_interval: float | None = 5.0,
        environment: PackedEnvironment | None = None,
        key_file: str | os.PathLike[str] | None = None,
        staging: Staging | StagingMode = "auto",
    ) -> None:
        if not 0 < heartbeat_period < heartbeat_threshold:
            raise ValueError(
                f"ZMQExecutor({label!r}): need 0 < heartbeat_period < heartbeat_threshold, "
                f"got {heartbeat_period} and {heartbeat_threshold}"
            )
        if max_failed_blocks < 1:
            raise ValueError(f"ZMQExecutor({label!r}): max_failed_blocks={max_failed_blocks} must be >= 1")
        if prefetch is not None and prefetch < 0:
            raise ValueError(f"ZMQExecutor({label!r}): prefetch={prefetch} must be >= 0")
        _check_label(label)
        if provider is not None and not isinstance(provider, Provider):
            raise TypeError(
                f"ZMQExecutor({label!r}): provider={provider!r:.60} is not a provider: pass one made, such as "
                "plait.LocalProvider(workers=4) or plait.SlurmProvider(...)"
            )
        if not isinstance(encrypted, bool):  # None once meant "unless loopback": never guess off
            raise TypeError(f"ZMQExecutor({label!r}): encrypted={encrypted!r} must be True or False")
        if usage_interval is not None and usage_interval <= 0:
            raise ValueError(f"ZMQExecutor({label!r}): usage_interval={usage_interval} must be > 0, or None for none")
        self.label, self.staging = label, staging_of(label, staging)
        self.provider: Provider = provider or LocalProvider()
        self.address = address
        self.port = port
        self.heartbeat_period = heartbeat_period
        self.heartbeat_threshold = heartbeat_threshold
        self.prefetch = 64 * self.provider.workers_per_block if prefetch is None else prefetch
        self.encrypted = encrypted
        self.max_message_bytes = max_message_bytes
        self.idle_timeout = idle_timeout
        self.max_failed_blocks = max_failed_blocks
        self.usage_interval = usage_interval
        self.environment = environment
        self.on_samples: Callable[[Sequence[Sample]], None] | None = None
        self.task_usage = True  # a runtime without a monitor sets it False before start
        walltime = self.provider.walltime_seconds
        margin = min(60.0, walltime / 10) if walltime and walltime_margin is None else walltime_margin or 0.0
        self._drain_after = walltime - margin if walltime else None
        self.url = ""
        self.pools_url = ""  # what its own pools connect to: url, or a unix socket's for pools on this host
        self.keys: Keys | None = None
        self.key_file = _chosen_key_file(label, key_file, encrypted)  # the pools' half of the keys, once written
        self._key_directory: Path | None = None  # made for the key file, so removed with it
        self.blocks: Blocks | None = None
        self._router = Router(label, max_message_bytes, self._handle, self._too_big, self._read)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._table = PoolTable(self.prefetch)
        self._pools, self._pending = self._table.pools, self._table.pending  # the same, one lookup nearer
        self._encoder = TaskEncoder(label)
        self._endings = Endings()
        self._flush_soon = NextTurn(self._flush)
        self._ticker: asyncio.TimerHandle | None = None
        self._checking_blocks = False
        self._background: set[asyncio.Task[Any]] = set()
        self._closing = False
        self._broken = ""  # why no pool can come, once that is so
        self._ours: dict[str, str | int] = {
            "protocol": PROTOCOL_VERSION,
            "plait": __version__,
            "python": python_version(),
        }

    @property
    def capacity(self) -> int:
        """Every registered pool's room, and at least what ``max_blocks`` blocks will bring.

        Counting blocks not started yet lets tasks queue here: the queue is what scales out.
        """
        expected = max(1, self.provider.max_blocks) * (self.provider.workers_per_block + self.prefetch)
        return max(expected, self._table.limits)

    @property
    def dropped(self) -> int:
        """How many messages were not ours, or not from a registered pool."""
        return self._router.dropped

    @property
    def pools(self) -> list[str]:
        """The ids of the pools registered now."""
        return [p.pool_id for p in self._pools.values()]

    # -- lifecycle -----------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        if self.encrypted:
            self.keys = Keys.generate()
        host = f"[{self.address}]" if ":" in self.address else self.address
        self.port = self._router.bind(self._loop, host, self.port, self.heartbeat_threshold, self.keys)
        if self.keys is not None:
            job_dir: Path | None = getattr(self.provider, "job_dir", None)
            self.key_file, self._key_directory = write_key_file(self.keys, self.key_file, job_dir)
        self.url = f"tcp://{host}:{self.port}"
        local = self._router.bind_local() if getattr(self.provider, "shares_host", False) else None
        self.pools_url = local or self.url
        self._ticker = self._loop.call_later(self.heartbeat_period, self._tick)
        workers = self.provider.workers_per_block
        packed = await asyncio.to_thread(self.environment.pack) if self.environment is not None else None
        command = functools.partial(pool_in, packed, self.pools_url, workers, self.key_file, task_usage=self.task_usage)
        self.blocks = Blocks(self.provider, self.label, command)
        await asyncio.to_thread(self.blocks.scale_out, self.provider.init_blocks)
        log.info(
            "%s: listening on %s; its pools connect to %s (encrypted: %s)",
            self.label,
            self.url,
            self.pools_url,
            self.encrypted,
        )

    async def shutdown(self) -> None:
        self._closing = True
        if self._ticker is not None:
            self._ticker.cancel()
        self._table.cancel_all()
        for pool in list(self._pools.values()):
            self._router.send(pool.identity, encode(Shutdown()))
        await asyncio.gather(*self._background, return_exceptions=True)
        if self.blocks is not None:
            await asyncio.to_thread(self.blocks.end_all)
        self._router.close()
        remove_key_file(self.key_file, self._key_directory)

    # -- tasks in ----------------------------------------------------------------------

    def submit(self, spec: TaskSpec) -> asyncio.Future[TaskResult]:
        task = self._encoder.encode(spec)
        if self._queue(task):
            self._schedule_flush()
        return task.future

    def submit_calling(self, spec: TaskSpec, done: Done, tag: Any) -> None:
        """``submit``, telling ``tag`` and the result to ``done`` (see CallingExecutor): no future
        per task. Sent when the runtime's drain ends (``send_submitted``): the runtime that
        submits this way calls it, so no flush is scheduled here."""
        self._queue(self._encoder.encode_calling(spec, self._endings, done, tag))

    def _queue(self, task: AnyEncoded) -> bool:
        """Queue ``task`` to send; whether it was (not: it could not be pickled, and has ended)."""
        if not task.call:  # a pickle is never empty
            return False
        self._table.queue(task)
        if self._broken and not self._pools and self.blocks is not None and not self.blocks.jobs:
            self._table.fail_pending(RuntimeError(self._broken), self.label)
        return True

    def cancel(self, task_id: int) -> None:
        pool = self._table.cancel(task_id)
        if pool is not None:
            self._router.send(pool.identity, encode(Cancel([task_id])))  # the pool kills it if it runs
            self._schedule_flush()

    def _schedule_flush(self) -> None:
        # Everything submitted in one turn of the loop goes out as one batch per pool, unless
        # the runtime's drain that submitted it says so sooner (send_submitted).
        if self._loop is not None:
            self._flush_soon.schedule(self._loop)

    def send_submitted(self) -> None:
        """Send now what waits: the drain that submitted it is over (see BatchingExecutor)."""
        self._flush_soon.now()

    def _flush(self) -> None:
        if self._pending and self._table.room:
            self._dispatch()
        self._router.read_soon()

    def _read(self) -> None:
        """A burst of messages was read and handled: tell the tasks that ended in it now, so
        that what their ends free is submitted and sent in this turn (the runtime's drain
        calls send_submitted), and send what waited for the room they left."""
        self._endings.tell()
        if self._pending and self._table.room:
            self.send_submitted()

    def _dispatch(self) -> None:
        """Send pending tasks to the pools with room, one message per pool."""
        for pool, (rows, payloads) in self._table.batches().items():
            if rows and not self._router.send(pool.identity, encode(Tasks(rows), payloads)):
                self._table.unsend(pool, rows)  # to another pool: what the lost one held fails, not these
                self._lose(pool, f"{pool.where()} could not be sent its tasks")

    def _too_big(self, identity: bytes, reason: str) -> None:
        """A message over ``max_message_bytes`` is dropped, and its pool lost: the tasks
        whose results it held would otherwise never end."""
        self._router.drop(identity, reason)
        pool = self._pools.get(identity)
        if pool is not None:
            self._lose(pool, f"{pool.where()} sent {reason}")

    def _handle(self, identity: bytes, frames: list[bytes]) -> None:
        try:
            message, payload = decode(frames)
        except ProtocolError as error:
            self._router.drop(identity, str(error))
            return
        pool = self._pools.get(identity)
        if type(message) is Register:
            self._register(identity, message)
        elif pool is None:
            tag = message.__struct_config__.tag
            self._router.drop(identity, f"a {tag} message from a peer that has not registered")
            # A pool lost, back over a link that came back (as a new peer): its tasks ran elsewhere.
            self._router.send(identity, encode(Refuse(f"refused by executor {self.label!r}: not registered (lost?)")))
        else:
            pool.last_seen = time.monotonic()
            # Narrowed by type(), where typing.cast is a call of Python's each message.
            if type(message) is Results:
                self._endings.held = True  # told when the burst is read (_read)
                rows = message.results
                self._table.complete(pool, rows, pieces(payload, [row.size for row in rows]), self.label)
            elif type(message) is Drained:
                self._forget(pool)
            elif type(message) is Heartbeat:
                if message.samples or message.tasks:
                    self._samples(pool, message.samples, message.tasks)
            else:
                self._router.drop(identity, f"a {message.__struct_config__.tag} message, which pools do not send")

    def _register(self, identity: bytes, message: Register) -> None:
        where = f"pool {message.pool} on {message.host} (pid {message.pid})"
        problem = mismatch(self._ours, message)
        if problem is not None:
            log.error("%s: refused %s: %s", self.label, where, problem)
            # Which versions we run is for the driver's log, not for whoever asked.
            reason = f"refused by executor {self.label!r}: versions differ (its log says which)"
            self._router.send(identity, encode(Refuse(reason)))
            return
        if message.capacity < 1:
            self._router.send(identity, encode(Refuse(f"refused: capacity {message.capacity} < 1")))
            return
        if self._closing:
            self._router.send(identity, encode(Shutdown()))
            return
        again = self._pools.get(identity)
        if again is not None:  # a pool that registers anew has forgotten what it held
            log.warning("%s: %s registered again; its %d tasks are retried", self.label, where, len(again.inflight))
            self._fail_inflight(again, WorkerLost(f"{self.label}: lost what {again.where()} held: it registered again"))
        if again is not None:
            self._table.remove(again)
        workers = message.capacity
        pool = self._table.add(identity, message.pool, message.host, workers, time.monotonic())
        if self.blocks is not None:
            self.blocks.register(pool.pool_id)
        accept = Accept(
            heartbeat_period=self.heartbeat_period,
            heartbeat_threshold=self.heartbeat_threshold,
            sys_path=sys.path,
            usage_interval=self.usage_interval or 0.0,
            max_message_bytes=self.max_message_bytes,
        )
        self._router.send(identity, encode(accept))
        log.info("%s: registered %s with %d workers", self.label, where, workers)
        self._schedule_flush()

    def _samples(self, pool: RegisteredPool, nodes: Any, tasks: Any) -> None:
        source = f"{self.label}/{pool.pool_id}"
        try:
            samples: list[Sample] = [NodeSample.of(pool.host, source, row) for row in nodes]
            # A pool knows the tasks it was sent by the executor's ids, which are the runtime's.
            samples += [TaskSample.of(row) for row in tasks]
        except (TypeError, ValueError) as error:  # not a list, or a malformed row
            self._router.drop(pool.identity, f"bad samples: {error}")
            return
        if self.on_samples is not None:
            self.on_samples(samples)
