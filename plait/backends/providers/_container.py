"""Container: run a provider's command (a worker pool) inside an image.

Every provider takes ``container=Container(...)`` and starts its command through
``in_container``: the container runtime's command line, with the working directory
and the provider's own directories (a batch provider's ``job_dir``) bound in at the
same paths, so relative paths and the job's files mean the same inside as outside.
The runtimes are the ones HPC sites use: Apptainer/Singularity (``apptainer exec``),
Charliecloud (``ch-run``), Podman and Docker (``run --rm --network host``: the pool
connects back to the executor's address as the host would).
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Literal

import attrs

__all__ = ["Container", "Runtime", "image_command", "in_container"]

Runtime = Literal["apptainer", "singularity", "charliecloud", "podman", "docker"]
_RUNTIMES = ("apptainer", "singularity", "charliecloud", "podman", "docker")


def _no_newline(what: str, value: str) -> str:
    if not isinstance(value, str) or not value or "\n" in value or "\r" in value:
        raise ValueError(f"Container({what}={value!r}): must be a non-empty string on one line")
    return value


def _image(value: str | os.PathLike[str]) -> str:
    return _no_newline("image", os.fspath(value))


def _bind(value: str | os.PathLike[str]) -> str:
    """``SRC`` or ``SRC:DST``, the source made absolute; the destination must be absolute."""
    text = _no_newline("binds", os.fspath(value))
    source, _, destination = text.partition(":")
    if not source or (destination and not destination.startswith("/")) or ":" in destination:
        raise ValueError(f"Container(binds=[{text!r}]): a bind is 'SRC' or 'SRC:DST' with DST an absolute path")
    source = str(Path(source).absolute())
    return f"{source}:{destination}" if destination else source


def _binds(values: Iterable[str | os.PathLike[str]]) -> tuple[str, ...]:
    if isinstance(values, (str, os.PathLike)):
        raise TypeError(f"Container(binds={values!r}): give a list of paths, e.g. binds=['/scratch']")
    return tuple(_bind(value) for value in values)


def _options(values: Iterable[str]) -> tuple[str, ...]:
    if isinstance(values, str):
        raise TypeError(f"Container(options={values!r}): give a list of arguments, e.g. options=['--nv']")
    return tuple(_no_newline("options", value) for value in values)


@attrs.frozen
class Container:
    """An image a provider's pools run in, and the runtime that runs it.

    ``image`` is what the runtime takes: a SIF file or ``docker://python:3.11`` for
    Apptainer/Singularity, an image directory for Charliecloud, an image name for
    Podman/Docker. ``binds`` are more host paths to mount (``'SRC'`` or ``'SRC:DST'``);
    the working directory and the provider's job directory are always bound.
    ``options`` are extra arguments for the runtime (e.g. ``['--nv']`` for GPUs).
    ``python`` is the interpreter in the image that runs plait (the image must have
    plait installed): it replaces the driver's own interpreter at the head of the
    command; ``None`` keeps the driver's path, for images that hold or bind the same
    environment at the same path.
    """

    image: str = attrs.field(converter=_image)
    runtime: Runtime = attrs.field(default="apptainer")
    binds: tuple[str, ...] = attrs.field(default=(), converter=_binds)
    options: tuple[str, ...] = attrs.field(default=(), converter=_options)
    python: str | None = attrs.field(default="python3")

    @runtime.validator
    def _check_runtime(self, attribute: attrs.Attribute[str], value: str) -> None:
        if value not in _RUNTIMES:
            raise ValueError(f"Container(runtime={value!r}): must be one of {', '.join(_RUNTIMES)}")

    @python.validator
    def _check_python(self, attribute: attrs.Attribute[str | None], value: str | None) -> None:
        if value is not None:
            _no_newline("python", value)

    @property
    def executable(self) -> str:
        """The runtime's command: ``ch-run`` for Charliecloud, else the runtime's name."""
        return "ch-run" if self.runtime == "charliecloud" else self.runtime

    def installed(self) -> Container:
        """This container, once its runtime is found on PATH here (for providers that start it here)."""
        if shutil.which(self.executable) is None:
            raise FileNotFoundError(
                f"Container(runtime={self.runtime!r}): {self.executable!r} is not on PATH here; "
                f"install {self.runtime} or load its module"
            )
        return self

    def command(
        self, command: Sequence[str], *, env_names: Iterable[str] = (), binds: Iterable[Path] = (), workdir: Path
    ) -> list[str]:
        """``command`` run inside the image from ``workdir``, with ``binds`` and ``workdir`` mounted.

        ``env_names`` are variables the command needs from the host environment:
        Apptainer and Charliecloud pass the environment on; Podman and Docker are told.

        >>> Container("img.sif").command(["python3", "-V"], binds=[Path("/home/me/jobs")], workdir=Path("/home/me"))
        ['apptainer', 'exec', '--bind', '/home/me', '--pwd', '/home/me', 'img.sif', 'python3', '-V']
        """
        argv = image_command(command, self.python)
        mounts = list(dict.fromkeys([*_outermost([workdir, *binds]), *self.binds]))
        if self.runtime in ("apptainer", "singularity"):
            flags = [arg for mount in mounts for arg in ("--bind", mount)]
            return [self.runtime, "exec", *flags, "--pwd", str(workdir), *self.options, self.image, *argv]
        if self.runtime == "charliecloud":
            flags = [arg for mount in mounts for arg in ("-b", mount)]
            return [self.executable, *flags, "-c", str(workdir), *self.options, self.image, "--", *argv]
        volumes = [arg for mount in mounts for arg in ("-v", mount if ":" in mount else f"{mount}:{mount}")]
        names = [arg for name in env_names for arg in ("-e", name)]  # the value comes from the host's environment
        run = [self.runtime, "run", "--rm", "--network", "host", *volumes, "-w", str(workdir), *names]
        return [*run, *self.options, self.image, *argv]


def image_command(command: Sequence[str], python: str | None) -> list[str]:
    """``command`` for an image whose interpreter is ``python``: the driver's own is replaced, if it heads it.

    Everything plait starts (a pool, a batch job) runs this process's interpreter, whose
    path means nothing inside an image that does not bind it; ``None`` keeps it.

    >>> image_command([sys.executable, "-m", "plait"], "python3"), image_command(["hostname"], "python3")
    (['python3', '-m', 'plait'], ['hostname'])
    """
    head = [python] if python and command and command[0] == sys.executable else list(command[:1])
    return [*head, *command[1:]]


def _outermost(paths: Iterable[Path]) -> list[str]:
    """The paths not inside another of them: a directory bound once brings its subdirectories."""
    kept: list[Path] = []
    for path in sorted(dict.fromkeys(paths), key=lambda path: len(path.parts)):
        if not any(path.is_relative_to(outer) for outer in kept):
            kept.append(path)
    return [str(path) for path in kept]


def in_container(
    container: Container | None, command: Sequence[str], env: Mapping[str, str] | None, binds: Iterable[Path] = ()
) -> list[str]:
    """What a provider runs for ``command``: itself, or the container's command line around it."""
    if container is None:
        return list(command)
    return container.command(command, env_names=env or {}, binds=binds, workdir=Path.cwd())
