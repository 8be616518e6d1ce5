from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from plait.compat import parsl
from plait.compat.parsl.config import Config
from plait.compat.parsl.executors import ThreadPoolExecutor


@pytest.fixture
def load() -> Iterator[Callable[..., parsl.DataFlowKernel]]:
    """Load a configuration of 4 threads (Config options as keyword arguments); clean up after."""
    loaded: list[parsl.DataFlowKernel] = []

    def make(**options: Any) -> parsl.DataFlowKernel:
        options.setdefault("executors", [ThreadPoolExecutor(max_threads=4)])
        kernel = parsl.load(Config(**options))
        loaded.append(kernel)
        return kernel

    yield make
    for kernel in loaded:
        kernel.cleanup()
    parsl.clear()


@pytest.fixture
def threads(load: Callable[..., parsl.DataFlowKernel]) -> parsl.DataFlowKernel:
    return load()
