"""Container: the command lines each runtime gets, through every provider, and a real pool in Charliecloud."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

import pytest

import plait as pl
from plait.backends.providers._container import in_container
from tests.backends.conftest import charliecloud, from_the_image, with_image_library

POOL = [sys.executable, "-c", "from plait.cli import main; main()", "worker", "--url", "tcp://10.0.0.1:5000"]


def test_apptainer_execs_the_image_with_the_work_and_job_directories_bound(tmp_path: Path) -> None:
    image = pl.Container("docker://python:3.11", runtime="apptainer")
    slurm = pl.SlurmProvider(check_commands=False, job_dir=tmp_path / "jobs", container=image)
    script = slurm.job_script(POOL, "plait-zmq-0", env={"PLAIT_SECRET": "s"})
    *_, export, line = script.splitlines()
    assert export == "export PLAIT_SECRET=s"
    cwd = str(Path.cwd())
    assert shlex.split(line) == [
        "apptainer", "exec", "--bind", cwd, "--bind", str(tmp_path / "jobs"), "--pwd", cwd,
        "docker://python:3.11", "python3", *POOL[1:],
    ]  # fmt: skip


def test_each_runtime_renders_its_own_command_line() -> None:
    work, jobs = Path("/home/me/run"), Path("/scratch/jobs")
    rendered = {
        runtime: pl.Container("IMG", runtime=runtime, binds=["/data", "/opt/ref:/ref"], options=["--flag"]).command(
            POOL, env_names=["PLAIT_SECRET"], binds=[jobs], workdir=work
        )
        for runtime in ("apptainer", "singularity", "charliecloud", "podman", "docker")
    }
    pool = ["python3", *POOL[1:]]
    binds = ["/scratch/jobs", "/home/me/run", "/data", "/opt/ref:/ref"]  # outermost first, then the user's
    for runtime in ("apptainer", "singularity"):
        flags = [arg for bind in binds for arg in ("--bind", bind)]
        assert rendered[runtime] == [runtime, "exec", *flags, "--pwd", str(work), "--flag", "IMG", *pool]
    flags = [arg for bind in binds for arg in ("-b", bind)]
    assert rendered["charliecloud"] == ["ch-run", *flags, "-c", str(work), "--flag", "IMG", "--", *pool]
    volumes = ["/scratch/jobs:/scratch/jobs", "/home/me/run:/home/me/run", "/data:/data", "/opt/ref:/ref"]
    for runtime in ("podman", "docker"):
        flags = [arg for volume in volumes for arg in ("-v", volume)]
        run = [runtime, "run", "--rm", "--network", "host", *flags, "-w", str(work), "-e", "PLAIT_SECRET"]
        assert rendered[runtime] == [*run, "--flag", "IMG", *pool]


def test_only_the_drivers_own_interpreter_is_replaced_and_none_keeps_it() -> None:
    work = Path("/w")
    image = pl.Container("IMG", runtime="charliecloud", python="/opt/env/bin/python")
    assert image.command(POOL, workdir=work)[-len(POOL) :] == ["/opt/env/bin/python", *POOL[1:]]
    assert image.command(["hostname", "-s"], workdir=work)[-2:] == ["hostname", "-s"]
    same = pl.Container("IMG", runtime="charliecloud", python=None)
    assert same.command(POOL, workdir=work)[-len(POOL) :] == POOL


def test_a_directory_inside_the_working_directory_is_bound_once() -> None:
    argv = pl.Container("IMG").command(["true"], binds=[Path("/w/jobs"), Path("/elsewhere")], workdir=Path("/w"))
    assert argv[2:7] == ["--bind", "/w", "--bind", "/elsewhere", "--pwd"]


@pytest.mark.parametrize(
    "provider",
    [pl.SlurmProvider, pl.PBSProProvider, pl.LSFProvider, pl.CondorProvider, pl.GridEngineProvider],
    ids=lambda provider: provider.__name__,
)
def test_every_batch_provider_launches_its_command_in_the_container(provider: type[pl.SlurmProvider]) -> None:
    image = pl.Container("/images/env", runtime="charliecloud")
    script = provider(check_commands=False, container=image).job_script(POOL, "plait-x")
    assert script.splitlines()[-1].startswith(f"ch-run -b {Path.cwd()} ")
    assert script.splitlines()[-1].endswith("/images/env -- python3 " + shlex.join(POOL[1:]))
    assert "ch-run" not in provider(check_commands=False).job_script(POOL, "plait-x")


def test_srun_starts_the_container_once_per_node() -> None:
    image = pl.Container("img.sif")
    slurm = pl.SlurmProvider(check_commands=False, nodes_per_block=2, launcher="srun", container=image)
    launch = slurm.job_script(["true"], "j").splitlines()[-1]
    assert launch.startswith("srun --nodes=2 --ntasks-per-node=1 apptainer exec")


def test_local_provider_starts_the_runtime_with_the_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A stand-in runtime on PATH that records its argv and environment: the real one cannot be assumed here.
    record = tmp_path / "argv"
    fake = tmp_path / "bin" / "podman"
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" "$PLAIT_SECRET" > {record}\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    local = pl.LocalProvider(workers=1, container=pl.Container("img", runtime="podman"))
    job = local.submit(["echo", "hi"], "plait-local-0", env={"PLAIT_SECRET": "key"})
    local._jobs[job].wait(timeout=10)
    assert local.status([job]) == {job: pl.backends.providers.JobState.COMPLETED}
    argv = record.read_text().splitlines()
    assert argv[:3] == ["run", "--rm", "--network"] and argv[-4:] == ["img", "echo", "hi", "key"]
    assert argv[argv.index("-e") + 1] == "PLAIT_SECRET"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"runtime": "lxc"}, "runtime='lxc'): must be one of apptainer"),
        ({"binds": "/data"}, "give a list of paths"),
        ({"binds": ["/a:relative"]}, "DST an absolute path"),
        ({"binds": ["/a\n/b"]}, "on one line"),
        ({"options": "--nv"}, "give a list of arguments"),
        ({"python": ""}, "python=''"),
    ],
)
def test_bad_settings_are_refused_naming_the_setting(options: dict[str, object], message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message.replace("(", r"\(").replace(")", r"\)")):
        pl.Container("IMG", **options)  # type: ignore[arg-type]


def test_local_provider_refuses_a_runtime_that_is_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(FileNotFoundError, match="runtime='charliecloud'\\): 'ch-run' is not on PATH here"):
        pl.LocalProvider(container=pl.Container("/images/env", runtime="charliecloud"))
    pl.SlurmProvider(check_commands=False, container=pl.Container("img.sif"))  # it runs on the nodes: not checked


def test_no_container_runs_the_command_as_it_is() -> None:
    assert in_container(None, POOL, {"A": "1"}) == POOL


# -- a real pool inside a Charliecloud image ---------------------------------------------


@pl.app(pure=False)  # what it reads depends on where it runs
def image_token() -> str:
    return Path("/plait-image").read_text()


@pytest.mark.timeout(60)
def test_a_pool_runs_its_tasks_inside_a_charliecloud_image(charliecloud_image: tuple[Path, str]) -> None:
    image, token = charliecloud_image
    executor = pl.ZMQExecutor(provider=pl.LocalProvider(workers=1, container=charliecloud(image)))
    with pl.Runtime([executor]) as rt:
        assert rt.run(image_token()) == token
    assert not Path("/plait-image").exists() or Path("/plait-image").read_text() != token


@pytest.mark.timeout(60)
def test_workers_keep_the_images_own_import_paths(charliecloud_image: tuple[Path, str]) -> None:
    # Workers take the driver's sys.path so that its modules import by name; an image's own
    # site-packages must stay on it too, or the image's libraries vanish from the tasks.
    executor = pl.ZMQExecutor(provider=pl.LocalProvider(workers=1, container=with_image_library(charliecloud_image[0])))
    with pl.Runtime([executor]) as rt:
        assert rt.run(from_the_image()) == "image"


def test_a_command_given_as_one_line_is_split_as_a_shell_would_by_every_provider(tmp_path: Path) -> None:
    """Parsl's providers take the command as a string: taken as a sequence, each character would be an argument."""
    line = "python3 -m plait.pool --url 'tcp://10.0.0.1:5000' --key-file '/tmp/a b.keys'"
    argv = shlex.split(line)
    image = pl.Container("docker://python:3.11", runtime="apptainer")
    slurm = pl.SlurmProvider(check_commands=False, job_dir=tmp_path, container=image)
    assert shlex.split(slurm.job_script(line, "n").splitlines()[-1])[-len(argv) :] == argv
    pod = pl.KubernetesProvider(image="python:3.11", namespace="ns").manifest(line, "n")
    assert pod["spec"]["containers"][0]["command"][:4] == argv[:4]
    assert pod["spec"]["containers"][0]["command"][-1] != "'", "no argument is a lone character"
    ssh = pl.SSHProvider(["h"]).remote_command(line)
    assert shlex.split(ssh.splitlines()[-1])[-len(argv) :] == argv
    with pytest.raises(ValueError, match="SlurmProvider: the command is empty"):
        slurm.job_script(" ", "n")
