"""pytest plugin (registered as an entry point): a ``plait_runtime`` fixture."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from plait.backends import ThreadExecutor
from plait.runtime import Runtime


@pytest.fixture
def plait_runtime() -> Iterator[Runtime]:
    """A runtime on 4 threads, current for ``plait.run`` and Expr ``==`` in the test."""
    with Runtime(executors=[ThreadExecutor(4)]) as runtime:
        yield runtime
