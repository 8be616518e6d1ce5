"""A pipeline of shell steps mixed with Python apps, run twice to show the memo.

Run it with `python examples/shell_pipeline.py [WORKDIR]` (a fresh temporary directory
when none is given). For each of three samples it

1. generates numbers with `awk` into `sample-N.txt`,
2. turns them into a histogram with `sort | uniq -c | awk` into `sample-N.hist`,
3. finds the most common value with a Python app,

and combines the histograms with `wc -l`. The second run is served from the memo
(`WORKDIR/memo.db`): no command runs again. Then it edits one sample's parameter file
and runs a third time: only that sample's steps, and the step combining all samples, run.
"""

from __future__ import annotations

import shlex
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import plait as pl


def q(path: object) -> str:
    """A path quoted for a command line: a str command goes through /bin/sh."""
    return shlex.quote(str(path))


@pl.shell(outputs=["out"])
def generate(params: pl.File, out: pl.File) -> str:
    """The numbers: `params` holds "seed count"; an input File, so editing it reruns this."""
    return (
        f"read seed n < {q(params)}; "
        f"awk -v seed=$seed -v n=$n 'BEGIN {{ srand(seed); for (i = 0; i < n; i++) print int(rand() * 20) }}'"
        f" > {q(out)}"
    )


@pl.shell(outputs=["out"])
def histogram(numbers: pl.ShellResult, out: pl.File) -> str:
    """value count, one line per distinct value; waits for `numbers` because it receives its result."""
    return f"sort -n {q(numbers.output)} | uniq -c | awk '{{ print $2, $1 }}' > {q(out)}"


@pl.shell
def distinct_values(histograms: list[pl.ShellResult]) -> list[str]:
    """A list is the argv itself: no shell, no quoting needed."""
    return ["wc", "-l", *(str(h.output) for h in histograms)]


@pl.app
def most_common(hist: pl.ShellResult) -> tuple[int, int]:
    """(value, count) of the most frequent value: a Python step between shell steps."""
    counts = Counter({int(v): int(c) for v, c in (line.split() for line in hist.output.read_text().splitlines())})
    return counts.most_common(1)[0]


def workflow(work: Path, samples: int = 3) -> pl.Expr[Any]:
    hists = []
    for i in range(samples):
        numbers = generate(pl.File(work / f"params-{i}.txt"), pl.File(work / f"sample-{i}.txt"))
        hists.append(histogram(numbers, pl.File(work / f"sample-{i}.hist")))
    return pl.gather(pl.gather(most_common(h) for h in hists), distinct_values(hists))


class Tally:
    """A monitor counting how tasks ended: run by a worker, or served from the memo."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def task_event(self, state: str, task_id: int, name: str, key: bytes, **info: Any) -> None:
        if state in ("done", "cached"):
            self.counts[state] += 1

    def close(self) -> None:
        pass


def run_once(work: Path, title: str) -> None:
    tally = Tally()
    with pl.Runtime([pl.ProcessExecutor(2)], cache=work / "memo.db", monitor=tally, progress=False) as rt:
        modes, wc = rt.run(workflow(work), timeout=120)
    print(f"{title}: {tally.counts['done']} tasks ran, {tally.counts['cached']} served from the memo")
    for i, (value, count) in enumerate(modes):
        print(f"  sample {i}: most common value {value} ({count} times)")
    print("  " + wc.stdout.strip().splitlines()[-1].strip())


def main(argv: list[str]) -> None:
    work = Path(argv[0]) if argv else Path(tempfile.mkdtemp(prefix="plait-shell-"))
    work.mkdir(parents=True, exist_ok=True)
    for i in range(3):
        (work / f"params-{i}.txt").write_text(f"{i + 1} 1000\n")
    print(f"working in {work}")
    run_once(work, "first run")
    run_once(work, "second run")
    (work / "params-1.txt").write_text("42 1000\n")
    run_once(work, "after editing params-1.txt")


if __name__ == "__main__":
    main(sys.argv[1:])
