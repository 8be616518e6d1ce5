"""PackedEnvironment: the driver's Python packages, shipped to hosts that lack them.

The driver packs the distributions its code needs (every one installed, or the ones
named and what they require) and directories of its own modules into one tar archive,
named by a hash of its content and the Python it is for, in ``directory`` (a file system
the hosts share). A pool's (or a batch job's) command becomes a small bootstrap that the
host's ``python`` runs: it unpacks the archive once per host into ``<cache>/<hash>`` (pools
starting together race safely: one rename wins) and runs the command with that directory
on PYTHONPATH. A changed environment has another hash, so it is unpacked anew.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import sys
import sysconfig
import tarfile
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import attrs

from plait.backends._python import SAFE_PATH
from plait.backends.providers._container import image_command

__all__ = ["Packed", "PackedEnvironment", "in_environment", "python_tag"]

# Run by the host's Python, before anything of plait is importable there: the standard library only.
_BOOTSTRAP = r"""
import os, shutil, sys, sysconfig, tarfile, tempfile
archive, digest, tag, cache = sys.argv[1:5]
here = "%s-%d.%d-%s" % (sys.implementation.name, sys.version_info[0], sys.version_info[1], sysconfig.get_platform())
if here != tag:
    sys.exit("plait: the packed environment %s is for %s; this host's %s is %s" % (archive, tag, sys.executable, here))
cache = os.path.expanduser(cache)
target = os.path.join(cache, digest)
if not os.path.isdir(target):
    os.makedirs(cache, exist_ok=True)
    partial = tempfile.mkdtemp(prefix=digest + ".", dir=cache)
    with tarfile.open(archive) as packed:
        packed.extractall(partial, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    try:
        os.rename(partial, target)
    except OSError:
        shutil.rmtree(partial, ignore_errors=True)  # another pool on this host unpacked it first
paths = [target] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
os.environ["PYTHONPATH"] = os.pathsep.join(paths)
os.execvp(sys.argv[5], sys.argv[5:])
"""


def python_tag() -> str:
    """What a packed environment runs on: the implementation, ``major.minor`` and platform.

    >>> python_tag().startswith(f"{sys.implementation.name}-{sys.version_info[0]}.{sys.version_info[1]}-")
    True
    """
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    return f"{sys.implementation.name}-{version}-{sysconfig.get_platform()}"


def _names(values: Iterable[str] | None) -> tuple[str, ...] | None:
    if isinstance(values, str):
        raise TypeError(f"PackedEnvironment(distributions={values!r}): give a list, e.g. distributions=['plait']")
    return None if values is None else tuple(values)


def _directories(values: Iterable[str | os.PathLike[str]]) -> tuple[Path, ...]:
    if isinstance(values, (str, os.PathLike)):
        raise TypeError(f"PackedEnvironment(paths={values!r}): give a list of directories")
    paths = tuple(Path(value).absolute() for value in values)
    for path in paths:
        if not path.is_dir():
            raise ValueError(f"PackedEnvironment(paths=[{str(path)!r}]): not a directory")
    return paths


def _absolute(value: str | os.PathLike[str]) -> Path:
    return Path(value).absolute()


@attrs.frozen
class Packed:
    """A packed environment on the shared file system, and how a host runs a command in it."""

    archive: Path
    digest: str
    tag: str
    cache: str
    python: str

    def command(self, command: Sequence[str]) -> list[str]:
        """``command`` run by the bootstrap: unpacked once per host, then run on it."""
        boot = [self.python, SAFE_PATH, "-c", _BOOTSTRAP, str(self.archive), self.digest, self.tag, self.cache]
        return [*boot, *image_command(command, self.python)]


@attrs.frozen
class PackedEnvironment:
    """The driver's environment, for hosts that lack it (``ZMQExecutor``/``BatchExecutor(environment=...)``).

    ``distributions`` are the ones to pack, with what they require (None: every
    distribution this Python has installed); ``paths`` are directories of your own
    modules, packed under their names (a package directory, or a folder of modules).
    The archive goes to ``directory``, which the hosts must see (a shared file system);
    each host unpacks it once into ``cache`` (``~`` is the host's home) and runs the pool
    with its ``python``, which must be the driver's Python version on the same platform.
    """

    distributions: tuple[str, ...] | None = attrs.field(default=None, converter=_names)
    paths: tuple[Path, ...] = attrs.field(default=(), converter=_directories)
    directory: Path = attrs.field(default=Path(".plait/envs"), converter=_absolute)
    cache: str = "~/.cache/plait/envs"
    python: str = "python3"

    def pack(self) -> Packed:
        """Write the archive (unless one of the same content is there) and say where it is."""
        files = dict(sorted(self.files().items()))
        key = _digest(files)
        archive = self.directory / f"env-{key}.tar"
        if not archive.exists():
            self.directory.mkdir(parents=True, exist_ok=True)
            _write(files, archive)
        return Packed(archive, key, python_tag(), self.cache, self.python)

    def files(self) -> dict[str, Path]:
        """What the archive holds: its names (as on PYTHONPATH) and the files they come from."""
        files: dict[str, Path] = {}
        for dist in self._distributions():
            files.update(_installed_files(dist))
        for path in self.paths:
            files.update(_tree(path, path.name))
        return files

    def _distributions(self) -> list[importlib.metadata.Distribution]:
        from packaging.utils import canonicalize_name  # only the driver packs: pools never import it

        # The first of a name on sys.path is the one imported: let it win.
        everything = reversed(list(importlib.metadata.distributions()))
        installed = {canonicalize_name(dist.metadata["Name"] or ""): dist for dist in everything}
        if self.distributions is None:
            return list(installed.values())
        wanted: dict[str, importlib.metadata.Distribution] = {}
        stack = [(name, frozenset[str]()) for name in self.distributions]
        while stack:
            name, extras = stack.pop()
            key = canonicalize_name(name)
            if key in wanted:
                continue
            if key not in installed:
                if name in (self.distributions or ()):
                    raise ValueError(f"PackedEnvironment(distributions=[{name!r}]): not installed in {sys.prefix}")
                continue  # required only under a marker that does not hold here
            wanted[key] = installed[key]
            stack.extend(_requirements(installed[key], extras))
        return list(wanted.values())


Needed = Iterator[tuple[str, frozenset[str]]]  # distribution names, with the extras asked of each


def _digest(files: dict[str, Path]) -> str:
    """A hash of the files' names and content, and of the Python they are for."""
    digest = hashlib.sha256(python_tag().encode())
    for name, source in files.items():
        digest.update(f"\0{name}\0{source.stat().st_size}\0".encode())
        with source.open("rb") as content:
            for chunk in iter(lambda: content.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()[:24]


def _write(files: dict[str, Path], archive: Path) -> None:
    """The tar of ``files``, whole or not at all: a pack running beside this one may read it."""
    partial = tempfile.NamedTemporaryFile(dir=archive.parent, suffix=".partial", delete=False)  # noqa: SIM115
    try:
        with partial, tarfile.open(fileobj=partial, mode="w", dereference=True) as tar:  # files, not links
            for name, source in files.items():
                tar.add(source, arcname=name, recursive=False)
        os.replace(partial.name, archive)
    except BaseException:
        os.unlink(partial.name)
        raise


def _requirements(dist: importlib.metadata.Distribution, extras: frozenset[str]) -> Needed:
    """The distributions ``dist`` needs here (with ``extras`` asked of it)."""
    from packaging.requirements import InvalidRequirement, Requirement

    for line in dist.requires or []:
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue
        marker = requirement.marker
        if marker is None or any(marker.evaluate({"extra": extra}) for extra in ("", *extras)):
            yield requirement.name, frozenset(requirement.extras)


def _installed_files(dist: importlib.metadata.Distribution) -> dict[str, Path]:
    """A distribution's files in its site-packages, and its modules from where this Python imports them.

    An editable install (or a checkout on PYTHONPATH) records only a path hook, or an
    egg-info's list of its sources as they were: its modules are packed from where they are now.
    """
    root = Path(str(dist.locate_file(""))).absolute()
    # An installed wheel's RECORD lists its files exactly; an egg-info's SOURCES.txt (what
    # ``pip install -e .`` leaves in a checkout) lists those of its install, not those added since.
    exact = dist.read_text("RECORD") is not None
    files: dict[str, Path] = {}
    tops: set[str] = set((dist.read_text("top_level.txt") or "").split())
    for record in dist.files or []:
        name = os.path.normpath(str(record))
        if name.startswith("..") or "__pycache__" in name or name.endswith(".pth") or name.startswith("__editable__"):
            continue
        source = root / name
        if source.is_file():
            files[name] = source
        top = Path(name).parts[0].removesuffix(".py")
        if top.isidentifier():  # a package or a pure module; not *.dist-info, *.libs, compiled modules
            tops.add(top)
    for top in tops:
        location = _imported_from(top)
        if location is not None and not (exact and location.is_relative_to(root)):
            files.update(_tree(location, location.name))
    return files


def _imported_from(module: str) -> Path | None:
    """The package directory or module file this Python imports ``module`` from, if it can."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.submodule_search_locations:
        locations = list(spec.submodule_search_locations)
        return Path(locations[0]) if len(locations) == 1 else None  # a namespace package spans several
    return Path(spec.origin) if spec.origin and os.path.isfile(spec.origin) else None


def _tree(path: Path, name: str) -> dict[str, Path]:
    """The files under ``path`` (or the file itself), named from ``name``, without bytecode caches."""
    if path.is_file():
        return {name: path}
    return {
        str(Path(name) / file.relative_to(path)): file
        for file in path.rglob("*")
        if file.is_file() and "__pycache__" not in file.parts
    }


def in_environment(packed: Packed | None, command: Sequence[str]) -> list[str]:
    """What a host runs for ``command``: itself, or the bootstrap of the packed environment around it."""
    return list(command) if packed is None else packed.command(command)
