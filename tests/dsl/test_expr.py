"""Exprs are values: keys, argument binding, and the errors users meet at build time."""

from __future__ import annotations

import threading
import tracemalloc

import attrs
import pytest

import plait as pl
from plait.dsl._expr import CALL_FIELDS, Call, Gather, new_call
from plait.dsl._token import digest


@pl.app
def add(x: int, y: int = 10) -> int:
    return x + y


@pl.app
def total(*xs: int) -> int:
    return sum(xs)


@pl.app
def count(items: object) -> int:
    return len(items)  # type: ignore[arg-type]


def test_calling_an_app_builds_an_expr_and_runs_nothing() -> None:
    calls = []

    @pl.app
    def record(x: int) -> int:
        calls.append(x)
        return x

    expr = record(1)
    assert isinstance(expr, pl.Expr) and isinstance(expr, Call)
    assert calls == []


def test_equal_calls_have_equal_keys_and_different_calls_do_not() -> None:
    assert add(1, 2).key == add(1, 2).key
    assert add(1, 2).key != add(2, 1).key
    assert add(1, 2).key != total(1, 2).key


def test_keys_do_not_depend_on_how_arguments_are_passed() -> None:
    assert add(1).key == add(1, 10).key == add(x=1).key == add(y=10, x=1).key


def test_keys_depend_on_the_keys_of_argument_exprs() -> None:
    assert add(add(1, 2), 3).key == add(add(1, 2), 3).key
    assert add(add(1, 2), 3).key != add(add(1, 4), 3).key
    assert add(pl.pure(3), 3).key != add(3, 3).key  # a Pure is an expression, not a literal


def test_exprs_nested_in_containers_are_dependencies() -> None:
    a, b, c = add(1, 2), add(3, 4), add(5, 6)
    expr = count([a, {"k": b}, (1, {c})])
    assert isinstance(expr, Call)
    assert sorted(d.key for d in expr.children()) == sorted(e.key for e in (a, b, c))


def test_an_expr_hidden_inside_another_object_is_refused() -> None:
    @attrs.frozen
    class Box:
        inner: object

    with pytest.raises(TypeError, match=r"count\(\).*nested inside an object"):
        count(Box(add(1, 2)))


def test_wrong_arity_names_the_app() -> None:
    with pytest.raises(TypeError, match=r"add\(\): missing a required argument: 'x'"):
        add()
    with pytest.raises(TypeError, match=r"add\(\): too many positional arguments"):
        add(1, 2, 3)
    with pytest.raises(TypeError, match=r"add\(\): got an unexpected keyword argument 'z'"):
        add(1, z=2)
    # A misspelt keyword is named even when it leaves a required argument missing.
    with pytest.raises(TypeError, match=r"add\(\): got an unexpected keyword argument 'yy'; did you mean 'y'\?"):
        add(yy=2)
    with pytest.raises(TypeError, match=r"add\(\): got an unexpected keyword argument 'zz'; its arguments are x, y"):
        add(zz=2)


def test_an_unhashable_argument_names_the_app_and_the_argument() -> None:
    with pytest.raises(TypeError, match=r"count\(\): argument 'items' is a lock"):
        count(threading.Lock())


def test_cache_false_apps_accept_unhashable_arguments_with_unique_keys() -> None:
    @pl.app(cache=False)
    def use(lock: object) -> int:
        return 1

    lock = threading.Lock()
    assert use(lock).key != use(lock).key


def test_an_expr_has_no_truth_value_and_cannot_be_iterated() -> None:
    expr = add(1, 2)
    with pytest.raises(TypeError, match=r"add\(1, 2\) has no truth value.*\.map"):
        bool(expr)
    with pytest.raises(TypeError, match=r"cannot be iterated.*traverse"):
        list(expr)


def test_exprs_are_frozen() -> None:
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        add(1, 2).args = (3, 4)  # type: ignore[misc]


def test_a_call_made_on_the_fast_path_is_the_call_attrs_makes_field_by_field() -> None:
    # new_call sets Call's slots itself (App._simple_call): every field, each to its own value.
    assert tuple(field.name for field in attrs.fields(Call)) == CALL_FIELDS
    values = (digest(b"k"), add, (1, 2), {}, (add(0),))
    fast, made = new_call(*values), Call(*values)
    assert type(fast) is Call
    assert [getattr(fast, name) for name in CALL_FIELDS] == [getattr(made, name) for name in CALL_FIELDS]
    assert fast == made and hash(fast) == hash(made)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        fast.deps = ()  # type: ignore[misc]


def test_gather_takes_exprs_as_arguments_or_as_one_iterable() -> None:
    a, b = add(1, 2), add(3, 4)
    assert pl.gather(a, b).key == pl.gather([a, b]).key == pl.gather(x for x in (a, b)).key
    assert isinstance(pl.gather(a, 5), Gather)


def test_gathering_a_list_of_calls_holds_under_40_bytes_a_call_beside_it_at_its_peak() -> None:
    # bench/million's graph peaked in its gather: the keys joined for its digest held a
    # buffer view of 80 B per key, and the items were copied twice (128 B a call in all;
    # 25 B now, the keys joined 4096 at a time).
    calls = [add(x, 1) for x in range(50_000)]
    tracemalloc.start()
    try:
        gathered = pl.gather(calls)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert gathered.key == pl.gather(*calls).key  # the same key, however the calls are passed
    assert gathered._key == digest(b"G", *(call._key for call in calls))  # and as before, in chunks
    assert peak / len(calls) < 40, f"{peak / len(calls):.0f} B a call"


def test_gather_gives_the_results_of_exprs_and_futures_inside_its_items() -> None:
    with pl.Runtime([pl.ThreadExecutor(2)], progress=False) as rt:
        future = rt.submit(add(5, 5))
        nested = pl.gather({"a": add(1, 2)}, [[add(3, 4)], (future, 7)], {add(0, 1)}, 8)
        assert rt.run(nested) == [{"a": 3}, [[7], (10, 7)], {1}, 8]
    same = pl.gather({"a": add(1, 2)}, [[add(3, 4)], 7])
    assert (
        same.key
        == pl.gather({"a": add(1, 2)}, [[add(3, 4)], 7]).key
        != pl.gather({"a": add(1, 3)}, [[add(3, 4)], 7]).key
    )


def test_traverse_refuses_what_is_not_an_app() -> None:
    with pytest.raises(TypeError, match="traverse needs an app"):
        pl.traverse(42, [1, 2])  # type: ignore[call-overload]
    with pytest.raises(TypeError, match=r"traverse: .*<lambda>\(1\) returned a int, not an Expr.*@plait.app"):
        pl.traverse(lambda x: x + 1, [1, 2])


def test_app_options_are_checked_when_decorating() -> None:
    with pytest.raises(ValueError, match="timeout must be a positive number"):
        pl.app(timeout=-1)(lambda: 1)
    with pytest.raises(TypeError, match="retries must be a count"):
        pl.app(retries="3")(lambda: 1)  # type: ignore[call-overload]


def test_map_and_bind_keys_follow_their_functions() -> None:
    base = add(1, 2)

    def inc(v: int) -> int:
        return v + 1

    assert base.map(inc).key == base.map(inc).key
    assert base.map(inc).key != base.map(str).key
    offsets = [base.map(lambda v, k=k: v + k) for k in range(3)]  # type: ignore[misc]
    assert len({o.key for o in offsets}) == 3  # closures and defaults are part of the key


def test_an_iterator_argument_is_refused_with_a_hint_to_pass_a_list() -> None:
    with pytest.raises(TypeError, match=r"count\(\): argument 'items' is a generator.*pass a list or tuple"):
        count(i for i in range(3))
