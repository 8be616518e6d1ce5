"""A call whose Files named by URL are staged on the worker: fetched before, pushed after.

The runtime wraps an app's function in :class:`StagedCall` when the call's arguments
hold a URL and its executor stages (``staging="auto"`` or ``"isolated"``). On the
worker, each URL input is fetched into a directory of this task's own under the
scratch directory, and the function sees a local :class:`File` there; each URL passed
to an output parameter becomes a local path to write, pushed to the URL once the
function has returned. The value it returns names the URLs again, not the scratch
paths, which are removed when the task ends.
"""

from __future__ import annotations

import inspect
import os
import tempfile
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from plait.dsl._args import ATOMS
from plait.dsl._expr import Expr
from plait.dsl._file import File, WithOutputs, argument_files
from plait.dsl._shell import ShellCommand
from plait.staging import Stager, Staging

__all__ = ["StagedCall", "staged"]


def staged(
    fn: Callable[..., Any], args: tuple[Any, ...], kwargs: Mapping[str, Any], staging: Staging, app: str
) -> Callable[..., Any] | None:
    """The function to send for this call: a :class:`StagedCall` when it has URLs to
    stage, else None (send ``fn`` as it is). Under ``"isolated"`` a local path is an
    error naming it: a host without the driver's filesystem cannot read it."""
    if staging.mode == "shared" or not (_holds_file(args) or (kwargs and _holds_file(kwargs))):
        return None
    found = argument_files(inspect.signature(fn), args, kwargs)
    if staging.mode == "isolated":
        for where, file in found:
            if not file.is_url:
                raise ValueError(
                    f"{app}: {where} is the local path {file.path}, but its executor has staging='isolated' "
                    f"(its hosts do not share this filesystem): name it by a URL, e.g. pl.File('sftp://host{file.path}')"
                )
    if not any(file.is_url for _, file in found):
        return None
    return StagedCall(fn, staging)


def _holds_file(value: object) -> bool:
    """Whether ``value`` holds a File where :func:`files_in` looks: the check every call
    pays, so it builds no names and stops at the first.

    >>> _holds_file((1, "a", [{"k": File("/x")}])), _holds_file((1, "a", []))
    (True, False)
    """
    cls = type(value)
    # Atoms, or a call's arguments that are all atoms (most often): no call per item.
    if cls in ATOMS or (type(value) is tuple and ATOMS.issuperset(map(type, value))):
        return False
    if isinstance(value, File):
        return True
    if isinstance(value, (list, tuple, set, frozenset)):
        return any(map(_holds_file, value))
    if isinstance(value, dict):
        return any(map(_holds_file, value.values()))
    if attrs.has(cls) and not isinstance(value, Expr):
        return any(_holds_file(getattr(value, field.name)) for field in attrs.fields(cls))
    return False


@attrs.frozen
class StagedCall:
    """``fn`` with its URL Files fetched before it runs and its URL outputs pushed after."""

    fn: Callable[..., Any]
    staging: Staging

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        outputs = _output_params(self.fn)
        bound = inspect.signature(self.fn).bind(*args, **kwargs)
        scratch = self.staging.scratch
        if scratch is not None:
            os.makedirs(scratch, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="plait-staged-", dir=scratch) as here:
            mover = _Mover(self.staging.stager, here)
            for name, value in bound.arguments.items():
                bound.arguments[name] = replace_files(value, mover.output if name in outputs else mover.input)
            value = self.fn(*bound.args, **bound.kwargs)
            mover.push_outputs()
            return replace_files(value, mover.back)


def _output_params(fn: Callable[..., Any]) -> tuple[str, ...]:
    if isinstance(fn, ShellCommand):
        return fn.settings.outputs.params
    if isinstance(fn, WithOutputs):
        return fn.spec.params
    return ()


class _Mover:
    """One task's staged files: where each URL lives in its scratch directory."""

    def __init__(self, stager: Stager, here: str) -> None:
        self.stager = stager
        self.here = here
        self.local: dict[str, File] = {}  # URL -> its local File
        self.url: dict[str, File] = {}  # local path -> the URL File
        self.pushes: list[tuple[str, str]] = []

    def _place(self, file: File) -> File:
        directory = os.path.join(self.here, str(len(self.url)))  # one per placing: two URLs may share a name
        os.mkdir(directory)
        local = self.local[file.path] = File(os.path.join(directory, file.name or "file"))
        self.url[local.path] = file
        return local

    def input(self, file: File) -> File:
        if not file.is_url:
            return file
        if file.path not in self.local:
            self.stager.fetch(file.path, self._place(file).path)
        return self.local[file.path]

    def output(self, file: File) -> File:
        if not file.is_url:
            return file
        local = self._place(file)
        self.pushes.append((local.path, file.path))
        return local

    def push_outputs(self) -> None:
        for local, url in self.pushes:
            self.stager.push(local, url)

    def back(self, file: File) -> File:
        return self.url.get(file.path, file)


def replace_files(value: Any, change: Callable[[File], File]) -> Any:
    """``value`` with each File in it replaced by ``change(file)``: in lists, tuples, sets,
    dicts and attrs values (a ShellResult's outputs), the way :func:`files_in` finds them.

    >>> replace_files({"a": [File("/x")], "b": 2}, lambda f: File("/y"))
    {'a': [File(path='/y', hash='content')], 'b': 2}
    """
    if isinstance(value, File):
        return change(value)
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [replace_files(item, change) for item in value]
        return type(value)(*items) if hasattr(value, "_fields") else type(value)(items)  # a namedtuple's fields
    if isinstance(value, dict):
        return {key: replace_files(item, change) for key, item in value.items()}
    if attrs.has(type(value)):
        fields = [f for f in attrs.fields(type(value)) if f.init]
        changes = {f.alias: replace_files(getattr(value, f.name), change) for f in fields}
        if all(changes[f.alias] is getattr(value, f.name) for f in fields):
            return value
        return attrs.evolve(value, **changes)
    return value
