"""The walltime cases, in an interpreter of their own (see walltime_cases.py for why)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent


def test_walltime_cases_pass_in_their_own_interpreter() -> None:
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(HERE / "walltime_cases.py")]
    done = subprocess.run(argv, cwd=HERE.parent.parent, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "3 passed" in done.stdout, done.stdout[-1000:]
