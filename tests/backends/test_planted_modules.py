"""A run started from a directory others can write (a shared /tmp, a group's project
directory) imports nothing from it: the processes plait starts do not put their current
directory on ``sys.path``."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

# What a pool, a launcher or a writer imports from outside the standard library, and some of what they
# import from it that is not loaded when Python starts.
PLANTED = ("zmq", "msgspec", "cloudpickle", "tblib", "psutil", "sqlite3", "marshal", "selectors", "signal")

FLOW = """
import time

import plait as pl

@pl.app
def square(x: int) -> int:
    return x * x

@pl.app
def nap(x: int) -> int:
    time.sleep(0.02)
    return x

if __name__ == "__main__":
    for executor in (pl.ZMQExecutor(provider=pl.LocalProvider(workers=1)), pl.ProcessExecutor(1)):
        with pl.Runtime([executor], monitor="run.db", progress=False) as rt:
            print(rt.run(pl.gather([square(i) for i in range(20)]), timeout=60)[-1])
    # Long enough for the monitoring writer's process to start (not before its first hand-over).
    with pl.Runtime([pl.ThreadExecutor(1)], monitor="run.db", progress=False) as rt:
        print(rt.run(pl.gather([nap(i) for i in range(40)]), timeout=60)[-1])
"""


def test_modules_planted_in_the_drivers_directory_are_never_imported(tmp_path: Path) -> None:
    shared, code = tmp_path / "shared", tmp_path / "code"
    shared.mkdir()
    code.mkdir()
    for name in PLANTED:
        (shared / f"{name}.py").write_text(f"open({str(shared / ('PLANTED-' + name))!r}, 'w').close()\n")
    (code / "flow.py").write_text(textwrap.dedent(FLOW))
    run = subprocess.run(
        [sys.executable, str(code / "flow.py")], cwd=shared, capture_output=True, text=True, timeout=120, check=False
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["361", "361", "39"]
    assert sorted(p.name for p in shared.glob("PLANTED-*")) == []
