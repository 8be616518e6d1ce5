"""Apps in an importable module, for the traceback tests: each fails on a known line."""

from __future__ import annotations

import plait as pl


@pl.app
def fail_here(x: int) -> int:
    doubled = 2 * x
    raise ValueError(f"failed on purpose: {doubled}")


@pl.app
def exit_four() -> int:
    import sys

    sys.exit(4)  # the user's line


@pl.app
def double(x: int) -> int:
    return 2 * x


@pl.app
def calls_an_app(x: int) -> int:
    return double(x)  # type: ignore[return-value]  # Parsl's habit: this builds a call, it runs nothing


@pl.app
def calls_apps(xs: list[int]) -> list[int]:
    return [double(x) for x in xs]  # type: ignore[misc]
