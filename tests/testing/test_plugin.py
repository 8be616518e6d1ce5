"""The pytest plugin: ``plait_runtime`` is current for pl.run, and --plait-chaos swaps it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import plait as pl
from plait.runtime import current_runtime
from plait.testing._palette import add, neg

USER_TEST = """
import plait as pl
import plait.testing as pt

@pl.app
def double(x: int) -> int:
    return 2 * x

def test_user(plait_runtime):
    assert pl.run(pl.gather([double(i) for i in range(20)])) == [2 * i for i in range(20)]
    executor = plait_runtime._executors[0]
    chaotic = isinstance(executor, pt.ChaosExecutor)
    print("CHAOS", chaotic, sorted(executor.faults().elements()) if chaotic else "")
"""


def test_the_fixture_is_the_current_runtime(plait_runtime: pl.Runtime) -> None:
    assert current_runtime() is plait_runtime
    assert pl.run(add(neg(2), 5)) == 3


def test_plait_chaos_option_runs_the_fixture_on_a_chaos_executor(tmp_path: Path) -> None:
    (tmp_path / "test_user.py").write_text(USER_TEST)

    def pytest_run(*options: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", *options, "test_user.py"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    assert "CHAOS False" in pytest_run()
    chaotic = pytest_run("--plait-chaos=4")
    assert "CHAOS True" in chaotic and "fail" in chaotic  # faults were injected, and retried
