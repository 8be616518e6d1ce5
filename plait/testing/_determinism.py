"""Check that an app is deterministic, so sharing its equal calls is safe."""

from __future__ import annotations

import inspect
from typing import Any

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

from plait.backends import ProcessExecutor
from plait.dsl import App
from plait.dsl._token import Untokenizable, token_of
from plait.runtime import Runtime

__all__ = ["check_deterministic"]


def check_deterministic(
    app: App[..., Any], *, max_examples: int = 20, timeout: float = 60.0, **strategies: st.SearchStrategy[Any]
) -> None:
    """Run ``app`` twice on each of a few hypothesis-drawn arguments, in two worker processes.

    Raises ``AssertionError`` naming the arguments and both results when the two runs
    differ: such an app reads something that varies (a random generator, the clock, a
    file) and must not share its calls (``@pl.app(pure=False)``), or must take what
    varies as an argument. A parameter with no strategy given is drawn from its
    annotation (``st.from_type``). Each call runs (the check uses a ``pure=False``
    copy of the app), so neither run is served from the other or from a memo.
    """
    if not isinstance(app, App):
        raise TypeError(f"check_deterministic takes an app (a function decorated with @pl.app), not {app!r}")
    drawn = st.fixed_dictionaries({name: strategies.get(name) or _from_annotation(app, p) for name, p in _params(app)})
    unshared = App(app.fn, attrs.evolve(app.options, pure=False))
    with _one_worker() as first, _one_worker() as second:

        @settings(max_examples=max_examples, deadline=None, database=None)
        @given(drawn)
        def runs_agree(kwargs: dict[str, Any]) -> None:
            a, b = first.submit(unshared(**kwargs)), second.submit(unshared(**kwargs))
            one, other = a.result(timeout), b.result(timeout)
            if not _same(one, other):
                call = f"{app.name}({', '.join(f'{k}={v!r}' for k, v in kwargs.items())})"
                raise AssertionError(
                    f"app {app.name} is not deterministic: {call} gave {one!r} in one "
                    f"worker and {other!r} in another; mark it @pl.app(pure=False), or pass what varies "
                    "as an argument"
                )

        runs_agree()


def _params(app: App[..., Any]) -> list[tuple[str, inspect.Parameter]]:
    kinds = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    return [(name, p) for name, p in app.signature.parameters.items() if p.kind not in kinds]


def _from_annotation(app: App[..., Any], param: inspect.Parameter) -> st.SearchStrategy[Any]:
    hints = inspect.get_annotations(app.fn, eval_str=True)
    if param.name not in hints:
        raise TypeError(
            f"check_deterministic({app.name}): parameter {param.name!r} has no annotation; "
            f"pass a strategy for it: {param.name}=st.integers()"
        )
    return st.from_type(hints[param.name])


def _one_worker() -> Runtime:
    return Runtime(executors=[ProcessExecutor(workers=1)])


def _same(one: object, other: object) -> bool:
    """Equal by content: the same token when both have one, else ``==``.

    >>> _same(float("nan"), float("nan")), _same([1, 2], [1, 2]), _same(1, 1.0)
    (True, True, False)
    """
    try:
        return token_of(one) == token_of(other)
    except Untokenizable:
        return bool(one == other)
