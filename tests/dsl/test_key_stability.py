"""Keys are byte-for-byte what they were: a memo written by an earlier plait still hits.

The keys below were computed by plait before graph building got its fast paths (issue 19).
Apps here have ``version=``, so their identity does not depend on the interpreter's bytecode.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import plait as pl
from plait.dsl import _app


@pl.app(version="1")
def one(x: Any) -> Any:
    return x


@pl.app(version="1")
def two(a: Any, b: float = 2.5, *, c: str = "c") -> Any:
    return a


@pl.app(version="1", ignore_for_cache=["b"])
def skip(a: Any, b: Any) -> Any:
    return a


SHAPES: dict[str, Callable[[], pl.Expr[Any]]] = {
    "int": lambda: one(7),
    "big int": lambda: one(-12345678901234567890),
    "float": lambda: one(1.5),
    "str": lambda: one("héllo"),
    "bytes": lambda: one(b"\x00\x01"),
    "none": lambda: one(None),
    "bool": lambda: one(True),
    "complex": lambda: one(1 + 2j),
    "ellipsis": lambda: one(...),
    "list": lambda: one([1, "a", (2.0, None)]),
    "dict": lambda: one({"b": 1, "a": [1]}),
    "keyword": lambda: one(x=7),
    "defaults": lambda: two(1),
    "keyword-only": lambda: two(1, 3.0, c="d"),
    "ignored": lambda: skip(1, 99),
    "an expr": lambda: one(one(7)),
    "an expr in a list": lambda: one([one(7), 8]),
    "a chain": lambda: one(one(one(7))),
    "pure": lambda: pl.pure(3),
    "gather": lambda: pl.gather(one(1), one(2)),
    "traverse": lambda: pl.traverse(one, [1, 2]),
}

# Keys that hold a function's bytecode (a map's, a bind's, plait's own continuations'),
# which each Python version compiles differently: pinned as CPython 3.11 makes them.
COMPILED: dict[str, Callable[[], pl.Expr[Any]]] = {
    "map": lambda: one(1).map(_double),
    "bind": lambda: one(1).bind(one),
    "recover": lambda: one(1).recover(_zero),
    "apply": lambda: one(1).apply(pl.pure(_double)),
    "traverse over an expr": lambda: pl.traverse(one, pl.pure([1, 2])),
    "a call of a traverse over an expr": lambda: one(pl.traverse(one, one([1, 2]))),
}


def _double(x: int) -> int:
    return 2 * x


def _zero(_: BaseException) -> int:
    return 0


KEYS = {
    "int": "8af06b2fb6b0b0b1cba7cc79404af84b",
    "big int": "1532c985180a6464608ab40da35dcd9e",
    "float": "df106b8b6419fc51b0acd7dc16b835ad",
    "str": "887b506b321aeb51501ec415a844dd6f",
    "bytes": "5f72684279db8ee612041a0b414d2fd3",
    "none": "a2248f7de08112d1f49b1a6b84ffd3cd",
    "bool": "63c31b337591a8dc6b241479d756cd46",
    "complex": "6dca0c662e71f1ce8e4408f2804dd59e",
    "ellipsis": "5a48f648d3a4ce3f039ad3bc5d2b28d8",
    "list": "1b81c5d6ae412c967d356e075c0e7681",
    "dict": "14202f6b6b09138af680be618b222f94",
    "keyword": "8af06b2fb6b0b0b1cba7cc79404af84b",
    "defaults": "52ef6347e0581423a74ccfc48ef18b8c",
    "keyword-only": "40b694eb4657a3cfd808aabb5830cbf8",
    "ignored": "f029abf4c3e1d997c83f41a213aaa3d3",
    "an expr": "85e5890310e7968e342786d32d2e2485",
    "an expr in a list": "fe6ccf22687ee40f5b6b69ed759e9c84",
    "a chain": "b02d7bc6832df832205aceffeea0aac6",
    "pure": "dbb72e3f2f797f22e82f11cd5880b603",
    "gather": "4da1803104c672bfdd358c64b2bbfb88",
    "traverse": "4da1803104c672bfdd358c64b2bbfb88",
}


COMPILED_KEYS = {
    "map": "bd4739570f68149a4343d9a77f86f640",
    "bind": "29af9c70dd9347a813e8297b56227106",
    "recover": "035088398b76aff599b6f9a5cfe98aa3",
    "apply": "ab544bdb6e1536e01978fcf52694101f",
    "traverse over an expr": "5b9d6c4d3cc2431766088d2d3a7641cc",
    "a call of a traverse over an expr": "109d20912e62f49303020fba1555eb6f",
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_keys_are_what_they_were(shape: str) -> None:
    assert SHAPES[shape]().key == KEYS[shape]


@pytest.mark.skipif(
    sys.version_info[:2] != (3, 11), reason="pinned as CPython 3.11 compiles the functions; CI runs 3.11"
)
@pytest.mark.parametrize("shape", sorted(COMPILED))
def test_keys_holding_bytecode_are_what_they_were(shape: str) -> None:
    assert COMPILED[shape]().key == COMPILED_KEYS[shape]


SCALARS = st.one_of(
    st.integers(), st.floats(allow_nan=False), st.text(max_size=4), st.binary(max_size=4), st.booleans(), st.none()
)
ARGUMENTS = st.one_of(SCALARS, SCALARS.map(pl.pure), SCALARS.map(one), st.lists(SCALARS, max_size=2))


@given(ARGUMENTS, ARGUMENTS)
def test_a_positional_call_is_keyed_as_its_keyword_spelling(a: Any, b: Any) -> None:
    """Positional calls of scalars and Exprs take the quick way to a key, keyword calls the
    general one: both give the same key and the same inputs."""
    quick, general = two(a, b), two(b=b, a=a)
    assert quick.key == general.key
    assert quick.children() == general.children()


def test_the_common_call_is_keyed_without_walking_its_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    """Scalars and Exprs as positional arguments are the hot path of a graph build (issue 19)."""

    def walk(*_: object, **__: object) -> None:
        raise AssertionError("the arguments were walked")

    expected = {shape: KEYS[shape] for shape in ("int", "float", "str", "none", "an expr", "a chain")}
    monkeypatch.setattr(_app, "find_refs", walk)
    monkeypatch.setattr(_app, "token_of", walk)
    assert {shape: SHAPES[shape]().key for shape in expected} == expected
