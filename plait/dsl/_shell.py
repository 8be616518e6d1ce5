"""Shell apps: a function that returns a command line, run on a worker.

``@shell`` builds an :class:`App` whose function, on the worker, calls the user's
function to get the command, runs it (``plait.dsl._shell_exec``), checks its exit
code and declared outputs, and returns a :class:`ShellResult`. Building the Expr runs
nothing, as for any app.
"""

from __future__ import annotations

import functools
import inspect
import os
import shlex
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar, ParamSpec, overload

import attrs

from plait._tracebacks import user_facing
from plait.dsl._app import App
from plait.dsl._expr import Expr
from plait.dsl._file import (
    File,
    OutputSpec,
    argument_files,
    check_outputs,
    check_within,
    declared_outputs,
    outputs_spec,
)
from plait.dsl._options import app_options, typed_signature
from plait.dsl._retry import Retry
from plait.dsl._shell_template import refuse_unfilled_placeholders

__all__ = ["ShellError", "ShellResult", "shell"]

P = ParamSpec("P")
Command = str | Sequence[str | os.PathLike[str]]
Stream = str | os.PathLike[str] | None
_SHELL_OPTIONS = ("cwd", "env", "stdout", "stderr", "root")
_TAIL_LINES = 20
_TAIL_BYTES = 64 * 1024


@attrs.frozen
class ShellResult:
    """How a shell app's command ended: exit code, captured output, files written.

    ``stdout``/``stderr`` are None when the stream went to a file. ``outputs`` are the
    declared output Files, in declaration order: pass the Expr of this result to the
    next app and read ``result.output`` there, so that app waits for the files.
    """

    command: str | tuple[str, ...]
    returncode: int
    stdout: str | None
    stderr: str | None
    outputs: tuple[File, ...] = ()

    @property
    def output(self) -> File:
        """The one declared output; an error when there are none or several."""
        if len(self.outputs) != 1:
            raise ValueError(f"{_shown(self.command)} declared {len(self.outputs)} outputs; use .outputs[i]")
        return self.outputs[0]


class ShellError(Exception):
    """A shell app's command exited with a non-zero code (or was killed by a signal)."""

    __module__ = "plait"  # tracebacks name it as users import it, not by its private module

    def __init__(self, app: str, command: str | tuple[str, ...], returncode: int, stderr_tail: str) -> None:
        super().__init__(app, command, returncode, stderr_tail)
        self.app = app
        self.command = command
        self.returncode = returncode
        self.stderr_tail = stderr_tail

    def __str__(self) -> str:
        code = self.returncode
        how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
        text = f"{self.app}: command {how}: {_shown(self.command)}"
        if self.stderr_tail:
            text += f"\n--- last lines of stderr ---\n{self.stderr_tail}"
        return text


@attrs.frozen
class _Settings:
    cwd: str | None
    env: tuple[tuple[str, str], ...]
    stdout: str | File | None
    stderr: str | File | None
    outputs: OutputSpec
    root: str | None

    def paths(self) -> list[tuple[str, str]]:
        """Every path the options name, with the option's name, for the root check."""
        named = [("cwd", self.cwd), ("stdout", self.stdout), ("stderr", self.stderr)]
        found = [(what, os.fspath(p)) for what, p in named if p is not None]
        return found + [("declared output", f.path) for f in self.outputs.files]

    def identity(self) -> object:
        streams = [None if s is None else os.fspath(s) for s in (self.stdout, self.stderr)]
        return (self.cwd, self.env, streams, [f.path for f in self.outputs.files], list(self.outputs.params))


class ShellCommand:
    """What a worker runs for a shell app: get the command, run it, check it."""

    def __init__(self, fn: Callable[..., Any], settings: _Settings) -> None:
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.name: str = getattr(fn, "__qualname__", repr(fn))
        self.settings = settings
        self.__plait_inner__ = (fn, settings.identity())

    def __call__(self, *args: Any, **kwargs: Any) -> ShellResult:
        from plait.dsl._shell_exec import run_command  # only on the worker; see docs/shell.md

        name, settings = self.name, self.settings
        command = _command(self.fn(*args, **kwargs), name)
        outputs = declared_outputs(settings.outputs, inspect.signature(self.fn), args, kwargs, name, base=settings.cwd)
        outputs += tuple(s for s in (settings.stdout, settings.stderr) if isinstance(s, File))
        if settings.root is not None:
            _check_files(settings.root, name, inspect.signature(self.fn), args, kwargs)
            for file in outputs:
                check_within(settings.root, file.path, name, "declared output")
        try:
            done = run_command(
                command,
                cwd=settings.cwd,
                env=dict(settings.env),
                stdout=_path(settings.stdout),
                stderr=_path(settings.stderr),
            )
        except FileNotFoundError as error:
            what = settings.cwd if error.filename == settings.cwd else command[0]
            raise FileNotFoundError(f"{name}: cannot run {_shown(command)}: {what} not found") from None
        if done.returncode != 0:
            tail = _tail(done.stderr) if done.stderr is not None else _file_tail(_path(settings.stderr))
            raise ShellError(name, command, done.returncode, tail)
        check_outputs(outputs, name)
        return ShellResult(command, done.returncode, done.stdout, done.stderr, outputs)


@attrs.frozen(eq=False, repr=False)
class ShellApp(App[P, ShellResult]):
    """An app whose calls run a command line; refuses paths outside ``root`` at once."""

    decorator: ClassVar[str] = "pl.shell"

    @user_facing
    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Expr[ShellResult]:
        command = self.fn
        assert isinstance(command, ShellCommand)
        root = command.settings.root
        if root is not None:
            _check_files(root, self.name, self.signature, args, kwargs)
            for param in command.settings.outputs.params:
                _check_output_argument(root, self, param, args, kwargs)
        return App.__call__(self, *args, **kwargs)  # not super(): attrs left user_facing's wrapper unslotted

    def __repr__(self) -> str:
        return f"<plait shell app {self.name}>"


def _check_output_argument(root: str, app: ShellApp[Any], param: str, args: Any, kwargs: Any) -> None:
    try:
        bound = app.signature.bind(*args, **kwargs)
    except TypeError:
        return  # App.__call__ reports the bad call
    bound.apply_defaults()
    value = bound.arguments.get(param)
    if isinstance(value, (str, os.PathLike)):  # else an Expr: checked on the worker
        cwd = app.fn.settings.cwd if isinstance(app.fn, ShellCommand) else None
        path = value if cwd is None else os.path.join(cwd, value)  # where the command writes it
        check_within(root, path, app.name, f"output argument {param!r}")


def _check_files(root: str, name: str, signature: inspect.Signature, args: Any, kwargs: Any) -> None:
    """Refuse any File among the arguments that lies outside ``root``."""
    for where, file in argument_files(signature, args, kwargs):
        check_within(root, file.path, name, where)


def _command(value: object, app: str) -> str | tuple[str, ...]:
    """The command the user's function returned, checked: a str, or a list of str.

    >>> _command(["cat", File("/data/a b.txt")], "show")
    ('cat', '/data/a b.txt')
    >>> _command(["echo", 1], "show")
    Traceback (most recent call last):
    ...
    TypeError: show: item 1 of the command is a int (1); every item must be a str (or a pl.File)
    """
    if isinstance(value, str):
        if not value.strip():
            raise ValueError(f"{app}: the command is empty")
        return value
    if isinstance(value, (list, tuple)) and value:
        argv = []
        for i, item in enumerate(value):
            if not isinstance(item, (str, os.PathLike)):
                raise TypeError(
                    f"{app}: item {i} of the command is a {type(item).__name__} ({item!r}); "
                    "every item must be a str (or a pl.File)"
                )
            argv.append(os.fspath(item))
        return tuple(argv)
    raise TypeError(
        f"{app}: the function must return the command as a str or a non-empty list of str, "
        f"not {type(value).__name__} {value!r}"
    )


def _shown(command: str | Sequence[str]) -> str:
    return command if isinstance(command, str) else shlex.join(command)


def _path(stream: str | File | None) -> str | None:
    return None if stream is None else os.fspath(stream)


def _tail(text: str) -> str:
    return "\n".join(text.rstrip("\n").splitlines()[-_TAIL_LINES:])


def _file_tail(path: str | None) -> str:
    if path is None:
        return ""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.path.getsize(path) - _TAIL_BYTES))
            return _tail(f.read().decode("utf-8", errors="replace"))
    except OSError:
        return ""


def _stream(value: object, option: str, app: str) -> str | File | None:
    if value is None or isinstance(value, File):
        return value
    if isinstance(value, (str, os.PathLike)):
        return os.path.abspath(os.fspath(value))
    raise TypeError(f"shell app {app}: {option} must be a path, a pl.File or None (captured), not {value!r}")


def _settings(
    fn: Callable[..., Any],
    name: str,
    *,
    cwd: object,
    env: object,
    stdout: object,
    stderr: object,
    outputs: Iterable[object],
    root: object,
) -> _Settings:
    if cwd is not None and not isinstance(cwd, (str, os.PathLike)):
        raise TypeError(f"shell app {name}: cwd must be a path, not {cwd!r}")
    if env is not None and not (
        isinstance(env, Mapping) and all(isinstance(k, str) and isinstance(v, str) for k, v in env.items())
    ):
        raise TypeError(f"shell app {name}: env must be a mapping of str to str, not {env!r}")
    if root is not None and not isinstance(root, (str, os.PathLike)):
        raise TypeError(f"shell app {name}: root must be a path, not {root!r}")
    settings = _Settings(
        cwd=None if cwd is None else os.path.abspath(os.fspath(cwd)),
        env=tuple(sorted((env or {}).items())),
        stdout=_stream(stdout, "stdout", name),
        stderr=_stream(stderr, "stderr", name),
        outputs=outputs_spec(outputs, inspect.signature(fn), name),
        root=None if root is None else os.path.realpath(os.fspath(root)),
    )
    for what, path in settings.paths():
        check_within(settings.root, path, name, what)
    return settings


@overload
def shell(fn: Callable[P, Command], /) -> App[P, ShellResult]: ...


@overload
def shell(
    *,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    stdout: Stream = None,
    stderr: Stream = None,
    outputs: Iterable[File | str] = (),
    root: str | os.PathLike[str] | None = None,
    retries: int | Retry | None = None,
    timeout: float | None = None,
    executor: str | None = None,
    cache: bool = True,
    pure: bool | None = None,
    version: str | None = None,
    resources: Mapping[str, Any] | None = None,
    ignore_for_cache: Iterable[str] = (),
) -> Callable[[Callable[P, Command]], App[P, ShellResult]]: ...


@typed_signature
@user_facing
def shell(fn: Callable[..., Any] | None = None, /, **options: Any) -> Any:
    """Make ``fn`` a shell app: it returns a command line, which runs on a worker.

    A str runs with ``/bin/sh -c``; a list of str is the argv itself, never re-split.
    The Expr's value is a :class:`ShellResult`; a non-zero exit raises
    :class:`ShellError` with the last lines of stderr. Options are those of
    :func:`plait.app` plus ``cwd``, ``env`` (added to the worker's environment),
    ``stdout``/``stderr`` (a path or :class:`File` to write; captured when None),
    and ``root`` (every path the app names must lie under it).
    """
    if fn is None:
        return user_facing(functools.partial(_make_shell, options=options))
    return _make_shell(fn, options)


def _make_shell(fn: Callable[..., Any], options: dict[str, Any]) -> ShellApp[Any]:
    if isinstance(fn, App):
        raise TypeError(f"{fn.name} is already an app")
    if not callable(fn):
        raise TypeError(f"@shell decorates a function returning a command line, not {fn!r}")
    name = getattr(fn, "__qualname__", repr(fn))
    refuse_unfilled_placeholders(fn, name)
    shell_only = {k: options.pop(k, None) for k in _SHELL_OPTIONS}
    options_ = app_options(options, f"shell app {name}", also=_SHELL_OPTIONS)
    settings = _settings(fn, name, outputs=options_.outputs, **shell_only)
    return ShellApp(ShellCommand(fn, settings), options_)
