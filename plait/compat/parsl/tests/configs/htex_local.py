"""A HighThroughputExecutor with one block of local workers."""

from plait.compat.parsl.config import Config
from plait.compat.parsl.executors import HighThroughputExecutor
from plait.compat.parsl.launchers import SimpleLauncher
from plait.compat.parsl.providers import LocalProvider


def fresh_config() -> Config:
    provider = LocalProvider(init_blocks=1, max_blocks=1, launcher=SimpleLauncher())
    return Config(
        executors=[HighThroughputExecutor(label="htex_local", cores_per_worker=1, encrypted=True, provider=provider)],
        strategy="none",
    )
