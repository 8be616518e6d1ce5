"""The reference evaluator: a graph computed directly in this thread, with no runtime, no
executor and no memo. It is the oracle that runs on executors are compared with."""

from __future__ import annotations

from typing import Any

import attrs
from returns.result import Failure, Success

from plait.dsl import Expr
from plait.dsl._args import substitute
from plait.dsl._expr import Attempt, Bind, Call, Gather, Map, Pure

__all__ = ["evaluate", "possible_failures"]


def evaluate(expr: Expr[Any]) -> Any:
    """The value of a graph computed directly in this thread, without any runtime: an oracle.

    Work shared by several parents is computed once, as a runtime would, failures included.
    A failure raises what the failing node raised (the first, taking inputs in order): the
    root cause of the ``DependencyError`` a run raises.

    >>> from plait.testing._palette import add, neg
    >>> evaluate(add(neg(2), 5).map(str))
    '3'
    """
    outcome = _outcome(expr, [])
    if isinstance(outcome, _Failed):
        raise outcome.error
    return outcome


def possible_failures(expr: Expr[Any]) -> list[BaseException]:
    """Every exception some node of ``expr`` raises, evaluated directly and without
    stopping at the first one: the root causes a run may report, whatever its schedule.

    >>> from plait.dsl import gather, pure
    >>> bad = pure(0).map(lambda x: 1 / x)
    >>> [type(e).__name__ for e in possible_failures(gather(bad, pure([]).map(lambda xs: xs[0])))]
    ['ZeroDivisionError', 'IndexError']
    """
    found: list[BaseException] = []
    _outcome(expr, found)
    return found


@attrs.frozen
class _Failed:
    """The outcome of a node that raised ``error``, or that needs one that did."""

    error: BaseException


def _outcome(expr: Expr[Any], found: list[BaseException]) -> Any:
    """The value of ``expr``, or a ``_Failed``; each exception a node raises is added to ``found``.

    Inputs first, in order, each node once, from an explicit stack: a chain as deep as
    memory allows evaluates without recursion.
    """
    done: dict[bytes, Any] = {}
    inner: dict[bytes, Expr[Any]] = {}  # a bind's next graph, once its function has returned it
    todo = [expr]
    while todo:
        node = todo[-1]
        if node._key in done:
            todo.pop()
        elif node._key in inner:  # a bind's result is its next graph's, failure included
            graph = inner[node._key]
            if graph._key in done:
                done[node._key] = done[graph._key]
            else:
                todo.append(graph)
        elif waiting := [child for child in node.children() if child._key not in done]:
            todo.extend(reversed(waiting))
        else:
            outcome = _step(node, [done[child._key] for child in node.children()], found)
            if isinstance(node, Bind) and not isinstance(outcome, _Failed):
                inner[node._key] = outcome
            else:
                done[node._key] = outcome
    return done[expr._key]


def _step(node: Expr[Any], inputs: list[Any], found: list[BaseException]) -> Any:
    """One node's outcome from its inputs' outcomes (for a bind, the graph to evaluate next)."""
    if isinstance(node, Attempt):
        return Failure(inputs[0].error) if isinstance(inputs[0], _Failed) else Success(inputs[0])
    failed = next((i for i in inputs if isinstance(i, _Failed)), None)
    if failed is not None:
        return failed
    try:
        return _apply(node, inputs)
    except Exception as error:
        found.append(error)
        return _Failed(error)


def _apply(node: Expr[Any], inputs: list[Any]) -> Any:
    if isinstance(node, Pure):
        return node.value
    if isinstance(node, Map):
        return node.fn(inputs[0])
    if isinstance(node, Bind):
        graph = node.fn(inputs[0])
        if not isinstance(graph, Expr):
            raise TypeError(f"{node.label()}: the function must return an Expr, not a {type(graph).__name__}")
        return graph
    if isinstance(node, Gather):
        return list(inputs)
    if isinstance(node, Call):
        given = iter(inputs)
        return node.app.fn(*substitute(node.args, given), **substitute(node.kwargs, given))
    raise TypeError(f"cannot evaluate {node!r} without a runtime")
