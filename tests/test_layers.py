"""Layers import one way: dsl <- runtime -> backends. A backend never sees an Expr."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parent.parent / "plait"

# What each layer may import from plait, besides itself, plait._version and plait._lazy.
ALLOWED = {
    "dsl": set(),
    "backends": set(),
    "runtime": {"dsl", "backends"},
}


def plait_imports(path: Path) -> set[str]:
    """The plait layers a module imports (at any depth in the file), e.g. {"dsl"}."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            parts = name.split(".")
            if parts[0] == "plait":
                found.add(parts[1] if len(parts) > 1 else "plait")
    return found


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layer_imports_only_what_it_may(layer: str) -> None:
    for module in sorted((PACKAGE / layer).rglob("*.py")):
        used = plait_imports(module) - {layer, "_version", "_lazy"}
        forbidden = used - ALLOWED[layer]
        assert not forbidden, f"{module.relative_to(PACKAGE.parent)} imports plait.{', plait.'.join(sorted(forbidden))}"
