"""A stager over fsspec: every protocol fsspec knows, with timeouts, errors naming the URL."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

import attrs

__all__ = ["FsspecStager", "StagingError", "check_url", "is_url"]

T = TypeVar("T")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_CHECKSUMS = ("ETag", "Content-MD5", "Digest", "etag", "md5")  # HTTP headers, object stores
_MTIMES = ("mtime", "Last-Modified", "LastModified", "last_modified", "modified")
_CHUNK = 1 << 20


class StagingError(OSError):
    """A file could not be fetched from or pushed to its URL; the message names it."""

    __module__ = "plait"  # tracebacks name it as users import it, not by its private module


def is_url(path: str) -> bool:
    """Whether ``path`` is a URL (``scheme://...``) rather than a local path.

    >>> is_url("https://example.org/a.csv"), is_url("/data/a.csv"), is_url("C:/x")
    (True, False, False)
    """
    return bool(_URL.match(path))


def check_url(url: str) -> str:
    """``url``, if fsspec knows its scheme; else a ValueError naming it.

    >>> check_url("sftp://198.18.0.2/tmp/a")
    'sftp://198.18.0.2/tmp/a'
    >>> check_url("gopher://example.org/a")
    Traceback (most recent call last):
    ...
    ValueError: gopher://example.org/a: unknown URL scheme 'gopher' (fsspec knows file, http, https, sftp, s3, ...)
    """
    from fsspec.registry import known_implementations, registry

    scheme = url.split("://", 1)[0].lower()
    if scheme not in known_implementations and scheme not in registry:
        raise ValueError(f"{url}: unknown URL scheme {scheme!r} (fsspec knows file, http, https, sftp, s3, ...)")
    return url


@attrs.frozen
class FsspecStager:
    """Fetches and pushes files with fsspec, giving up on a host after ``timeout`` seconds.

    ``storage_options`` are per scheme, passed to that fsspec filesystem: e.g.
    ``{"sftp": {"username": "me", "key_filename": "~/.ssh/id_ed25519"}}`` (SFTP goes
    through paramiko, which reads no ``~/.ssh/config``).
    """

    timeout: float = 30.0
    storage_options: Mapping[str, Mapping[str, Any]] = attrs.field(factory=dict)

    def identity(self, url: str) -> tuple[str, ...]:
        """What the file at ``url`` is, for a memo key: the server's checksum (an ETag, an
        MD5) if it gives one; else its size and modification time; else its content's hash."""
        fs, path = self._filesystem(url)
        info = self._guarded("read", url, lambda: fs.info(path))
        if info.get("type") == "directory":
            raise StagingError(f"input {url} is a directory, not a file")
        for field in _CHECKSUMS:
            if info.get(field):
                return ("checksum", url, str(info[field]))
        mtime = next((info[field] for field in _MTIMES if info.get(field)), None)
        if info.get("size") is not None and mtime is not None:
            return ("stat", url, str(info["size"]), str(mtime))
        return ("content", url, self._guarded("read", url, lambda: _content_hash(fs, path)))

    def exists(self, url: str) -> bool:
        """Whether a file is at ``url`` now (an unreachable host is an error, not False)."""
        fs, path = self._filesystem(url)
        return bool(self._guarded("read", url, lambda: fs.exists(path)))

    def read_bytes(self, url: str) -> bytes:
        fs, path = self._filesystem(url)
        return bytes(self._guarded("read", url, lambda: fs.cat_file(path)))

    def fetch(self, url: str, local: str) -> None:
        fs, path = self._filesystem(url)
        self._guarded("fetch", url, lambda: fs.get_file(path, local))

    def push(self, local: str, url: str) -> None:
        fs, path = self._filesystem(url)
        self._guarded("push to", url, lambda: fs.put_file(local, path))

    def _filesystem(self, url: str) -> tuple[Any, str]:
        from fsspec.config import conf
        from fsspec.core import url_to_fs

        scheme = check_url(url).split("://", 1)[0].lower()
        configured = conf.get(scheme, {})  # fsspec's own configuration wins over our default timeouts
        defaults = {k: v for k, v in _timeouts(scheme, self.timeout).items() if k not in configured}
        options = {**defaults, **self.storage_options.get(scheme, {})}
        with _named(url, "reach"):
            fs, path = url_to_fs(url, **options)
        return fs, path

    @staticmethod
    def _guarded(what: str, url: str, step: Callable[[], T]) -> T:
        with _named(url, what):
            return step()


def _timeouts(scheme: str, timeout: float) -> dict[str, Any]:
    """Options that make each protocol give up rather than hang on an unreachable host."""
    if scheme in ("http", "https"):
        import aiohttp

        return {"client_kwargs": {"timeout": aiohttp.ClientTimeout(total=timeout, connect=timeout)}}
    if scheme in ("sftp", "ssh"):
        return {"timeout": timeout, "banner_timeout": timeout, "auth_timeout": timeout}
    return {}


@contextmanager
def _named(url: str, what: str) -> Iterator[None]:
    """Errors inside name the URL: a missing file stays a FileNotFoundError."""
    try:
        yield
    except StagingError:
        raise
    except Exception as error:  # aiohttp, paramiko, socket, timeout: all "could not"
        cause = _root_cause(error)
        if isinstance(cause, FileNotFoundError) or getattr(cause, "status", None) == 404:
            raise FileNotFoundError(f"{url} does not exist (cannot {what} it)") from error
        reason = str(cause) or type(cause).__name__
        raise StagingError(f"cannot {what} {url}: {type(cause).__name__}: {reason}") from error


def _root_cause(error: BaseException) -> BaseException:
    """The first error of a chain: fsspec's HTTP ``info`` reports a refused connection as
    a FileNotFoundError raised from it, and "does not exist" would mislead."""
    while error.__cause__ is not None:
        error = error.__cause__
    return error


def _content_hash(fs: Any, path: str) -> str:
    h = hashlib.blake2b(digest_size=16)
    with fs.open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()
