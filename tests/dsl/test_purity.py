"""Apps that read randomness or the clock are flagged; pure=False makes every call run."""

from __future__ import annotations

import math
import random
import time
import warnings
from collections.abc import Iterator

import numpy as np
import pytest

import plait as pl
import plait.testing as pt


@pytest.fixture
def threads() -> Iterator[pl.Runtime]:
    with pl.Runtime([pl.ThreadExecutor(2)]) as rt:
        yield rt


@pl.app(pure=True)
def avg(*xs: float) -> float:
    return sum(xs) / len(xs)


def test_a_dart_app_is_flagged_naming_the_app_and_what_it_reads() -> None:
    @pl.app
    def dart() -> int:
        x, y = random.random(), random.random()
        return 4 if x * x + y * y < 1 else 0

    with pytest.warns(pl.ImpureAppWarning, match=r"app .*dart reads random\.random.*pure=False") as seen:
        dart()
    assert seen[0].filename == __file__  # the user's line, not plait's


def test_each_source_of_variation_is_named_through_helpers() -> None:
    def stamp() -> float:
        return time.time()

    @pl.app
    def stamped(x: int) -> float:
        return x + stamp() + np.random.rand()

    with pytest.warns(pl.ImpureAppWarning) as seen:
        stamped(1)
    message = str(seen[0].message)
    assert "time.time (in tests.dsl.test_purity." in message and "numpy.random.rand" in message


def test_seeded_generators_and_declared_apps_are_not_flagged() -> None:
    @pl.app
    def seeded(seed: int) -> float:
        return random.Random(seed).random() + float(np.random.default_rng(seed).random())

    @pl.app(pure=True)
    def declared(x: int) -> float:
        return x + time.time()

    @pl.app(pure=False)
    def impure(x: int) -> float:
        return x + time.time()

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        seeded(1), declared(1), impure(1), impure(1)


def test_an_app_called_bare_twice_is_flagged_once() -> None:
    @pl.app
    def reading() -> int:
        return 1

    reading()
    with pytest.warns(pl.ImpureAppWarning, match="called with no arguments more than once"):
        reading()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reading()


def test_pure_false_gives_an_estimate_of_pi_and_the_default_shares_one_dart(threads: pl.Runtime) -> None:
    def dart() -> int:
        x, y = random.random(), random.random()
        return 4 if x * x + y * y < 1 else 0

    with pytest.warns(pl.ImpureAppWarning):
        shared = threads.run(avg(*[pl.app(dart)() for _ in range(500)]))
    assert shared in (0.0, 4.0)  # one task ran, 500 calls share it: the warned-of pitfall
    estimate = threads.run(avg(*[pl.app(pure=False)(dart)() for _ in range(2000)]))
    assert abs(estimate - math.pi) < 0.3


def test_check_deterministic_passes_a_pure_app_and_catches_a_random_one() -> None:
    @pl.app
    def square(x: int) -> int:
        return x * x

    pt.check_deterministic(square, max_examples=5)

    @pl.app(pure=True)  # a false promise: the check finds it out
    def noisy(x: int) -> float:
        return x + random.random()

    with pytest.raises(AssertionError, match=r"noisy is not deterministic: .*noisy\(x=.*\) gave .* in one worker"):
        pt.check_deterministic(noisy, max_examples=3)
    with pytest.raises(TypeError, match="parameter 'x' has no annotation"):
        pt.check_deterministic(pl.app(lambda x: x))


@pytest.mark.parametrize("wrong", ["no", 0, 1, "False"])
def test_pure_takes_only_true_false_or_none(wrong: object) -> None:
    with pytest.raises(TypeError, match=r"pure must be True, False or None.*not "):
        pl.app(pure=wrong)(lambda x: x)  # type: ignore[call-overload]


def test_check_deterministic_names_what_is_not_an_app() -> None:
    with pytest.raises(TypeError, match="check_deterministic takes an app"):
        pt.check_deterministic(lambda x: x)  # type: ignore[arg-type]
