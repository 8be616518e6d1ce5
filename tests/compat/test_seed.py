"""examples/seed_parsl.py, the seed's Parsl session with only the import changed, runs on plait."""

from __future__ import annotations

import ast
import math
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent.parent
FUTURE = r"<AppFuture at 0x[0-9a-f]+ state=(?:pending|running|finished returned int)>"


def test_the_seed_session_runs_and_estimates_pi() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    script = ROOT / "examples" / "seed_parsl.py"
    done = subprocess.run([sys.executable, script], capture_output=True, text=True, env=env, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "4"
    assert re.fullmatch(FUTURE, lines[1])
    assert lines[2:4] == ["4", "4.0"]
    coords = ast.literal_eval(lines[4])
    assert len(coords) == 9
    assert re.fullmatch(rf"\[{FUTURE}(?:, {FUTURE}){{8}}\]", lines[5])
    assert lines[6] == str([4] * 9)
    darts = [0 if math.sqrt(x * x + y * y) >= 1 else 4 for x, y in coords]
    assert lines[7] == str(darts)
    assert float(lines[8]) == float(lines[9]) == sum(darts) / 9
    assert abs(float(lines[10]) - math.pi) < 0.5
    assert re.fullmatch(r"<AppFuture at 0x[0-9a-f]+ state=finished returned float>", lines[11])
