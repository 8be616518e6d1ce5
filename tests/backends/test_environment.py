"""PackedEnvironment: the driver's packages reach a host that lacks them, unpacked once per host.

The host here is a Charliecloud container with this machine's /usr and base Python but
neither the venv nor plait's source tree: plait is not importable there until the packed
environment arrives.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import attrs
import pytest

import plait as pl
from plait.backends._environment import python_tag
from tests.backends.conftest import HOST_PYTHON, host_without_plait, packed
from tests.backends.environment_apps import where_plait_is


@pytest.mark.timeout(90)
def test_a_host_without_plait_runs_pools_from_the_packed_environment_unpacked_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, charliecloud_image: tuple[Path, str]
) -> None:
    image, token = charliecloud_image
    monkeypatch.chdir(tmp_path)  # the checkout (plait's source) is not the working directory, so not bound
    host = host_without_plait(image)
    bare = host.command([HOST_PYTHON, "-c", "import plait"], workdir=tmp_path)
    probe = subprocess.run(bare, capture_output=True, text=True, timeout=60, check=False)
    assert probe.returncode != 0 and "No module named 'plait'" in probe.stderr, probe.stderr
    environment = packed(tmp_path)

    def run_once() -> Path:
        executor = pl.ZMQExecutor(provider=pl.LocalProvider(workers=1, container=host), environment=environment)
        with pl.Runtime([executor]) as rt:
            plait_file, seen = rt.run(where_plait_is("/plait-image"))
        assert seen == token, "the task ran in the container"
        [unpacked] = (tmp_path / "cache").iterdir()
        assert plait_file == str(unpacked / "plait" / "__init__.py"), "plait came from the packed environment"
        return unpacked

    first = run_once().stat().st_ino
    assert run_once().stat().st_ino == first, "a second run on the same host found it unpacked"
    assert len(list((tmp_path / "envs").iterdir())) == 1, "packed once: the same content has the same archive"


def test_the_archive_is_named_by_its_content(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "model.py").write_text("A = 1\n")
    environment = packed(tmp_path, distributions=["attrs"], paths=[mine])
    first = environment.pack()
    assert environment.pack() == first
    assert {"mine/model.py", "attrs/__init__.py", "attr/__init__.py"} <= set(environment.files())
    (mine / "model.py").write_text("A = 2\n")
    second = environment.pack()
    assert second.digest != first.digest and second.archive.exists() and first.archive.exists()


def test_a_checkout_installed_as_an_egg_info_is_packed_as_it_is_now_not_as_its_sources_list_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # ``pip install -e .`` leaves ``<name>.egg-info`` in the checkout, whose SOURCES.txt lists the
    # modules of that moment: one added since must be packed all the same.
    checkout = tmp_path / "checkout"
    (checkout / "grown").mkdir(parents=True)
    (checkout / "grown" / "__init__.py").write_text("")
    info = checkout / "grown.egg-info"
    info.mkdir()
    (info / "PKG-INFO").write_text("Metadata-Version: 2.1\nName: grown\nVersion: 1.0\n")
    (info / "SOURCES.txt").write_text("grown/__init__.py\n")
    (info / "top_level.txt").write_text("grown\n")
    (checkout / "grown" / "added_since.py").write_text("A = 1\n")
    monkeypatch.syspath_prepend(str(checkout))
    files = packed(tmp_path, distributions=["grown"], paths=[]).files()
    assert {"grown/__init__.py", "grown/added_since.py"} <= set(files)


def test_a_host_with_another_python_is_refused_saying_why(tmp_path: Path) -> None:
    elsewhere = attrs.evolve(packed(tmp_path, distributions=["tblib"], paths=[]).pack(), tag="cpython-2.7-nowhere")
    done = subprocess.run(elsewhere.command(["true"]), capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert f"is for cpython-2.7-nowhere; this host's {HOST_PYTHON} is {python_tag()}" in done.stderr
    assert not (tmp_path / "cache").exists(), "nothing unpacked"


def test_the_pool_command_is_run_by_the_hosts_python_through_the_bootstrap(tmp_path: Path) -> None:
    command = packed(tmp_path, distributions=["tblib"], paths=[]).pack().command([sys.executable, "-c", "pass"])
    assert command[:3] == [HOST_PYTHON, "-P", "-c"] and command[-3:] == [HOST_PYTHON, "-c", "pass"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"distributions": ["no-such-distribution"]}, r"distributions=\['no-such-distribution'\]\): not installed"),
        ({"distributions": "plait"}, "give a list"),
        ({"paths": ["/no/such/dir"]}, r"paths=\['/no/such/dir'\]\): not a directory"),
    ],
)
def test_bad_settings_are_refused_naming_the_setting(tmp_path: Path, options: dict[str, object], message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        packed(tmp_path, **options).pack()
