"""A thread pool on this machine."""

from plait.compat.parsl.config import Config
from plait.compat.parsl.executors.threads import ThreadPoolExecutor


def fresh_config() -> Config:
    return Config(executors=[ThreadPoolExecutor()])


config = fresh_config()
