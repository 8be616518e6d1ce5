"""A misspelt name of plait's is refused naming the close names it has, at the user's line alone."""

from __future__ import annotations

import subprocess
import sys
import traceback

import pytest

import plait as pl
import plait.runtime
from tests.tracebacks import raises_at_its_line


def test_a_misspelt_attribute_names_the_closest_at_the_users_line() -> None:
    raises_at_its_line(lambda: pl.Runtim, AttributeError, r"no attribute 'Runtim'; did you mean 'Runtime' or 'run'\?$")
    raises_at_its_line(lambda: pl.zmqexecutor, AttributeError, r"did you mean 'ZMQExecutor'")  # case aside
    raises_at_its_line(lambda: plait.runtime.SQLiteMem, AttributeError, r"did you mean 'SQLiteMemo'\?$")


def test_a_name_brought_from_elsewhere_says_what_plait_has_instead() -> None:
    raises_at_its_line(lambda: pl.map, AttributeError, r"'map'; map is a method of an Expr: expr\.map\(\.\.\.\)$")
    raises_at_its_line(lambda: pl.python_app, AttributeError, r"Parsl's python_app is plait\.compat\.parsl\.python_app")
    raises_at_its_line(lambda: pl.delayed, AttributeError, r"Dask's delayed is plait\.app")


def test_a_name_close_to_none_says_where_the_names_are() -> None:
    raises_at_its_line(lambda: pl.tpyo, AttributeError, r"^module 'plait' has no attribute 'tpyo'; dir\(plait\) lists")


def test_a_misspelt_import_names_the_closest_at_the_users_line() -> None:
    message = r"cannot import name 'ZMQExecuter' from 'plait'; did you mean 'ZMQExecutor'"
    with pytest.raises(ImportError, match=message) as caught:
        from plait import ZMQExecuter  # noqa: F401  # the user's line
    lines = [frame.line for frame in traceback.extract_tb(caught.value.__traceback__)]
    assert lines == ["from plait import ZMQExecuter  # noqa: F401  # the user's line"], lines


def test_a_probe_for_a_name_plait_lacks_is_answered_plainly() -> None:
    """What tools ask of a module (hasattr, a private name) is neither refused loudly nor slow to answer."""
    assert not hasattr(pl, "__wrapped__") and not hasattr(pl, "Runtim")
    with pytest.raises(AttributeError, match=r"^module 'plait' has no attribute '_private'$"):
        pl._private  # noqa: B018
    assert pl.Runtime is plait.runtime.Runtime


def test_a_submodule_imported_by_from_is_not_taken_for_a_misspelt_name() -> None:
    """``from plait import staging`` first asks plait whether it has ``staging``: a probe, not a slip."""
    code = "import sys; from plait import staging; print(staging.__name__, 'difflib' in sys.modules)"
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert shown.stdout.split() == ["plait.staging", "False"], shown.stderr
