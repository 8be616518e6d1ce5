"""The documentation site's build is strict: what `make docs` (and so CI) refuses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).parent.parent


def build(tmp_path: Path, page: str) -> subprocess.CompletedProcess[str]:
    """Build a one-page site with the project's mkdocs.yml (theme, plugins, hooks, strictness)."""
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text(page)
    config.update(
        docs_dir=str(docs),
        site_dir=str(tmp_path / "site"),
        nav=["index.md"],
        hooks=[str(ROOT / hook) for hook in config["hooks"]],
    )
    config["plugins"][1]["mkdocstrings"]["handlers"]["python"]["paths"] = [str(ROOT)]
    (tmp_path / "mkdocs.yml").write_text(yaml.safe_dump(config))
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    command = [sys.executable, "-m", "mkdocs", "build", "-f", str(tmp_path / "mkdocs.yml")]
    return subprocess.run(command, check=False, capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)


@pytest.mark.parametrize(
    ("page", "complaint"),
    [
        ("# A\n\nSee [the missing page](missing.md).\n", "missing.md"),
        ("# A\n\n::: plait.no_such_name\n", "plait.no_such_name"),
    ],
    ids=["broken link", "missing reference"],
)
def test_a_broken_link_or_reference_fails_the_build(tmp_path: Path, page: str, complaint: str) -> None:
    built = build(tmp_path, page)
    assert built.returncode != 0
    assert complaint in built.stderr
