"""The Makefile and pyproject.toml: `make demo` stays light, installs stay free of warnings."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


def _planned(target: str, venv: Path) -> str:
    """The commands `make TARGET` would run for a fresh clone (no venv yet), without running them."""
    return subprocess.run(
        ["make", "-n", "-C", str(ROOT), target, f"VENV={venv}"], capture_output=True, text=True, check=True
    ).stdout


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make, as the README does")
def test_make_demo_installs_plait_alone_and_make_test_the_test_stack(tmp_path: Path) -> None:
    installs = re.compile(r"pip install -qq -e (\S+)")
    assert installs.findall(_planned("demo", tmp_path / "venv")) == ["."]
    assert installs.findall(_planned("test", tmp_path / "venv")) == ["'.[test,docs]'"]


def test_the_license_is_an_spdx_string_for_a_setuptools_that_reads_it() -> None:
    # A TOML table makes setuptools >= 77 print a deprecation warning on every install.
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["project"]["license"] == "MIT"
    (setuptools,) = pyproject["build-system"]["requires"]
    assert setuptools == "setuptools>=77"


def test_every_runtime_dependency_is_imported_by_plait() -> None:
    """A dependency nothing imports only makes installs heavier (toolz was one)."""
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    imported = set()
    for path in (ROOT / "plait").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported.add(node.module.split(".")[0])
    provided = importlib.metadata.packages_distributions()
    used = {distribution(d) for module in imported for d in provided.get(module, [])}
    assert [name for name in map(distribution, dependencies) if name not in used] == []


def distribution(requirement: str) -> str:
    """A requirement's distribution name, normalized: ``Dask[distributed]>=1`` -> ``dask``."""
    return re.sub(r"[-_.]+", "-", re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0]).lower()
