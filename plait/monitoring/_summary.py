"""A run summed up, read from its monitoring db: counts per state and per app, failures,
the timeline of attempts per worker, and what they used (what a report shows)."""

from __future__ import annotations

import math
import re
import sqlite3

import attrs

from plait.monitoring._usage import Resources, load_resources

__all__ = ["AppStats", "Bar", "Failure", "RunSummary", "summarize"]

MAX_BARS = 4000  # a timeline with more bars than pixels only makes the file heavy
MAX_FAILURES = 100


@attrs.frozen
class AppStats:
    """Counts per final state of one app's attempts, and how long its runs took."""

    name: str
    tasks: int
    done: int
    failed: int
    retried: int
    cached: int
    cancelled: int
    mean_seconds: float | None
    max_seconds: float | None
    total_seconds: float


@attrs.frozen
class Failure:
    task: int
    attempt: int
    name: str
    state: str  # failed, or retried (a failed attempt that was tried again)
    worker: str
    at: float
    error: str


@attrs.frozen
class Bar:
    """One attempt on the timeline: where and when it ran."""

    worker: str
    start: float
    end: float
    name: str
    task: int
    attempt: int
    state: str


@attrs.frozen
class RunSummary:
    path: str
    run: int
    runs: int
    started: float
    ended: float | None
    argv: str
    states: dict[str, int]
    apps: list[AppStats]
    failures: list[Failure]
    failure_count: int
    bars: list[Bar]
    bar_step: int  # 1 in bar_step attempts is drawn
    workers: list[str]
    resources: Resources = attrs.field(factory=Resources)

    @property
    def tasks(self) -> int:
        return sum(a.tasks for a in self.apps)

    @property
    def worker_slots(self) -> list[str]:
        """The workers the executors kept: a worker that died and was replaced in its slot
        (the same executor and index, another process) is one slot.

        >>> RunSummary("", 1, 1, 0, 0, "", {}, [], [], 0, [], 1, ["p/0:11", "p/0:12", "p/1:13"]).worker_slots
        ['p/0', 'p/1']
        """
        return sorted({re.sub(r":\d+$", "", w) for w in self.workers}, key=_natural)

    @property
    def memo_hit_rate(self) -> float | None:
        """Of the tasks that finished, the share served by the memo."""
        cached = self.states.get("cached", 0)
        finished = cached + self.states.get("done", 0) + self.states.get("failed", 0)
        return cached / finished if finished else None


def summarize(db: sqlite3.Connection, path: str, run: int) -> RunSummary:
    """Run ``run`` (one it has) of the monitoring db ``db``, the file at ``path``, summed up."""
    (runs,) = db.execute("SELECT count(*) FROM runs").fetchone()
    started, ended, argv = db.execute("SELECT started, ended, argv FROM runs WHERE run = ?", (run,)).fetchone()
    states = dict(db.execute("SELECT state, count(*) FROM attempts WHERE run = ? GROUP BY state", (run,)).fetchall())
    apps = [
        AppStats(*r)
        for r in db.execute(
            """SELECT name, count(DISTINCT task), sum(state = 'done'), sum(state = 'failed'), sum(state = 'retried'),
                      sum(state = 'cached'), sum(state = 'cancelled'),
                      avg(ended - running), max(ended - running), coalesce(sum(ended - running), 0)
               FROM attempts WHERE run = ? GROUP BY name ORDER BY name""",
            (run,),
        )
    ]
    failure_count = sum(states.get(s, 0) for s in ("failed", "retried"))
    failures = [
        Failure(*r)
        for r in db.execute(
            """SELECT task, attempt, name, state, coalesce(worker, ''), coalesce(ended, 0), coalesce(error, '')
               FROM attempts WHERE state IN ('failed', 'retried') AND run = ?
               ORDER BY state = 'retried', ended LIMIT ?""",
            (run, MAX_FAILURES),
        )
    ]
    ran = sum(states.values()) - states.get("cached", 0)
    step = max(1, math.ceil(ran / MAX_BARS))
    bars = [
        Bar(*r)
        for r in db.execute(
            """SELECT worker, running, ended, name, task, attempt, state FROM attempts
               WHERE run = ? AND running IS NOT NULL AND ended IS NOT NULL AND task % ? = 0 ORDER BY running""",
            (run, step),
        )
    ]
    workers = [
        w for (w,) in db.execute("SELECT DISTINCT worker FROM attempts WHERE run = ? AND running IS NOT NULL", (run,))
    ]
    return RunSummary(
        path=path,
        run=run,
        runs=runs,
        started=started,
        ended=ended,
        argv=argv or "",
        states=states,
        apps=apps,
        failures=failures,
        failure_count=failure_count,
        bars=bars,
        bar_step=step,
        workers=sorted(workers, key=_natural),
        resources=load_resources(db, run),
    )


def _natural(text: str) -> tuple[object, ...]:
    """Sort key that puts worker 10 after worker 9.

    >>> sorted(["w/10", "w/9"], key=_natural)
    ['w/9', 'w/10']
    """
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text))
