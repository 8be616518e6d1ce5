"""Fixtures for the backend tests: a Charliecloud image directory to run pools in, and hosts made of it."""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from pathlib import Path

import attrs
import pytest

import plait as pl
import tests


@pytest.fixture
def charliecloud_image(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, str]:
    """A directory image: its own root, holding a token no host path has; the host's /usr and Python bound in."""
    if shutil.which("ch-run") is None:
        message = "ch-run is not installed: run .ci/charliecloud-up (as root)"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; in CI the container tests must run")
        pytest.skip(message)
    monkeypatch.setenv("USER", os.environ.get("USER") or "plait")  # ch-run refuses to start without it
    image = tmp_path / "image"
    for directory in ("usr", "proc", "sys", "dev", "home", "tmp", "etc", "root", "var/tmp"):
        (image / directory).mkdir(parents=True)
    for link in ("bin", "lib", "lib64", "sbin"):
        (image / link).symlink_to(f"usr/{link}")
    for name in ("passwd", "group", "hosts", "resolv.conf"):
        (image / "etc" / name).touch()
    token = uuid.uuid4().hex
    (image / "plait-image").write_text(token)
    for bound in python_paths():  # ch-run mounts only on directories the image has
        (image / bound.relative_to("/")).mkdir(parents=True, exist_ok=True)
    (image / Path.cwd().relative_to("/")).mkdir(parents=True, exist_ok=True)
    return image, token


def python_paths() -> list[Path]:
    """What this Python needs: its installation, its environment, and plait's source tree."""
    source = Path(pl.__file__).parent.parent
    return [Path(path) for path in dict.fromkeys([sys.base_prefix, sys.prefix, str(source)]) if path != "/usr"]


def charliecloud(image: Path) -> pl.Container:
    """The image of ``charliecloud_image`` as a Container: this Python runs in it, bound at its own paths."""
    return pl.Container(image, runtime="charliecloud", binds=["/usr", *python_paths()], python=None)


def with_image_library(image: Path) -> pl.Container:
    """``charliecloud(image)`` with a module on the image's own sys.path only (not the driver's)."""
    (image / "plait-site").mkdir()
    (image / "plait-site" / "imageonly.py").write_text("WHERE = 'image'\n")
    inside = os.pathsep.join(["/plait-site", *filter(None, [os.environ.get("PYTHONPATH")])])
    return attrs.evolve(charliecloud(image), options=[f"--set-env=PYTHONPATH={inside}"])


@pl.app(pure=False)  # what it imports depends on where it runs
def from_the_image() -> str:
    import imageonly  # type: ignore[import-not-found]

    return str(imageonly.WHERE)


HOST_PYTHON = str(Path(sys.base_prefix, "bin", f"python{sys.version_info[0]}.{sys.version_info[1]}"))


def host_without_plait(image: Path) -> pl.Container:
    """The image with this machine's Python installation bound in, and nothing of the venv or the checkout."""
    return attrs.evolve(charliecloud(image), binds=sorted({"/usr", sys.base_prefix}))


def packed(tmp_path: Path, **options: object) -> pl.PackedEnvironment:
    settings: dict[str, object] = {
        "distributions": ["plait"], "paths": [Path(tests.__file__).parent], "directory": tmp_path / "envs",
        "cache": str(tmp_path / "cache"), "python": HOST_PYTHON,
    }  # fmt: skip
    return pl.PackedEnvironment(**{**settings, **options})  # type: ignore[arg-type]
