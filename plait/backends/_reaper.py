"""Process trees that die together: nothing a task starts outlives its worker.

A worker is a session leader; what its tasks start is its descendant, or in its
session, until it leaves both: ``setsid`` (coreutils ``timeout``, ``setsid``, a
daemon) leaves the session and the process group, and a process whose parent exits
leaves the tree. So killing a worker's process group is not enough, and neither is
killing its tree at one instant: a process forks while we look.

``kill_tree`` stops (SIGSTOP) every process in a worker's tree or session, looking
again until it finds no new one (a stopped process cannot fork), then kills them all.
The process that supervises workers (their launcher) is a *child subreaper*: an
orphan among its descendants becomes its child rather than init's, so it is never
lost; when the launcher ends, for any reason but its own SIGKILL, ``end_descendants``
kills them all and waits until none is left.

Linux only (``/proc`` and ``prctl``); elsewhere a worker's process group is killed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Container, Iterable

__all__ = ["become_subreaper", "end_descendants", "kill_tree", "reap_orphans", "session_alive"]

_PR_SET_CHILD_SUBREAPER = 36
_PROC = "/proc"
# A fork bomb must not keep kill_tree looking forever: after this many rounds, kill what it found.
_MAX_ROUNDS = 64


def become_subreaper() -> None:
    """Make orphaned descendants of this process its children, not init's (Linux 3.4+)."""
    if sys.platform.startswith("linux"):
        import ctypes  # here: only a launcher becomes one, and a pool or a driver need not load it

        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1)


def kill_tree(root: int) -> None:
    """SIGKILL ``root``, its descendants and the processes in its session (if it leads one).

    ``root`` must not have been reaped yet: until then its pid, and so its session id,
    cannot name another process.
    """
    if root <= 1:  # 0 is the kernel's threads' session, 1 is init: never a worker
        raise ValueError(f"kill_tree({root}): not a worker's pid")
    if not os.path.isdir(_PROC):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(root, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(root, signal.SIGKILL)
        return
    _stop_then_kill(root, spare=set())


def end_descendants(within: float) -> None:
    """Kill every descendant of this process and reap them, for up to ``within`` seconds.

    In a subreaper, every living descendant is in its tree, so when this returns before
    the time is up nothing it started, directly or not, runs any more.
    """
    me = os.getpid()
    deadline = time.monotonic() + within
    while True:
        if os.path.isdir(_PROC):
            _stop_then_kill(me, spare={me})
        with contextlib.suppress(ChildProcessError):
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
        try:
            os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return  # no child left, living or dead
        if time.monotonic() > deadline:
            return
        time.sleep(0.01)


def reap_orphans(workers: Container[int]) -> None:
    """Reap this process's dead children but ``workers``: orphans a subreaper was handed.

    A worker's status is for whoever asks for it, and until then its pid stays its own.
    """
    if not os.path.isdir(_PROC):
        return
    me = os.getpid()
    for pid, state, parent, _ in _processes():
        if parent == me and state == b"Z" and pid not in workers:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)


def session_alive(session: int) -> bool:
    """Whether a living process is in ``session`` (without ``/proc``: whether its leader is)."""
    if not os.path.isdir(_PROC):
        try:
            os.kill(session, 0)
        except ProcessLookupError:
            return False
        return True
    return any(sid == session and state not in (b"Z", b"X") for _, state, _, sid in _processes())


def _stop_then_kill(root: int, spare: set[int]) -> None:
    stopped: set[int] = set()
    for _ in range(_MAX_ROUNDS):
        found = _members(root) - stopped - spare
        if not found:
            break
        _signal(found, signal.SIGSTOP)
        stopped |= found
    _signal(stopped, signal.SIGKILL)


def _signal(pids: Iterable[int], signum: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signum)


def _members(root: int) -> set[int]:
    """The living processes in ``root``'s tree or session, ``root`` included."""
    children: dict[int, list[int]] = {}
    members = {root}
    for pid, state, parent, session in _processes():
        if state in (b"Z", b"X"):  # dead: it cannot fork, and its children have been handed on
            continue
        children.setdefault(parent, []).append(pid)
        if session == root:
            members.add(pid)
    todo = list(members)
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in members:
                members.add(child)
                todo.append(child)
    return members


def _processes() -> Iterable[tuple[int, bytes, int, int]]:
    """(pid, state, parent pid, session id) of each process, from ``/proc``."""
    for entry in os.listdir(_PROC):
        if not entry.isdigit():
            continue
        try:
            with open(f"{_PROC}/{entry}/stat", "rb") as file:
                stat = file.read()
        except OSError:  # it ended while we looked
            continue
        # After the command name in parentheses (which may hold anything): state, ppid, pgrp, session.
        state, parent, _, session = stat[stat.rindex(b")") + 2 :].split(b" ", 4)[:4]
        yield int(entry), state, int(parent), int(session)
