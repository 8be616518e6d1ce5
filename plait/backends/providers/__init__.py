"""Providers start worker pools or single tasks as jobs: locally or on a batch system."""

from plait.backends.providers._base import JobState, Provider
from plait.backends.providers._local import LocalProvider
from plait.backends.providers._scheduler import BatchProvider, SchedulerError
from plait.backends.providers._slurm import SlurmProvider

__all__ = ["BatchProvider", "JobState", "LocalProvider", "Provider", "SchedulerError", "SlurmProvider"]
