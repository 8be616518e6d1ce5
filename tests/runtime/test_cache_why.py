"""``plait cache why``: what an app's memo key covers."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from plait.cli import main

PIPELINE = """
import random
import numpy as np
import plait as pl
from helpers_for_why import scale


@pl.app
def work(x):
    return scale(x) + np.sum([random.random()])


@pl.app(version="2")
def versioned(x):
    return scale(x)
"""


def test_why_lists_code_constants_distributions_and_what_varies(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "helpers_for_why.py").write_text("FACTOR = 2\n\n\ndef scale(x):\n    return x * FACTOR\n")
    (tmp_path / "pipeline_for_why.py").write_text(PIPELINE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("helpers_for_why", "pipeline_for_why"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    result = CliRunner().invoke(main, ["cache", "why", "pipeline_for_why.py:work"])
    assert result.exit_code == 0, result.output
    lines = [line.strip() for line in result.output.splitlines()]
    assert lines[0].startswith("app work (pipeline_for_why), identity ")
    for expected in ("helpers_for_why.scale", "helpers_for_why.FACTOR", f"numpy=={np_version()}", "random.random"):
        assert expected in lines
    assert "ImpureAppWarning" not in result.output
    versioned = CliRunner().invoke(main, ["cache", "why", "pipeline_for_why.py:versioned"])
    assert "version='2': its key changes only when you change the version" in versioned.output


WRONG_TARGETS = [
    ("pipeline_for_why.py:nope", "has no 'nope'"),
    ("helpers_for_why.py:scale", "is a function, not an app"),
    ("helpers_for_why.py:called", "is an Expr, scale(2), not an app: name the app"),
]


@pytest.mark.parametrize(("target", "message"), WRONG_TARGETS)
def test_why_names_what_is_wrong_with_a_target(tmp_path: Path, monkeypatch, target: str, message: str) -> None:
    helpers = "import plait as pl\ndef scale(x):\n    return x\nscaled = pl.app(scale)\ncalled = scaled(2)\n"
    (tmp_path / "helpers_for_why.py").write_text(helpers)
    (tmp_path / "pipeline_for_why.py").write_text("x = 1\n")
    monkeypatch.chdir(tmp_path)
    for name in ("helpers_for_why", "pipeline_for_why"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    result = CliRunner().invoke(main, ["cache", "why", target])
    assert result.exit_code == 2 and message in result.output


def np_version() -> str:
    import numpy as np

    return np.__version__
