"""Apps and Exprs pickle with the standard library (multiprocessing, process pools,
``pickle.dump`` of a result), apps by reference as pickle does functions; an app that no
module holds by its name is refused naming it. cloudpickle sends apps by value."""

from __future__ import annotations

import copy
import pickle
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import cloudpickle
import pytest
from hypothesis import given, settings

import plait as pl
from plait.testing.strategies import exprs


@pl.app
def add(x: int, y: int) -> int:
    return x + y


@pl.shell
def echo(word: str) -> str:
    return f"echo {word}"


def test_an_app_unpickles_as_the_app_its_module_holds() -> None:
    for app, args in [(add, (1, 2)), (echo, ("hi",))]:
        assert pickle.loads(pickle.dumps(app)) is app
        assert copy.deepcopy(app) is app
        assert cloudpickle.loads(cloudpickle.dumps(app))(*args).key == app(*args).key  # by value, as a worker may need


@settings(max_examples=50, deadline=None)
@given(exprs())
def test_an_expr_keeps_its_key_through_pickle(expr: pl.Expr[int]) -> None:
    back = pickle.loads(pickle.dumps(expr))
    assert type(back) is type(expr) and back.key == expr.key
    assert [child.key for child in back.children()] == [child.key for child in expr.children()]


def test_an_app_no_module_holds_by_its_name_is_refused_by_pickle_naming_it_and_cloudpickle_sends_it() -> None:
    def make() -> pl.App[[int], int]:
        @pl.app
        def inner(x: int) -> int:
            return x + 1

        return inner

    for app in (pl.app(lambda x: x), make()):
        with pytest.raises(
            pickle.PicklingError, match=rf"app {re.escape(app.name)} of {__name__} cannot be pickled.*cloudpickle"
        ):
            pickle.dumps(app(1))
        back = cloudpickle.loads(cloudpickle.dumps(app(1)))
        assert back.key == app(1).key and back.app is not app


def test_the_future_of_a_submitted_expr_is_refused_by_pickle_pointing_at_its_expr() -> None:
    with pl.Runtime([pl.ThreadExecutor(1)]) as rt:
        future = rt.submit(add(1, 2))
        for dumps in (pickle.dumps, cloudpickle.dumps):
            with pytest.raises(TypeError, match=r"the future of add\(1, 2\) cannot be pickled.*future\.expr"):
                dumps(add(future, 1))
        assert pickle.loads(pickle.dumps(future.expr)).key == future.expr.key


SCRIPT = """
    import concurrent.futures, multiprocessing
    from collections.abc import Callable
    import plait as pl

    @pl.app
    def double(x: int) -> int:
        return 2 * x

    def plus_one(x: int) -> int:
        return x + 1

    @pl.app
    def apply(f: Callable[[int], int], x: int) -> int:
        return getattr(f, "fn", f)(x)

    if __name__ == "__main__":
        spawn = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(1, mp_context=spawn) as pool:  # pickles the Expr
            print(pool.submit(pl.run, double(4).map(abs)).result())
        with pl.Runtime([pl.ProcessExecutor(1)]) as rt:  # a worker's __main__ is not this script
            print(rt.run(apply(double, 5), timeout=60), rt.run(apply(plus_one, 5), timeout=60))
"""


def test_a_scripts_expr_goes_to_a_process_pool_and_its_functions_to_plaits_workers(tmp_path: Path) -> None:
    script = tmp_path / "workflow.py"
    script.write_text(textwrap.dedent(SCRIPT))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["8", "10", "6"]
