"""What runs on a worker for each kind of Parsl app, with Parsl's special keyword arguments.

``walltime=`` raises :class:`AppTimeout` in a Python app's thread, as Parsl does (see
``_walltime``), so it works on thread and process executors alike; a bash app's command past
its walltime is killed with everything it started. ``stdout=``/``stderr=`` are a path (appended to), a ``(path, mode)``
pair, or a File (written).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
import subprocess
from collections.abc import Callable
from typing import IO, Any

import psutil

from plait.compat.parsl.app._walltime import call_within
from plait.compat.parsl.app.errors import (
    AppBadFormatting,
    AppTimeout,
    BadStdStreamFile,
    BashExitFailure,
    MissingOutputs,
)
from plait.compat.parsl.data_provider.files import File

__all__ = ["BashTask", "JoinTask", "PythonTask"]


class _Task:
    """The user's function, wrapped; plait keys the app by the user's code (``__plait_inner__``)."""

    kind = ""

    def __init__(self, fn: Callable[..., Any]) -> None:
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.name: str = getattr(fn, "__name__", "app")
        self.__plait_inner__ = (fn, f"parsl {self.kind}")
        self.signature = inspect.signature(fn)
        params = self.signature.parameters.values()
        self._var_keyword = next((p.name for p in params if p.kind is p.VAR_KEYWORD), None)

    def named(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """The call's arguments by name: plait passes keyword arguments positionally."""
        named = self.signature.bind(*args, **kwargs).arguments
        return {**named, **named.get(self._var_keyword, {})} if self._var_keyword else named

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)


class PythonTask(_Task):
    kind = "python_app"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        walltime = self.named(args, kwargs).get("walltime")
        if walltime is None:
            return self.fn(*args, **kwargs)
        try:
            return call_within(walltime, self.fn, *args, **kwargs)
        except AppTimeout as error:
            if error.args:  # the app's own
                raise
            raise AppTimeout(f"App {self.name} exceeded walltime: {walltime} seconds") from None


class JoinTask(_Task):
    """A join app's body: it runs in the driver (on its internal threads) and returns futures."""

    kind = "join_app"


class BashTask(_Task):
    """Make the command line, run it with bash, and check its exit code and outputs."""

    kind = "bash_app"

    def __call__(self, *args: Any, **kwargs: Any) -> int:
        name = self.name
        named = self.named(args, kwargs)
        try:
            command = self.fn(*args, **kwargs)
        except IndexError as error:
            raise AppBadFormatting(f"App formatting failed for app '{name}' with IndexError: {error}") from error
        if not isinstance(command, str):
            raise ValueError(f"Expected a str for bash_app commandline, got {type(command)}")
        walltime = named.get("walltime")
        with contextlib.ExitStack() as stack:
            out = _open_stream(stack, "stdout", named.get("stdout"))
            err = _open_stream(stack, "stderr", named.get("stderr"))
            if err is not None:
                print(f"--> executable follows <--\n{command}\n--> end executable <--", file=err, flush=True)
            returncode = _run(command, out, err, walltime, name)
        if returncode != 0:
            raise BashExitFailure(name, returncode)
        missing = [f for f in named.get("outputs") or () if not os.path.exists(os.fspath(f))]
        if missing:
            raise MissingOutputs(f"Missing outputs from app {name}", missing)
        return returncode


def _run(command: str, out: IO[str] | None, err: IO[str] | None, walltime: float | None, name: str) -> int:
    process = subprocess.Popen(
        command, shell=True, executable="/bin/bash", stdin=subprocess.DEVNULL, stdout=out, stderr=err
    )
    try:
        return process.wait(timeout=walltime)
    except subprocess.TimeoutExpired:
        _kill_tree(process)
        raise AppTimeout(f"App {name} exceeded walltime: {walltime} seconds") from None
    except BaseException:  # interrupted (a walltime, a shutdown): the command must not outlive the task
        _kill_tree(process)
        raise


def _kill_tree(process: subprocess.Popen[Any]) -> None:
    with contextlib.suppress(psutil.Error):
        for child in psutil.Process(process.pid).children(recursive=True):
            with contextlib.suppress(psutil.Error):
                child.kill()
    process.kill()
    process.wait()


def _open_stream(stack: contextlib.ExitStack, which: str, spec: object) -> IO[str] | None:
    """The file a ``stdout=``/``stderr=`` argument names, open: Parsl appends to a plain path."""
    if spec is None:
        return None
    if isinstance(spec, File):
        path, mode = spec.filepath, "w"
    elif isinstance(spec, (str, os.PathLike)):
        path, mode = os.fspath(spec), "a+"
    elif isinstance(spec, tuple) and len(spec) == 2:
        path, mode = spec
    else:
        raise BadStdStreamFile(f"{which}={spec!r}: give a path, a (path, mode) pair, or a File")
    try:
        path = os.fspath(path)
        if os.path.dirname(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
        return stack.enter_context(open(path, mode))
    except (OSError, ValueError, TypeError) as error:
        raise BadStdStreamFile(f"{which}={spec!r}: {error}") from error
