"""Apps for the packed-environment tests: a module that imports nothing but plait, as the pools have nothing else."""

from __future__ import annotations

import sys

import plait as pl


@pl.app(pure=False)  # what it says depends on where it runs
def where_plait_is(marker: str) -> tuple[str, str]:
    """The file plait was imported from in the pool, and what the ``marker`` file says there
    (the token of the image, the name of the host)."""
    with open(marker) as mark:
        return sys.modules["plait"].__file__ or "", mark.read()
