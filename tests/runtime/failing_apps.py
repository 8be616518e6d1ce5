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
