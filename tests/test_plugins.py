"""Executors and providers other packages add by entry points: a real package, installed
by pip from a wheel, and ``plait run --executor NAME`` runs a workflow on its executor."""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

PLUGIN = """
import plait as pl

def tiny(workers=None):
    # A thread pool whose threads say whose they are: plait-tiny<workers>_<n>.
    return pl.ThreadExecutor(workers, label=f"tiny{workers}")

def not_an_executor():
    return 42

def local():
    return pl.LocalProvider(workers=1)
"""

ENTRY_POINTS = """
[plait.executors]
tiny = plait_tiny:tiny
broken = plait_tiny:not_an_executor

[plait.providers]
tiny-local = plait_tiny:local
"""

FLOW = """
import threading
import plait as pl

@pl.app
def where(i: int) -> str:
    return threading.current_thread().name

result = pl.gather(*(where(i) for i in range(4)))
"""


def _wheel(where: Path) -> Path:
    """A wheel of the package plait-tiny, made by hand: no build backend, in milliseconds."""
    dist = "plait_tiny-0.1.dist-info"
    files = {
        "plait_tiny.py": PLUGIN,
        f"{dist}/METADATA": "Metadata-Version: 2.1\nName: plait-tiny\nVersion: 0.1\n",
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        f"{dist}/entry_points.txt": ENTRY_POINTS,
    }
    record = [f"{path},sha256={_digest(text.encode())},{len(text.encode())}" for path, text in files.items()]
    files[f"{dist}/RECORD"] = "\n".join([*record, f"{dist}/RECORD,,"]) + "\n"
    wheel = where / "plait_tiny-0.1-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return wheel


def _digest(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of a process that has plait-tiny installed (pip, into a directory of its own)."""
    where = tmp_path_factory.mktemp("plugin")
    target = where / "site"
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", "--target", str(target)]
    subprocess.run([*pip, str(_wheel(where))], check=True, capture_output=True, timeout=120)
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), str(ROOT)])}


def _plait(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-c", "from plait.cli import main; main(prog_name='plait')", *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False)


def test_plait_run_runs_a_workflow_on_an_executor_a_package_adds_by_name(
    installed: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "flow.py").write_text(textwrap.dedent(FLOW))
    ran = _plait(installed, tmp_path, "run", "flow.py:result", "--executor", "tiny:2")
    assert ran.returncode == 0, ran.stderr
    assert "plait-tiny2_" in ran.stdout, ran.stdout  # on the plugin's threads, made with 2 workers


@pytest.mark.parametrize(
    ("executor", "complaint"),
    [
        ("broken", "'broken': the plait.executors plugin 'broken' (plait_tiny:not_an_executor) returned a int"),
        ("nosuch", "'nosuch': expected processes[:N] or threads[:N] or broken[:N] or tiny[:N]"),
    ],
)
def test_a_plugin_that_makes_no_executor_or_is_not_there_is_refused_by_name(
    installed: dict[str, str], tmp_path: Path, executor: str, complaint: str
) -> None:
    (tmp_path / "flow.py").write_text(textwrap.dedent(FLOW))
    refused = _plait(installed, tmp_path, "run", "flow.py:result", "--executor", executor)
    assert refused.returncode == 2
    assert complaint in " ".join(refused.stderr.split()), refused.stderr


def test_a_provider_a_package_adds_is_made_by_name(installed: dict[str, str], tmp_path: Path) -> None:
    code = "from plait.backends import provider_plugin; p = provider_plugin('tiny-local'); print(p.workers_per_block)"
    made = subprocess.run([sys.executable, "-c", code], env=installed, capture_output=True, text=True, check=True)
    assert made.stdout.strip() == "1"
