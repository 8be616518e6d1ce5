"""check_laws over typed apps of a user's kind: floats, lists and strings flow between them."""

from __future__ import annotations

import pytest

import plait as pl
import plait.testing as pt


@pl.app
def weigh(xs: list[float], factor: int) -> float:
    return round(sum(xs) * factor, 6)


@pl.app
def spread(x: float, n: int) -> list[float]:
    return [x / (i + 1) for i in range(n % 4)]


@pl.app
def label(x: float, prefix: str = "v") -> str:
    return f"{prefix}{x:.3f}"


pt.check_laws([weigh, spread, label], max_examples=15)


def test_apps_without_a_bindable_parameter_are_refused_by_name() -> None:
    @pl.app
    def constant() -> int:
        return 1

    with pytest.raises(ValueError, match=r"none of .*constant has a typed parameter"):
        pt.check_laws([constant])
