"""Mistakes a new user makes with Exprs are refused when the call is built, saying what to do."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pytest

import plait as pl


@pl.app
def point(seed: int = 0) -> int:
    return seed % 2


@pl.app
def mean(values: list[int]) -> float:
    return sum(values) / len(values)


@pl.app
def twice(fn: Callable[[int], int], x: int) -> int:
    return fn(fn(x))


def test_an_app_passed_instead_of_its_call_is_refused_naming_app_and_argument() -> None:
    with pytest.raises(TypeError, match=r"mean\(\): argument 'values' holds the app point itself.*point\(\.\.\.\)"):
        mean([point, point])
    assert isinstance(mean([point(1), point(2)]), pl.Expr)


def test_a_parameter_annotated_as_a_callable_takes_an_app() -> None:
    assert isinstance(twice(point, 3), pl.Expr)


def test_map_with_an_app_points_to_bind() -> None:
    with pytest.raises(TypeError, match=r"\.map\(point\): point is an app.*use \.bind\(point\)"):
        pl.pure(1).map(point)


@pytest.mark.parametrize("method", ["map", "bind"])
def test_map_or_bind_of_something_not_callable_is_refused_as_it_is_built(method: str) -> None:
    with pytest.raises(TypeError, match=rf"point\(1\)\.{method}\(\.\.\.\) takes a function of the result, not int 5"):
        getattr(point(1), method)(5)


def test_a_map_function_that_returns_an_expr_fails_pointing_to_bind() -> None:
    expected = r"returned an Expr \(point\(1\)\), not a value; use \.bind"
    with pl.Runtime(executors=[pl.ThreadExecutor(1)]) as rt, pytest.raises(TypeError, match=expected):
        rt.run(pl.pure(1).map(lambda v: point(v)), timeout=30)


def test_a_map_function_that_returns_a_list_of_exprs_fails_pointing_to_gather() -> None:
    expected = r"returned an Expr \(point\(2\)\), not a value; use \.bind.*pl\.gather"
    with pl.Runtime(executors=[pl.ThreadExecutor(1)]) as rt, pytest.raises(TypeError, match=expected):
        rt.run(pl.pure(2).map(lambda v: [point(v), point(v + 1)]), timeout=30)


@pytest.mark.parametrize(
    ("misuse", "shown", "advice"),
    [
        (lambda e: e + 1, r"point\(0\) \+ \.\.\.", r"\.map\(lambda v: v \+ \.\.\.\)"),
        (lambda e: 1 - e, r"\.\.\. - point\(0\)", r"\.map\(lambda v: \.\.\. - v\)"),
        (lambda e: e < 1, r"point\(0\) < \.\.\.", r"\.map\(lambda v: v < \.\.\.\)"),
        (lambda e: float(e), r"float\(point\(0\)\)", r"\.map\(float\)"),
        (lambda e: e[0], r"point\(0\)\[\.\.\.\]", r"\.map\(lambda v: v\[\.\.\.\]\)"),
        (lambda e: [1, 2][e], r"\.\.\.\[point\(0\)\]", r"\.map\("),
        (lambda e: f"value {e}", r"point\(0\) in a string", r"\.map\(lambda v: f'"),
        (lambda e: f"{e:>8}", r"point\(0\) in a string", r"\.map\(lambda v: f'"),
    ],
)
def test_using_an_expr_as_its_value_says_expr_and_what_to_do(
    misuse: Callable[[Any], Any], shown: str, advice: str
) -> None:
    with pytest.raises(TypeError, match=shown + r".*an Expr is work not done yet.*" + advice) as caught:
        misuse(point())
    assert "Call" not in str(caught.value)


def test_an_attribute_of_the_result_says_expr_and_what_to_do() -> None:
    with pytest.raises(AttributeError, match=r"point\(0\)\.real: an Expr has no attribute.*\.map\(lambda v: v\.real\)"):
        point().real  # noqa: B018
    assert not hasattr(point(), "__plait_expr__") and repr(point()).startswith("<Expr point(0)")


@pytest.mark.parametrize("habit", ["compute", "result"])  # Dask's, and Parsl's and concurrent.futures'
def test_asking_an_expr_to_run_itself_says_how_to_run_it(habit: str) -> None:
    with pytest.raises(AttributeError, match=rf"point\(0\)\.{habit}\(\): .*plait\.run\(expr\) computes it") as caught:
        getattr(point(), habit)()
    assert "lambda v" not in str(caught.value)  # not a field of its result, as other names may be


def test_plait_run_inside_an_app_is_refused_on_threads_and_processes() -> None:
    for executor in (pl.ThreadExecutor(1), pl.ProcessExecutor(1)):
        refused = pytest.raises(RuntimeError, match=r"plait.run inside the app nested, or in its module.*\.bind")
        with pl.Runtime(executors=[executor]) as rt, refused:
            rt.run(nested(1), timeout=60)


@pl.app
def nested(x: int) -> int:
    return pl.run(point(x))


def test_a_misspelt_option_is_named_with_the_nearest_valid_one() -> None:
    with pytest.raises(TypeError, match=r"@app: no option retry=; did you mean 'retries='\?"):
        pl.app(retry=3)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match=r"shell app cmd: no option cdw=; did you mean 'cwd='\?"):
        pl.shell(cdw="/tmp")(cmd)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match=r"no option colour=; the options are retries, timeout"):
        pl.app(colour="red")  # type: ignore[call-overload]


def cmd() -> str:
    return "true"


def test_app_and_shell_show_their_options_to_editors() -> None:
    app_options = inspect.signature(pl.app).parameters
    assert {"retries", "timeout", "executor", "cache", "version", "resources", "pure"} <= set(app_options)
    assert app_options["retries"].kind is inspect.Parameter.KEYWORD_ONLY
    assert app_options["pure"].default is None  # assumed pure, and checked: see ImpureAppWarning
    assert {"cwd", "env", "stdout", "root", "retries", "pure"} <= set(inspect.signature(pl.shell).parameters)
    assert "options" not in app_options


async def fetch(x: int) -> int:
    return x


def numbers(n: int) -> Any:
    yield from range(n)


async def stream(n: int) -> Any:
    yield n


@pytest.mark.parametrize(
    ("fn", "message"),
    [
        (fetch, r"@app fetch is an async function: .*a plain def"),
        (stream, r"@app stream is an async function"),
        (numbers, r"@app numbers is a generator function: .*return a list"),
    ],
)
def test_an_app_whose_result_is_not_done_work_is_refused_when_made(fn: Callable[..., Any], message: str) -> None:
    # On threads the task would "succeed" with an unrun coroutine or generator as its result.
    with pytest.raises(TypeError, match=message):
        pl.app(fn)


class Model:
    @pl.app
    def predict(self, x: int) -> int:
        return x


def test_an_app_in_a_class_body_called_as_a_method_says_nothing_binds_self() -> None:
    message = r"predict\(\): missing a required argument: 'x'; an app in a class body is not a method: nothing binds"
    with pytest.raises(TypeError, match=message):
        Model().predict(1)
