"""Layers import one way: dsl <- runtime -> backends; a backend never sees an Expr. The
run database's owner is monitoring, which sees only the backends' sample types; the
runtime writes through it and the report reads through its public face. Every
subpackage, and the command, has a rule."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parent.parent / "plait"

# What each layer may import from plait, besides itself, plait._version and plait._lazy.
ALLOWED = {
    "staging": set(),  # below every layer that moves files: it knows URLs, not Files
    "dsl": {"staging"},
    "backends": {"staging"},
    "monitoring": {"backends"},
    "runtime": {"dsl", "backends", "monitoring", "staging"},
    "report": {"monitoring"},
    "testing": {"dsl", "runtime", "backends"},
    "cli": {"plait", "dsl", "runtime", "backends", "monitoring", "report", "testing", "staging"},  # the top: anything
    "compat": {"plait", "dsl", "runtime", "backends", "monitoring", "testing"},  # public faces only: see below
}
# Layers that may import the others only through their public face (``plait.x``, not ``plait.x._y``).
PUBLIC_ONLY = {"monitoring", "report"}


def plait_imports(path: Path) -> set[str]:
    """The plait modules a module imports (at any depth in the file), e.g. {"plait.dsl._expr"}."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        found.update(name for name in names if name.split(".")[0] == "plait")
    return found


def layer_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "plait"


def modules_of(layer: str) -> list[Path]:
    return [PACKAGE / "cli.py"] if layer == "cli" else sorted((PACKAGE / layer).rglob("*.py"))


def test_every_subpackage_has_a_rule() -> None:
    packages = {path.parent.name for path in PACKAGE.glob("*/__init__.py")}
    assert packages | {"cli"} == set(ALLOWED), "give each subpackage of plait a rule in ALLOWED"


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layer_imports_only_what_it_may(layer: str) -> None:
    for path in modules_of(layer):
        where = path.relative_to(PACKAGE.parent)
        others = {m for m in plait_imports(path) if layer_of(m) not in {layer, "_version", "_lazy"}}
        forbidden = {layer_of(m) for m in others} - ALLOWED[layer]
        assert not forbidden, f"{where} imports plait.{', plait.'.join(sorted(forbidden))}"
        if layer in PUBLIC_ONLY:
            private = sorted(m for m in others if m.count(".") > 1)
            assert not private, f"{where} imports {', '.join(private)}: use the package's public names"


TOP_HELPERS = {"plait._version", "plait._lazy"}  # plait's own, not a subpackage's


def test_plait_imports_each_subpackage_through_its_public_face() -> None:
    """``plait/__init__`` re-exports what each subpackage's ``__init__`` says is public."""
    private = [
        module
        for module in sorted(plait_imports(PACKAGE / "__init__.py"))
        if module not in TOP_HELPERS and any(part.startswith("_") for part in module.split(".")[1:])
    ]
    assert not private, f"plait/__init__.py imports {', '.join(private)}: export the names from the subpackage"


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
