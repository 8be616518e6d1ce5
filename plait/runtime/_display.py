"""How futures and runtimes show themselves: in a REPL, a log line, or a notebook cell.

A future's repr keeps the shape of Parsl's (``<AppFuture at 0x… state=finished returned
int>``), which the seed's users re-ran a cell to watch, and says which work it is for. A
runtime shows its executors, its tasks by state and its memo hits. Both read the
interpreter's counters from the caller's thread without stopping the loop: each number is
read at once, so a display taken mid-run may be a task or two out of step, never wrong
for long.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Sequence
from typing import Any

from plait.backends import Executor
from plait.runtime._interpreter import Interpreter, Root
from plait.runtime._nodes import BOUND, QUEUED, RUNNING, WAITING, Node

__all__ = ["future_repr", "runtime_html", "runtime_repr", "task_counts", "unfinished"]

_LIMIT = 80


def future_repr(future: concurrent.futures.Future[Any], label: str, root: Root | None) -> str:
    """``<PlaitFuture at 0x… for label state=running>``; ``root`` tells pending from running.

    Running means sent to a worker: an executor with prefetch may hold it queued there.
    """
    return f"<{type(future).__name__} at {id(future):#x} for {_short(label)} state={future_state(future, root)}>"


def future_state(future: concurrent.futures.Future[Any], root: Root | None) -> str:
    """pending, running, finished returned T, failed raised E: message, or cancelled."""
    if future.cancelled():
        return "cancelled"
    if future.done():
        error = future.exception()
        if error is None:
            return f"finished returned {type(future.result()).__name__}"
        message = str(error).partition("\n")[0]
        return f"failed raised {type(error).__name__}" + (f": {_short(message)}" if message else "")
    node = root.node if root is not None else None
    if node is not None and node.state in (RUNNING, BOUND):
        return "running"
    if node is not None and node.state == WAITING and node.waiting:
        return f"pending on {node.waiting} input{'s' if node.waiting > 1 else ''}"
    return "pending"


def task_counts(interpreter: Interpreter) -> dict[str, int]:
    """Tasks queued and running now, and how many ended each way so far.

    ``running`` counts at most an executor's workers; tasks it holds beyond them count as queued,
    as do a graph's calls not started yet (a call cancelled meanwhile until its turn comes).
    """
    # Sent to an executor is running up to its worker count; the rest wait there (prefetch).
    running = sum(min(n, _workers(interpreter.executors[label], n)) for label, n in interpreter.inflight.items())
    # queued, sent, or waiting to retry; and calls not started yet
    live = interpreter.live + sum(map(len, list(interpreter.unstarted.values())))
    ended = interpreter.ended
    return {
        "running": running,
        "queued": max(live - running, 0),
        **{state: ended[state] for state in ("done", "failed", "cancelled", "retried")},
        "memo hits": ended["cached"],
    }


def runtime_repr(state: str, executors: Sequence[Executor], interpreter: Interpreter) -> str:
    """One line: ``<Runtime running on processes (ProcessExecutor, 2 workers): 3 running, ...>``."""
    counts = ", ".join(f"{n} {s}" for s, n in task_counts(interpreter).items() if n or s in ("running", "done"))
    return f"<Runtime {state} on {'; '.join(map(_executor, executors))}: tasks {counts}>"


def runtime_html(state: str, executors: Sequence[Executor], interpreter: Interpreter) -> str:
    """A small table for a notebook: the executors, then the tasks by state."""
    import html  # a notebook's: not every driver's start-up

    rows = [f"<tr><th>executor {html.escape(e.label)}</th><td>{html.escape(_executor(e))}</td></tr>" for e in executors]
    rows += [f"<tr><th>{s}</th><td>{n}</td></tr>" for s, n in task_counts(interpreter).items()]
    return (
        f"<table><caption style='text-align:left'><b>plait Runtime</b> ({html.escape(state)})</caption>"
        f"{''.join(rows)}</table>"
    )


def _workers(executor: Executor, otherwise: int) -> int:
    workers = getattr(executor, "workers", None)
    return workers if isinstance(workers, int) else otherwise


def _executor(executor: Executor) -> str:
    workers = getattr(executor, "workers", None)
    size = f"{workers} workers" if isinstance(workers, int) else f"capacity {executor.capacity}"
    return f"{executor.label} ({type(executor).__name__}, {size})"


def _short(text: str) -> str:
    return text if len(text) <= _LIMIT else text[: _LIMIT - 1] + "…"


def unfinished(interpreter: Interpreter, root: Root) -> tuple[list[str], int, int]:
    """What ``root`` still waits for: labels of running tasks, and counts of queued
    tasks and of steps waiting on inputs. Said when a wait for it times out."""
    running: list[str] = []
    queued = waiting = 0
    seen, todo = {root.node}, [root.node]
    while todo:
        node = todo.pop()
        if node.state == RUNNING:
            running.append(node.label())
        queued += node.state == QUEUED
        waiting += node.state in (WAITING, BOUND)
        fresh = []
        for expr in node.inputs:
            child = interpreter.index.get(expr._key)
            if not isinstance(child, Node):  # finished
                continue
            if child is node:  # its mark: a call not started yet
                queued += 1
            elif child not in seen:
                fresh.append(child)
        seen.update(fresh)
        todo.extend(fresh)
    return running, queued, waiting
