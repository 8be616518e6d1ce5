"""Merkle keys: what they cover, what they ignore, and what they refuse."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import textwrap
from typing import Any

import attrs
import numpy as np
import pytest

import plait as pl


def _app_from_source(source: str, module: str = "tests.dsl.generated", **options: Any) -> pl.App[..., Any]:
    """Define ``f`` from ``source`` as if it lived in ``module``: the same name, maybe a new body."""
    namespace: dict[str, Any] = {"__name__": module}
    exec(compile(textwrap.dedent(source), "<edited file>", "exec"), namespace)
    return pl.app(**options)(namespace["f"]) if options else pl.app(namespace["f"])


def test_editing_a_literal_in_the_body_changes_the_key() -> None:
    before = _app_from_source("def f(x):\n    return x * 2\n")
    again = _app_from_source("def f(x):\n    return x * 2\n")
    edited = _app_from_source("def f(x):\n    return x * 3\n")
    assert before(1).key == again(1).key
    assert before(1).key != edited(1).key


def test_editing_a_literal_in_nested_code_changes_the_key() -> None:
    source = "def f(xs):\n    return [(lambda y: y + {})(x) for x in xs]\n"
    assert _app_from_source(source.format(1))([1]).key != _app_from_source(source.format(2))([1]).key


def test_moving_a_function_down_the_file_keeps_its_key() -> None:
    body = "def f(x):\n    return x * 2\n"
    assert _app_from_source(body)(1).key == _app_from_source("\n\n\n# a comment\n" + body)(1).key


def test_calling_another_function_changes_the_key() -> None:
    with_abs = _app_from_source("def f(x):\n    return abs(x)\n")
    with_len = _app_from_source("def f(x):\n    return len(x)\n")
    assert with_abs(1).key != with_len(1).key


def test_a_closure_value_is_part_of_the_identity() -> None:
    def make(n: int) -> pl.App[[int], int]:
        @pl.app
        def add(x: int) -> int:
            return x + n

        return add

    assert make(1)(0).key == make(1)(0).key != make(2)(0).key


def test_version_replaces_the_code_hash() -> None:
    v1 = _app_from_source("def f(x):\n    return x\n", version="1")
    v1_edited = _app_from_source("def f(x):\n    return -x\n", version="1")
    v2 = _app_from_source("def f(x):\n    return x\n", version="2")
    assert v1(5).key == v1_edited(5).key != v2(5).key


def test_module_and_qualname_are_part_of_the_identity() -> None:
    body = "def f(x):\n    return x\n"
    assert _app_from_source(body, module="a")(1).key != _app_from_source(body, module="b")(1).key


def test_ignore_for_cache_leaves_an_argument_out_of_the_key_but_not_the_call() -> None:
    @pl.app(ignore_for_cache=("verbose",))
    def work(x: int, verbose: bool = False) -> tuple[int, bool]:
        return x, verbose

    assert work(1).key == work(1, verbose=True).key == work(x=1, verbose=False).key
    assert work(1).key != work(2, verbose=True).key
    with pl.Runtime([pl.ThreadExecutor(1)]) as rt:
        assert rt.run(work(1, verbose=True), timeout=30) == (1, True)


def test_positional_and_keyword_spellings_are_the_same_work() -> None:
    @pl.app
    def f(x: int, y: int = 2) -> int:
        return x + y

    assert f(1).key == f(1, 2).key == f(x=1, y=2).key == f(y=2, x=1).key != f(1, 3).key


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (1, 1.0),
        (1, True),
        (0.0, -0.0),
        ("1", 1),
        (b"x", "x"),
        ([1, 2], (1, 2)),
        ([1, 2], [2, 1]),
        ({"a": 1}, {"a": "1"}),
        ({1: "x", "1": "y"}, {"1": "x", 1: "y"}),
        ({1, 2}, frozenset({1, 2, 3})),
        (None, 0),
        (range(3), range(4)),
        (range(3), [0, 1, 2]),
        (range(0, 6, 2), range(0, 6, 3)),
    ],
)
def test_different_values_get_different_keys(a: object, b: object) -> None:
    @pl.app
    def f(v: object) -> object:
        return v

    assert f(a).key != f(b).key


def test_a_range_is_keyed_by_its_start_stop_and_step() -> None:
    @pl.app
    def f(v: object) -> object:
        return v

    assert f(range(3)).key == f(range(0, 3)).key == f(range(0, 3, 1)).key
    with pl.Runtime([pl.ThreadExecutor(1)], progress=False) as rt:  # pl.run's default runtime would outlive the test
        assert rt.run(f(range(2, 8, 3))) == range(2, 8, 3)


def test_dicts_and_sets_in_any_insertion_order_are_equal() -> None:
    @pl.app
    def f(v: object) -> object:
        return v

    assert f({"b": 1, "a": 2, 3: None}).key == f({3: None, "a": 2, "b": 1}).key
    assert f({"x", "y", 3, (1, 2)}).key == f({(1, 2), 3, "y", "x"}).key
    assert f(frozenset({"x", "y"})).key == f(frozenset({"y", "x"})).key


def test_set_and_dict_keys_do_not_depend_on_the_hash_seed() -> None:
    # String hashing is randomized per process, so a set's iteration order is too.
    code = (
        "import plait as pl\n"
        "@pl.app\ndef f(v): return v\n"
        "print(f({'alpha', 'beta', 'gamma', 'delta', 'eps'}).key, f({'k' + str(i): i for i in range(50)}).key)"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
            timeout=60,
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert len(outputs) == 1


@attrs.frozen
class Point:
    x: int
    y: int


@attrs.frozen
class Other:
    x: int
    y: int


@dataclasses.dataclass
class Config:
    name: str
    sizes: list[int]


def test_attrs_classes_and_dataclasses_are_keyed_by_their_fields() -> None:
    @pl.app
    def f(v: object) -> object:
        return v

    assert f(Point(1, 2)).key == f(Point(1, 2)).key != f(Point(2, 1)).key
    assert f(Point(1, 2)).key != f(Other(1, 2)).key  # the class is part of it
    assert f(Config("a", [1])).key == f(Config("a", [1])).key != f(Config("a", [1, 2])).key


def test_numpy_arrays_are_keyed_by_dtype_shape_order_and_buffer() -> None:
    @pl.app
    def f(v: object) -> object:
        return v

    a = np.arange(6, dtype=np.int64)
    assert f(a).key == f(np.arange(6, dtype=np.int64)).key
    assert f(a).key != f(a.astype(np.int32)).key
    assert f(a).key != f(a.reshape(2, 3)).key
    b = a.copy()
    b[5] = 7
    assert f(a).key != f(b).key
    grid = a.reshape(2, 3)
    assert f(grid).key != f(np.asfortranarray(grid)).key
    assert f(grid[:, ::2]).key == f(grid[:, ::2].copy()).key  # a strided view is its values
    with pytest.raises(TypeError, match=r"f\(\): argument 'v \(an array of objects\)'"):
        f(np.array([object()], dtype=object))


class Opaque:
    def __init__(self, n: int) -> None:
        self.n = n


def test_an_untokenizable_argument_is_an_error_naming_the_app_and_argument() -> None:
    @pl.app
    def consume(data: object, *, scale: int = 1) -> int:
        return scale

    with pytest.raises(TypeError, match=r"consume\(\): argument 'data\[0\]' is a Opaque") as info:
        consume([Opaque(1)])
    assert "register_token" in str(info.value) and "cache=False" in str(info.value)
    with pytest.raises(TypeError, match=r"argument \"data\['k'\]\""):
        consume({"k": Opaque(1)})


def test_cache_false_accepts_anything_and_shares_what_it_can_key() -> None:
    @pl.app(cache=False)
    def consume(data: object) -> int:
        return 1

    assert consume(Opaque(1)).key != consume(Opaque(1)).key  # no token: a call of its own
    assert consume(1).key == consume(1).key  # not memoized, but equal calls in a run are one


def test_pure_false_makes_every_call_its_own_work() -> None:
    @pl.app(pure=False)
    def consume(data: object) -> int:
        return 1

    assert consume(1).key != consume(1).key
    assert consume(Opaque(1)).key != consume(Opaque(1)).key
    assert not consume.options.memoized


def test_register_token_makes_a_type_cacheable() -> None:
    class Sample:
        def __init__(self, path: str, noise: object) -> None:
            self.path, self.noise = path, noise

    class SubSample(Sample):
        pass

    @pl.app
    def load(s: Sample) -> str:
        return s.path

    with pytest.raises(TypeError, match="Sample"):
        load(Sample("a", object()))
    pl.register_token(Sample, lambda s: s.path)
    assert load(Sample("a", object())).key == load(Sample("a", object())).key != load(Sample("b", None)).key
    assert load(SubSample("a", None)).key != load(Sample("a", None)).key  # subclasses inherit, keyed apart


def test_a_future_is_keyed_by_the_work_it_computes() -> None:
    @pl.app
    def inc(x: int) -> int:
        return x + 1

    with pl.Runtime([pl.ThreadExecutor(1)]) as rt:
        future = rt.submit(inc(1))
        assert inc(future).key == inc(inc(1)).key == inc([future][0]).key
        assert inc([future]).key == inc([inc(1)]).key
        assert rt.run(inc(future), timeout=30) == 3
        assert inc(future).key != inc(inc(2)).key


def test_a_foreign_future_never_shares_a_key() -> None:
    import concurrent.futures

    @pl.app
    def inc(x: int) -> int:
        return x + 1

    a: concurrent.futures.Future[int] = concurrent.futures.Future()
    b: concurrent.futures.Future[int] = concurrent.futures.Future()
    assert inc(a).key == inc(a).key != inc(b).key
    a.set_result(1)
    b.set_result(1)
