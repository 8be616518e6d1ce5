"""The errors Parsl's apps raise (``parsl.app.errors``), with Parsl's names and fields."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from plait.compat.parsl.errors import ParslError

__all__ = [
    "AppBadFormatting",
    "AppException",
    "AppTimeout",
    "BadStdStreamFile",
    "BashAppNoReturn",
    "BashExitFailure",
    "MissingOutputs",
]


class AppException(ParslError):
    """An error raised while an app ran."""


class AppBadFormatting(ParslError):
    """A bash app's command line could not be made."""


class BashExitFailure(AppException):
    """A bash app's command exited with a non-zero code."""

    def __init__(self, app_name: str, exitcode: int) -> None:
        super().__init__(app_name, exitcode)
        self.app_name = app_name
        self.exitcode = exitcode

    def __str__(self) -> str:
        return f"bash_app {self.app_name} failed with unix exit code {self.exitcode}"


class AppTimeout(AppException):
    """An app ran past its ``walltime``."""


class BashAppNoReturn(AppException):
    """A bash app's function returned no command line."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class MissingOutputs(ParslError):
    """A bash app succeeded but did not write every file of its ``outputs=``."""

    def __init__(self, reason: str, outputs: Sequence[Any]) -> None:
        super().__init__(reason, list(outputs))
        self.reason = reason
        self.outputs = list(outputs)

    def __str__(self) -> str:
        return f"Missing Outputs: {self.outputs}, Reason: {self.reason}"


class BadStdStreamFile(ParslError):
    """A bash app's ``stdout=`` or ``stderr=`` cannot be opened."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self._reason = reason

    def __str__(self) -> str:
        return f"Bad Stream File: {self._reason}"
