"""Parsl's ``File``: a path or ``file://`` URL that apps read or write."""

from __future__ import annotations

import os
from urllib.parse import urlparse

import plait as pl

__all__ = ["File"]


class File:
    """A file named by a path or a URL; ``str(f)`` and ``os.fspath(f)`` are its path.

    Only ``file`` URLs (and plain paths) have a path here: this layer moves no files,
    so apps and the driver must share a filesystem.

    >>> f = File("file:///data/input.txt")
    >>> f.filepath, f.filename, f.scheme
    ('/data/input.txt', 'input.txt', 'file')
    """

    def __init__(self, url: str | os.PathLike[str]) -> None:
        if not isinstance(url, (str, os.PathLike)):
            raise TypeError(f"File takes a path or URL (str or os.PathLike), not a {type(url).__name__}")
        self.url = os.fspath(url)
        parsed = urlparse(self.url)
        self.scheme = parsed.scheme or "file"
        self.netloc = parsed.netloc
        self.path = parsed.path
        self.filename = os.path.basename(self.path)
        self.local_path: str | None = None

    @property
    def filepath(self) -> str:
        """The path to open; only ``file`` URLs have one."""
        if self.local_path is not None:
            return self.local_path
        if self.scheme == "file":
            return self.path
        raise ValueError(f"No local_path set for {self!r}: this layer does not stage {self.scheme}:// files")

    def cleancopy(self) -> File:
        """A copy holding only the URL."""
        return File(self.url)

    def __fspath__(self) -> str:
        return self.filepath

    def __str__(self) -> str:
        return self.filepath

    def __repr__(self) -> str:
        return f"<File at 0x{id(self):x} url={self.url} scheme={self.scheme} path={self.path} filename={self.filename}>"


# A File's part in a memo key (cache=True apps): its URL, as Parsl keys it.
pl.register_token(File, lambda f: ("parsl.File", f.url))
