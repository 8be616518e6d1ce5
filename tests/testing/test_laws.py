"""check_laws over the default integer palette: returns' laws plus the app laws."""

from __future__ import annotations

import plait.testing as pt

pt.check_laws(max_examples=15)


def test_check_laws_added_the_returns_laws_and_the_app_laws() -> None:
    names = {name for name in globals() if name.startswith("test_expr_")}
    assert {"test_expr_containern_associative_law", "test_expr_applicativen_interchange_law"} <= names
    assert {"test_expr_bind_associativity_with_apps", "test_expr_result_is_schedule_independent"} <= names
