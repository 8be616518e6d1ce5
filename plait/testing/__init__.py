"""Tools to test workflows: hypothesis strategies for random graphs, law checks."""

from plait.testing.strategies import evaluate, exprs

__all__ = ["evaluate", "exprs"]
