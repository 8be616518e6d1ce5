"""What the tests of errors a user causes check: the error, and the user's lines alone."""

from __future__ import annotations

import traceback
from collections.abc import Callable
from typing import Any

import pytest


def raises_at_its_line(case: Callable[[], Any], error: type[Exception], message: str) -> None:
    """That ``case`` (a lambda, standing for the user's line) raises ``error`` matching
    ``message``, shown as this call of it and its own line, with no frame of plait's below."""
    with pytest.raises(error, match=message) as caught:
        case()
    frames = traceback.extract_tb(caught.value.__traceback__)
    here = case.__code__.co_filename
    assert [frame.filename for frame in frames] == [__file__, here], frames
    assert frames[-1].lineno == case.__code__.co_firstlineno, frames
