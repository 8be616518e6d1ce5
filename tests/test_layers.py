"""Layers import one way: dsl <- runtime -> backends. A backend never sees an Expr."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parent.parent / "plait"

# What each layer may import from plait, besides itself, plait._version and plait._lazy.
ALLOWED = {
    "staging": set(),
    "dsl": {"staging"},
    "backends": {"staging"},
    "runtime": {"dsl", "backends", "staging"},
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


def plait_modules_imported(path: Path) -> set[str]:
    """The plait modules a file imports by name, e.g. {"plait", "plait.dsl._expr"}."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] == "plait"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module.startswith("plait"):
            found.add(node.module)
    return found


def test_compat_uses_only_plaits_public_api() -> None:
    """A compatibility layer is plait's user: it imports plait and its packages, never their private modules."""
    for module in sorted((PACKAGE / "compat").rglob("*.py")):
        private = {
            name
            for name in plait_modules_imported(module)
            if not name.startswith("plait.compat") and any(part.startswith("_") for part in name.split("."))
        }
        assert not private, f"{module.relative_to(PACKAGE.parent)} imports private {', '.join(sorted(private))}"


def test_nothing_in_plait_imports_compat() -> None:
    for module in sorted(PACKAGE.rglob("*.py")):
        if "compat" not in module.relative_to(PACKAGE).parts:
            assert "compat" not in plait_imports(module), f"{module.relative_to(PACKAGE.parent)} imports plait.compat"
