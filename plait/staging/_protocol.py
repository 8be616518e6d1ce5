"""What a stager does, and an executor's choice of when to use one."""

from __future__ import annotations

from typing import Literal, Protocol, runtime_checkable

import attrs

from plait.staging._fsspec import FsspecStager

__all__ = ["Stager", "Staging", "StagingMode", "staging_of"]

StagingMode = Literal["auto", "shared", "isolated"]


@runtime_checkable
class Stager(Protocol):
    """Moves files between URLs and a worker's local disk, on the worker.

    Each method raises :class:`~plait.staging.StagingError` (a ``FileNotFoundError`` for
    a missing file) naming the URL, and gives up after a timeout rather than hang. (What
    a URL input contributes to a memo key is read on the driver when the call is built,
    before its executor is known: by fsspec, ``FsspecStager.identity``.)
    """

    def fetch(self, url: str, local: str) -> None: ...

    def push(self, local: str, url: str) -> None: ...


@attrs.frozen
class Staging:
    """When an executor's tasks stage their files, with what, and where on the worker.

    ``mode``: ``"auto"`` (the default) fetches inputs and pushes outputs named by URL
    and passes local paths as they are (the hosts share the driver's filesystem, as on
    one machine or a cluster with a shared home); ``"isolated"`` does the same but
    refuses a local path, which a host without the driver's filesystem cannot read;
    ``"shared"`` stages nothing (an app gets a URL as it is and reads it itself).
    ``scratch`` is the worker's directory for staged files (None: its temporary
    directory); each task gets a directory of its own there, removed when it ends.
    """

    mode: StagingMode = attrs.field(default="auto", validator=attrs.validators.in_(("auto", "shared", "isolated")))
    stager: Stager = attrs.field(factory=FsspecStager)
    scratch: str | None = None


def staging_of(label: str, value: Staging | str) -> Staging:
    """An executor's ``staging=`` option as a :class:`Staging`.

    >>> staging_of("zmq", "isolated").mode
    'isolated'
    >>> staging_of("zmq", "nfs")
    Traceback (most recent call last):
    ...
    ValueError: executor 'zmq': staging='nfs' must be 'auto', 'shared', 'isolated' or a pl.Staging
    """
    if isinstance(value, Staging):
        return value
    if value not in ("auto", "shared", "isolated"):
        raise ValueError(f"executor {label!r}: staging={value!r} must be 'auto', 'shared', 'isolated' or a pl.Staging")
    return Staging(mode=value)  # type: ignore[arg-type]
