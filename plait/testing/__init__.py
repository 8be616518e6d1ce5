"""Tools to test workflows: random graphs over your apps, law checks, fault injection.

>>> import plait.testing as pt

- :func:`exprs` draws random graphs (hypothesis), :func:`evaluate` computes one
  directly, :func:`describe` prints one.
- :func:`check_laws` adds functor/applicative/monad law tests to a test module.
- :class:`ChaosExecutor` fails, loses, delays and reorders tasks, seeded;
  :func:`chaos_runtime` retries what it injects, :func:`local_runtime` does not.
- :func:`check_deterministic` runs an app twice per drawn input in two worker
  processes and reports differing results: proof that sharing its calls is safe.
- :func:`same_outcome` runs two graphs and compares what they compute (``==`` compares
  keys); :func:`returns_compares_outcomes` makes ``returns``' law checks do the same.
- :func:`assert_equivalent` runs a graph on several runtimes and compares outcomes;
  :func:`schedule_independent` checks that completion order does not matter.
- The pytest fixture ``plait_runtime`` (``pytest --plait-chaos=SEED`` for chaos).
"""

from plait.testing._chaos import ChaosError, ChaosEvent, ChaosExecutor
from plait.testing._determinism import check_deterministic
from plait.testing._equivalence import (
    assert_equivalent,
    chaos_runtime,
    local_runtime,
    outcome,
    returns_compares_outcomes,
    same_outcome,
    schedule_independent,
)
from plait.testing._laws import check_laws
from plait.testing._reference import evaluate
from plait.testing.strategies import describe, exprs

__all__ = [
    "ChaosError",
    "ChaosEvent",
    "ChaosExecutor",
    "assert_equivalent",
    "chaos_runtime",
    "check_deterministic",
    "check_laws",
    "describe",
    "evaluate",
    "exprs",
    "local_runtime",
    "outcome",
    "returns_compares_outcomes",
    "same_outcome",
    "schedule_independent",
]
