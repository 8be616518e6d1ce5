"""Files as values: inputs keyed by their content, outputs an app promises to write.

A :class:`File` passed to an app is an *input*: it takes part in the call's Merkle key
by the hash of its content (or its size and modification time, ``hash="stat"``), so
editing the file reruns what reads it and nothing else. Hashing happens when the call
is built; a missing input is an error then, not on a worker later.

An app's ``outputs=`` names the files it writes: fixed ``File`` objects, or the names
of parameters whose arguments are the paths to write. Outputs are keyed by path (they
do not exist yet), and checked on the worker once the task has succeeded.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import os
import stat
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

import attrs

from plait._tracebacks import user_facing
from plait.dsl._expr import Expr
from plait.dsl._token import register_token
from plait.staging import FsspecStager, check_url, is_url

__all__ = [
    "File",
    "OutputSpec",
    "check_outputs",
    "check_within",
    "declared_outputs",
    "output_token",
    "outputs_spec",
]

HashMode = Literal["content", "stat"]
_CHUNK = 1 << 20


def _absolute(path: str | os.PathLike[str]) -> str:
    """A URL as it is (its scheme checked), a local path made absolute."""
    if isinstance(path, File):
        return path.path
    if isinstance(path, Expr):  # its result is not known yet, and a File is keyed by its content now
        raise TypeError(
            f"File takes a path or URL, not an Expr ({path!r}): pass the Expr to the app "
            "that reads the file, as a str argument"
        )
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"File takes a path or URL (str or os.PathLike), not a {type(path).__name__}")
    path = os.fspath(path)
    if path.startswith("file://"):
        path = path[len("file://") :]
    elif is_url(path):
        return check_url(path)
    return os.path.abspath(path)


@user_facing
@attrs.frozen
class File:
    """A file: a path on a filesystem the driver and the workers share, or a URL.

    A local path is made absolute where the File is created, so a worker with another
    working directory finds the same file. ``str(file)`` and ``os.fspath(file)`` are
    the path, ready for a command line. A URL (``https://``, ``sftp://host/path``, any
    scheme fsspec knows) is staged: an executor fetches it to the worker before the
    task, which sees a local path, and pushes an output there after (docs/backends.md).

    >>> f = File("/data/../data/input.csv")
    >>> str(f), f.name
    ('/data/input.csv', 'input.csv')
    >>> File(f) == f
    True
    """

    path: str = attrs.field(converter=_absolute)
    hash: HashMode = attrs.field(default="content", validator=attrs.validators.in_(("content", "stat")))

    @property
    def name(self) -> str:
        """The last part of the path."""
        return os.path.basename(self.path)

    @property
    def is_url(self) -> bool:
        """Whether the file is named by a URL, to be staged, rather than a local path."""
        return is_url(self.path)

    def exists(self) -> bool:
        """Whether the file is there now (a URL: asked of its server)."""
        return _DRIVER_STAGER.exists(self.path) if self.is_url else os.path.exists(self.path)

    def read_text(self, encoding: str = "utf-8") -> str:
        """The file's content as text (a URL: read from its server)."""
        if self.is_url:
            return _DRIVER_STAGER.read_bytes(self.path).decode(encoding)
        with open(self.path, encoding=encoding) as f:
            return f.read()

    def __fspath__(self) -> str:
        return self.path

    def __str__(self) -> str:
        return self.path


_DRIVER_STAGER = FsspecStager()  # where the File is used outside a staged task: fsspec's config applies
# (path, inode, size, mtime, ctime) -> content digest: an unchanged file is read once per process
_digests: dict[tuple[str, int, int, int, int], str] = {}


def _file_token(file: File) -> tuple[str, ...]:
    if file.is_url:  # fsspec's configuration (FSSPEC_SFTP_KEY_FILENAME=..., ~/.config/fsspec) applies
        return _DRIVER_STAGER.identity(file.path)
    try:
        info = os.stat(file.path)
    except FileNotFoundError:
        raise FileNotFoundError(f"input file {file.path} does not exist") from None
    if not stat.S_ISREG(info.st_mode):
        raise FileNotFoundError(f"input file {file.path} is not a regular file")
    if file.hash == "stat":
        return ("stat", file.path, str(info.st_size), str(info.st_mtime_ns))
    seen = (file.path, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)
    content = _digests.get(seen)
    if content is None:
        content = _digests[seen] = _hash_content(file.path)
    return ("content", file.path, content)


def _hash_content(path: str) -> str:
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


register_token(File, _file_token)


def output_token(value: object) -> object:
    """What an output argument contributes to a key: its path, never its content.

    Anything that is not a path (an Expr computing one) is left for the key to handle.

    >>> output_token("/tmp/out.txt")
    ('output', '/tmp/out.txt')
    """
    if isinstance(value, (str, os.PathLike)):
        return ("output", _absolute(value))
    return value


@attrs.frozen
class OutputSpec:
    """An app's declared outputs: fixed Files and the names of output parameters."""

    files: tuple[File, ...] = ()
    params: tuple[str, ...] = ()


def outputs_spec(outputs: Iterable[object], signature: inspect.Signature, app: str) -> OutputSpec:
    """Check ``outputs=`` against the app's signature.

    >>> sig = inspect.signature(lambda src, out: None)
    >>> outputs_spec([File("/a"), "out"], sig, "f")
    OutputSpec(files=(File(path='/a', hash='content'),), params=('out',))
    >>> outputs_spec(["dst"], sig, "f")
    Traceback (most recent call last):
    ...
    ValueError: app f: outputs names parameter 'dst', which it does not have (it has src, out)
    """
    files, params = [], []
    for item in outputs:
        if isinstance(item, File):
            files.append(item)
        elif isinstance(item, str):
            if item not in signature.parameters:
                have = ", ".join(signature.parameters) or "no parameters"
                raise ValueError(f"app {app}: outputs names parameter {item!r}, which it does not have (it has {have})")
            params.append(item)
        else:
            raise TypeError(
                f"app {app}: outputs takes pl.File objects or names of parameters, not a {type(item).__name__}"
            )
    return OutputSpec(tuple(files), tuple(params))


def declare_outputs_hint(decorator: str, app: str, param: str, value: object) -> str:
    """How to declare as an output the file a call passes to ``param``, Parsl-style
    (``write(text, outputs=[File("out.txt")])``) where plait wants it on the decorator.

    >>> declare_outputs_hint("pl.shell", "sort", "out", File("/a"))
    "declare the parameter as an output: @pl.shell(outputs=['out'])"
    """
    if isinstance(value, (str, os.PathLike)):
        return f"declare the parameter as an output: @{decorator}(outputs=[{param!r}])"
    return (
        f"declare its outputs on the decorator, not in the call: a parameter per file, "
        f"@{decorator}(outputs=['out']) def {app.rpartition('.')[2]}(..., out: pl.File), called with "
        f"out=pl.File('result.txt'); or fixed paths, @{decorator}(outputs=[pl.File('result.txt')])"
    )


def declared_outputs(
    spec: OutputSpec,
    signature: inspect.Signature,
    args: tuple[Any, ...],
    kwargs: Mapping[str, Any],
    app: str,
    *,
    base: str | None = None,
) -> tuple[File, ...]:
    """The Files one call promises to write: the fixed ones, then the output arguments.

    A relative path given as a str is where the command writes it: under ``base``, the
    directory it runs in, when there is one.
    """
    if not spec.params:
        return spec.files
    bound = signature.bind(*args, **kwargs)
    bound.apply_defaults()
    found = list(spec.files)
    for name in spec.params:
        value = bound.arguments[name]
        if not isinstance(value, (str, os.PathLike)):
            raise TypeError(
                f"{app}(): output argument {name!r} must be a pl.File or a path, not a {type(value).__name__}"
            )
        found.append(File(value if base is None else os.path.join(base, value)))
    return tuple(found)


def check_outputs(files: Iterable[File], app: str) -> None:
    """After a successful task: every declared output must exist."""
    for file in files:
        if not file.exists():
            raise FileNotFoundError(f"{app}: declared output {file.path} does not exist after the task succeeded")


def check_within(root: str | None, path: str | os.PathLike[str], app: str, what: str) -> None:
    """Refuse ``path`` when the app restricts paths to ``root`` and it lies outside.

    >>> check_within("/work/project", "/work/project/data/x", "f", "argument 'src'")
    >>> check_within("/work/project", "/work/project-old/x", "f", "argument 'src'")
    Traceback (most recent call last):
    ...
    PermissionError: f: argument 'src' is /work/project-old/x, outside the allowed directory /work/project
    >>> check_within("/work/project", "https://example.org/x", "f", "argument 'src'")
    Traceback (most recent call last):
    ...
    PermissionError: f: argument 'src' is the URL https://example.org/x; root= allows only paths under /work/project
    """
    if root is None:
        return
    if is_url(os.fspath(path)):  # staged to a scratch directory outside root: not allowed yet
        raise PermissionError(f"{app}: {what} is the URL {os.fspath(path)}; root= allows only paths under {root}")
    real = os.path.realpath(os.fspath(path))
    if os.path.commonpath([real, root]) != root:
        raise PermissionError(f"{app}: {what} is {real}, outside the allowed directory {root}")


def files_in(value: object, where: str, found: list[tuple[str, File]]) -> None:
    """Every File inside ``value`` (containers and attrs values, e.g. a ShellResult's outputs).

    >>> found = []
    >>> files_in({"a": [File("/x")], "b": 2}, "argument 'v'", found)
    >>> found
    [("argument 'v'['a'][0]", File(path='/x', hash='content'))]
    """
    if isinstance(value, File):
        found.append((where, value))
    elif isinstance(value, (list, tuple, set, frozenset)):
        for i, item in enumerate(value):
            files_in(item, f"{where}[{i}]", found)
    elif isinstance(value, dict):
        for key, item in value.items():
            files_in(item, f"{where}[{key!r}]", found)
    elif attrs.has(cls := type(value)) and not isinstance(value, Expr):  # an Expr's files: its apps check them
        for field in attrs.fields(cls):
            files_in(getattr(value, field.name), f"{where}.{field.name}", found)


def argument_files(signature: inspect.Signature, args: Any, kwargs: Any) -> list[tuple[str, File]]:
    """Every File among a call's arguments, with where it is; none when the arguments do
    not fit the signature (the call itself reports that).

    >>> argument_files(inspect.signature(lambda src, n: None), ([File("/x")],), {"n": 1})
    [("argument 'src'[0]", File(path='/x', hash='content'))]
    """
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError:
        return []
    found: list[tuple[str, File]] = []
    for param, value in bound.arguments.items():
        files_in(value, f"argument {param!r}", found)
    return found


class WithOutputs:
    """A Python app's function that checks, after it returns, that its outputs exist.

    It looks like the function it wraps (name, signature, docs); ``__plait_inner__``
    lets the app's identity hash the wrapped function's code plus the declared paths.
    """

    def __init__(self, fn: Callable[..., Any], spec: OutputSpec) -> None:
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.name: str = getattr(fn, "__qualname__", repr(fn))
        self.spec = spec
        self.__plait_inner__ = (fn, _settings(spec))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        name = self.name
        files = declared_outputs(self.spec, inspect.signature(self.fn), args, kwargs, name)
        value = self.fn(*args, **kwargs)
        check_outputs(files, name)
        return value


def _settings(spec: OutputSpec) -> object:
    # Paths only: an output's content is not known when the app is defined.
    return ([f.path for f in spec.files], list(spec.params))
