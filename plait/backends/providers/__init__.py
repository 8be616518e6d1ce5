"""Providers start worker pools or single tasks as jobs: locally or on a batch system."""

from plait.backends.providers._base import JobState, Provider
from plait.backends.providers._local import LocalProvider

__all__ = ["JobState", "LocalProvider", "Provider"]
