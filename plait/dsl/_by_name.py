"""Files an app reads by name: what its memo key cannot cover unless they come as ``pl.File``.

An app's key covers its arguments, so a file named by a ``str`` argument is keyed by its
name alone: edit the file and the memo still serves the old result. Reading by name is
found by identity (``open``, ``os.listdir``, …) or, for ``pathlib``'s methods, by the name
the code calls, never by running anything.
"""

from __future__ import annotations

import builtins
import glob
import inspect
import os
from typing import Any

__all__ = ["file_reads_in", "reads_files_by_name", "takes_files"]

_READERS = {
    id(builtins.open): "open",
    id(os.open): "os.open",
    id(os.listdir): "os.listdir",
    id(os.scandir): "os.scandir",
    id(glob.glob): "glob.glob",
    id(glob.iglob): "glob.iglob",
}
_PATH_READERS = ("read_text", "read_bytes")  # pathlib's, called on a Path made from a name


def reads_files_by_name(obj: object) -> str | None:
    """What ``obj`` is, if it reads a file or a directory it is given the name of.

    >>> import io, os
    >>> reads_files_by_name(open), reads_files_by_name(io.open), reads_files_by_name(os.listdir)
    ('open', 'open', 'os.listdir')
    >>> reads_files_by_name(os.path.join) is None
    True
    """
    return _READERS.get(id(obj))


def file_reads_in(code: Any) -> list[str]:
    """``Path.read_text`` and the like, called by name in ``code``.

    >>> file_reads_in((lambda p: p.read_text()).__code__), file_reads_in((lambda p: p.name).__code__)
    (['Path.read_text'], [])
    """
    return [f"Path.{name}" for name in _PATH_READERS if name in code.co_names]


def takes_files(signature: inspect.Signature) -> bool:
    """Whether a parameter of ``signature`` is declared to take files plait keys by content.

    >>> def plain(path: str): ...
    >>> def keyed(src: "pl.File", results: "list[pl.ShellResult]"): ...
    >>> takes_files(inspect.signature(plain)), takes_files(inspect.signature(keyed))
    (False, True)
    """
    return any(_names_files(p.annotation) for p in signature.parameters.values())


def _names_files(annotation: object) -> bool:
    text = annotation if isinstance(annotation, str) else repr(annotation)
    return "File" in text or "ShellResult" in text
