"""Parsl's top-level errors (``parsl.errors``) that scripts catch."""

from __future__ import annotations

__all__ = ["ConfigurationError", "NoDataFlowKernelError", "ParslError"]


class ParslError(Exception):
    """Base of the errors this layer raises in Parsl's name."""


class ConfigurationError(ParslError):
    """A configuration is wrong, or a second one was loaded."""


class NoDataFlowKernelError(ParslError):
    """An app was called, or ``parsl.dfk()`` asked for, before ``parsl.load``."""
