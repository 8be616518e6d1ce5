"""docs/testing.md runs: its code blocks are written out as files and tested with pytest.

Each block that starts with ``# file: NAME`` is a version of that file. The first
versions hold the two bugs the guide finds; the test checks that pytest finds them with
the messages the guide shows, then that the last (fixed) versions pass, laws included.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "testing.md"
BLOCK = re.compile(r"```python\n# file: (\S+)\n(.*?)```", re.DOTALL)


def versions() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name, body in BLOCK.findall(DOC.read_text()):
        found.setdefault(name, []).append(body)
    return found


def write(where: Path, files: dict[str, str]) -> None:
    for name, body in files.items():
        (where / name).write_text(body)


def pytest_in(where: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=where,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_guide_finds_both_bugs_and_its_fixes_pass(tmp_path: Path) -> None:
    files = versions()
    assert {"stats.py", "test_stats.py", "inbox.py", "test_inbox.py", "test_stats_laws.py"} <= set(files)
    assert len(files["stats.py"]) == 2 and len(files["inbox.py"]) == 2  # the bug, then the fix

    write(tmp_path, {name: bodies[0] for name, bodies in files.items()})
    buggy_stats = pytest_in(tmp_path, "test_stats.py")
    assert buggy_stats.returncode == 1, buggy_stats.stdout
    assert "outcomes differ" in buggy_stats.stdout
    assert re.search(r"for the graph:\n(.*\n)*?.*resample_mean\(", buggy_stats.stdout), buggy_stats.stdout
    buggy_inbox = pytest_in(tmp_path, "test_inbox.py")
    assert buggy_inbox.returncode == 1, buggy_inbox.stdout
    assert "attempt 1 failed with WorkerLost: injected loss after claim attempt 1 (chaos seed 1) ran" in (
        buggy_inbox.stdout
    )

    write(tmp_path, {name: bodies[-1] for name, bodies in files.items()})
    fixed = pytest_in(tmp_path)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert re.search(r"\b(1[5-9]|[2-9]\d) passed", fixed.stdout), fixed.stdout  # laws, chaos, fixture too
