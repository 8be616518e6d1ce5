"""Providers start worker pools or single tasks as jobs: locally or on a batch system.

The batch-system providers share ``BatchProvider``: the same options, a rendered job
script (``provider.job_script(command, job_name)``), submit/status/cancel through the
scheduler's own commands. Every provider can run its command in a ``Container``;
``KubernetesProvider`` runs it as a Pod (``provider.manifest(command, job_name)``);
``SSHProvider`` starts one pool per host with ``ssh``, no scheduler.
"""

from typing import TYPE_CHECKING

# Imported when first used (see plait._lazy): a run on a LocalProvider loads no batch provider.
if TYPE_CHECKING:
    from plait.backends.providers._base import JobState, Provider
    from plait.backends.providers._condor import CondorProvider
    from plait.backends.providers._container import Container
    from plait.backends.providers._gridengine import GridEngineProvider
    from plait.backends.providers._kubernetes import KubernetesProvider
    from plait.backends.providers._local import LocalProvider
    from plait.backends.providers._lsf import LSFProvider
    from plait.backends.providers._pbspro import PBSProProvider
    from plait.backends.providers._scheduler import BatchProvider, SchedulerError
    from plait.backends.providers._slurm import SlurmProvider
    from plait.backends.providers._ssh import SSHProvider
else:
    from plait._lazy import exports

    __getattr__, __dir__ = exports(
        __name__,
        {
            "plait.backends.providers._base": ["JobState", "Provider"],
            "plait.backends.providers._condor": ["CondorProvider"],
            "plait.backends.providers._container": ["Container"],
            "plait.backends.providers._gridengine": ["GridEngineProvider"],
            "plait.backends.providers._kubernetes": ["KubernetesProvider"],
            "plait.backends.providers._local": ["LocalProvider"],
            "plait.backends.providers._lsf": ["LSFProvider"],
            "plait.backends.providers._pbspro": ["PBSProProvider"],
            "plait.backends.providers._scheduler": ["BatchProvider", "SchedulerError"],
            "plait.backends.providers._slurm": ["SlurmProvider"],
            "plait.backends.providers._ssh": ["SSHProvider"],
        },
    )

__all__ = [
    "BatchProvider",
    "CondorProvider",
    "Container",
    "GridEngineProvider",
    "JobState",
    "KubernetesProvider",
    "LSFProvider",
    "LocalProvider",
    "PBSProProvider",
    "Provider",
    "SchedulerError",
    "SSHProvider",
    "SlurmProvider",
]
