"""The worker pool: ``plait worker --url tcp://HOST:PORT --pool-id ID --workers N``
(started by ``_pool_start``).

One pool runs per node. It connects to the executor and registers (``_pool_link``), and
runs N forked worker processes (``_pool_workers``); this module is its loop, one zmq
poller over both: the executor's messages, its workers' results, and its timers
(heartbeats, node samples, task timeouts, the end of a drain).

The pool exits when told to, when drained, when its link to the executor has been down
for the heartbeat threshold, or when whatever listens at the executor's address fails
the handshake: a pool pins the executor's Curve key, so it serves that executor only
and never waits for another process to take over the address.

Workers are forked by the pool's launcher (``plait.backends._launcher``), a child of
the pool forked before anything else (``_pool_start``): when the pool goes, even by SIGKILL, its
launcher kills the workers and everything their tasks started, within milliseconds
(a lost pool's tasks are retried no sooner than the executor's next heartbeat tick).
"""

from __future__ import annotations

import logging
import socket
import time

import zmq

from plait._version import __version__
from plait.backends._launcher import Launcher
from plait.backends._sampling import NodeSampler, SampleRow, TaskSampler, TaskSampleRow
from plait.backends.zmq._pool_link import ExecutorLink
from plait.backends.zmq._pool_workers import Workers
from plait.backends.zmq._protocol import (
    PROTOCOL_VERSION,
    Accept,
    Cancel,
    Drain,
    Drained,
    Heartbeat,
    Message,
    Refuse,
    Shutdown,
    Tasks,
    encode,
    python_version,
)

__all__ = ["Pool"]

log = logging.getLogger("plait.zmq.pool")


class Pool:
    """One pool's state and its event loop (a zmq poller over the DEALER and workers)."""

    def __init__(self, url: str, pool_id: str, workers: int, keys: dict[str, bytes] | None, launcher: Launcher) -> None:
        self.pool_id = pool_id
        self.host = socket.gethostname()
        self.size = workers
        self.draining = False
        self.exit_code: int | None = None
        self.sampler: NodeSampler | None = None  # looks at this node when the executor asks for it
        self.task_sampler: TaskSampler | None = None  # and at the workers of running tasks
        self.sample_every = 0.0
        self.next_sample = 0.0
        self.samplers_due = 0.0  # when to make the samplers, once sampling is asked for
        self.samples: list[SampleRow] = []  # sent with the next heartbeat
        self.task_samples: list[TaskSampleRow] = []
        self.next_due = 0.0  # the first of the timers below but tasks' deadlines (``_timers_moved``)
        self.poller = zmq.Poller()
        self.workers = Workers(pool_id, self.host, workers, self.poller, launcher)
        self.link = ExecutorLink(url, pool_id, keys, self.poller)

    # -- the executor's messages ------------------------------------------------------

    def _from_executor(self) -> None:
        # All that waits, in one turn: a turn a message would hand many small ones out one by one.
        for message, payload in self.link.messages():
            if self.exit_code is not None:
                return
            self._on_message(message, payload)

    def _on_message(self, message: Message, payload: bytes) -> None:
        match message:  # a class pattern narrows the type without a call (``cast`` is one, every task)
            case Tasks():
                self.workers.queue(message, payload)
            case Accept():
                self._accepted(message)
            case Refuse(reason=reason):
                # The executor does not say its versions to whoever asks; ours help compare with its log.
                ours = f"protocol {PROTOCOL_VERSION}, plait {__version__}, python {python_version()}"
                log.error("pool %s: %s (this pool runs %s)", self.pool_id, reason, ours)
                self.exit_code = 3
            case Cancel(ids=ids):
                self.workers.cancel(set(ids))
            case Drain():
                self.draining = True
            case Shutdown():
                self.exit_code = 0

    def _accepted(self, accept: Accept) -> None:
        self.link.accept(accept)
        self._sample_every(accept.usage_interval)
        self.workers.start(accept.sys_path, self.link.max_message_bytes)
        self._timers_moved()  # heartbeats start, and maybe samples

    def _sample_every(self, interval: float) -> None:
        """Sample this node every ``interval`` seconds, if it is a positive number.

        The samplers are made halfway to the first sample, not now: they import psutil
        (~13 ms), which would hold up the first tasks, sent as the executor accepts us.
        """
        if interval > 0:
            now = time.monotonic()
            self.sample_every = float(interval)
            self.next_sample, self.samplers_due = now + self.sample_every, now + self.sample_every / 2

    # -- timers -----------------------------------------------------------------------

    def _timers(self) -> None:
        """Handle what is due: the link's checks, samples, a heartbeat, timeouts, the drain's end."""
        now = time.monotonic()
        gone = self.link.gone(now)
        if gone:
            log.error("pool %s: %s; exiting", self.pool_id, gone)
            self.exit_code = 4
            return
        if self.sample_every and self.sampler is None and now >= self.samplers_due:
            self.sampler, self.task_sampler = NodeSampler(), TaskSampler()
        if self.sampler is not None and self.task_sampler is not None and now >= self.next_sample:
            self.samples.append(self.sampler.row())
            self.next_sample = now + self.sample_every
            self.task_samples += [look.row() for look in self.task_sampler.look(self.workers.running())]
        if self.link.heartbeat_due(now):
            # Samples ride on heartbeats: one message every period, whatever it carries.
            self.link.send(encode(Heartbeat(self.samples, self.task_samples)))
            self.samples, self.task_samples = [], []
        self.workers.expire()
        if self.draining and self.workers.done():
            self.link.send(encode(Drained()))
            self.exit_code = 0
        self._timers_moved()

    def _timers_moved(self) -> None:
        """Work out ``next_due`` again: after the timers ran, or something armed one.

        Only these move the link's and the samplers' timers earlier (the executor's
        accept, the link going down): a message heard only moves the link's check later,
        and waking at the old time costs one look. Tasks' deadlines are asked every
        turn instead (``run``), once a task has had one: a dispatch or a result may arm one.
        """
        due = self.link.due()
        if self.sample_every:
            due.append(self.next_sample if self.sampler is not None else self.samplers_due)
        self.next_due = min(due)

    def _due(self) -> float:
        """When the first timer is due: ``next_due``, or a running task's deadline."""
        supervisor = self.workers.supervisor
        if not supervisor.timed:  # no task has had a timeout: there is no deadline to look for
            return self.next_due
        deadline = supervisor.next_deadline()
        return self.next_due if deadline is None or deadline > self.next_due else deadline

    # -- the loop ---------------------------------------------------------------------

    def run(self) -> int:
        link, workers = self.link, self.workers
        dealer, monitor = link.dealer, link.monitor_fd
        results = workers.results  # one list for the pool's life: appended to, sent, emptied in place
        # The poller's sockets polled by libzmq's call itself: ``Poller.poll`` is two calls of Python a turn.
        polled = self.poller.sockets
        supervisor = workers.supervisor
        try:
            link.register(self.host, self.size)
            # After registering: the executor's accept is on its way while the launcher
            # finishes loading what the workers run (``_pool_start``), which a fork waits for.
            workers.fork()
            self._timers_moved()
            while self.exit_code is None:
                due = self._due()
                wait = int((due - time.monotonic()) * 1000) + 1
                for target, events in zmq.zmq_poll(polled, wait if wait > 0 else 0):
                    if target is dealer:
                        self._from_executor()
                    elif target == monitor:
                        if link.watch():
                            self.exit_code = 4
                        self._timers_moved()  # the link may have gone down: its check is due sooner
                    else:
                        workers.event(target, events)
                if supervisor.queue:  # as after a result: nothing to hand out
                    workers.dispatch()
                if results:
                    link.send_results(results)
                # A timer armed in this turn is seen by the next, which then does not wait.
                # The drain is not a timer: it ends when the work does.
                if self.draining or time.monotonic() >= due:
                    self._timers()
        finally:
            self.close()
        return self.exit_code if self.exit_code is not None else 1

    def close(self) -> None:
        self.workers.close()  # first: its launcher kills the workers, and what their tasks started
        self.link.close()
