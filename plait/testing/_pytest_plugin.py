"""pytest plugin (registered as an entry point): a ``plait_runtime`` fixture.

``pytest --plait-chaos=SEED`` runs every test that uses the fixture on a
:func:`~plait.testing.chaos_runtime` with that seed instead of plain threads: the
same suite, now with injected failures, lost tasks and reordered completions.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from plait.runtime import Runtime


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("plait")
    group.addoption(
        "--plait-chaos",
        type=int,
        default=None,
        metavar="SEED",
        help="run the plait_runtime fixture on a seeded ChaosExecutor (faults retried) instead of threads",
    )


@pytest.fixture
def plait_runtime(request: pytest.FixtureRequest) -> Iterator[Runtime]:
    """A runtime on 4 threads (or a chaos runtime), current for ``plait.run`` and Expr ``==``."""
    # Imported here, not at plugin load: pytest loads this plugin in every project that
    # installs plait, and plait.testing needs hypothesis, which only the test extra brings.
    from plait.testing._equivalence import chaos_runtime, local_runtime

    seed = request.config.getoption("plait_chaos")
    runtime = local_runtime() if seed is None else chaos_runtime(seed)
    with runtime:
        yield runtime
