"""Layers import one way: dsl <- runtime -> backends; a backend never sees an Expr. The
run database's owner is monitoring, which sees only the backends' sample types; the
runtime writes through it and the report reads through its public face. Every
subpackage, and the command, has a rule; the other top-level modules are helpers below
every layer. An import counts however it is written: relative, or a module named in a
string for importlib or a lazy-export table."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parent.parent / "plait"

# What each layer may import from plait, besides itself and the helpers below every layer (TOP_HELPERS).
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
# plait's own modules below every layer
TOP_HELPERS = {"plait._version", "plait._lazy", "plait._collector", "plait._tracebacks", "plait._spelling"}
CLI = ["cli.py", "__main__.py"]  # the command, and ``python -m plait`` running it


def plait_imports(path: Path) -> set[str]:
    """The plait modules a module of plait imports, e.g. {"plait.dsl._expr"}."""
    return imports_in(path.read_text(), package_of(path))


def imports_in(source: str, package: str) -> set[str]:
    """The plait modules ``source``, a module of ``package``, imports (at any depth in it): by
    ``import`` and ``from ... import``, relative imports resolved, and by name in a string
    (``importlib.import_module("plait.report._cli")``, a table of lazy exports)."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package.split(".")[: 1 - node.level or None])
            found.update([f"{base}.{node.module}"] if node.module else (f"{base}.{a.name}" for a in node.names))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and is_plait_module(node.value):
            found.add(node.value)
    return {name for name in found if name.split(".")[0] == "plait"}


def package_of(path: Path) -> str:
    """The package a module of plait is in: plait/backends/zmq/_pool.py is in plait.backends.zmq."""
    return ".".join(path.relative_to(PACKAGE.parent).parent.parts)


def is_plait_module(name: str) -> bool:
    """Whether ``name`` names a module or package of plait (not an entry point group like "plait.executors")."""
    if not re.fullmatch(r"plait(\.\w+)+", name):
        return False
    where = PACKAGE.parent.joinpath(*name.split("."))
    return where.with_suffix(".py").is_file() or (where / "__init__.py").is_file()


def layer_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "plait"


def modules_of(layer: str) -> list[Path]:
    return [PACKAGE / name for name in CLI] if layer == "cli" else sorted((PACKAGE / layer).rglob("*.py"))


def test_every_subpackage_has_a_rule() -> None:
    packages = {path.parent.name for path in PACKAGE.glob("*/__init__.py")}
    assert packages | {"cli"} == set(ALLOWED), "give each subpackage of plait a rule in ALLOWED"


def test_every_top_level_module_has_a_rule_and_the_helpers_import_no_layer() -> None:
    modules = {f"plait.{path.stem}" for path in PACKAGE.glob("*.py")} - {"plait.__init__"}
    expected = {f"plait.{Path(name).stem}" for name in CLI} | TOP_HELPERS
    assert modules == expected, "give a new module of plait a rule in ALLOWED, or make it a helper"
    for helper in sorted(TOP_HELPERS):
        path = PACKAGE / f"{helper.split('.')[1]}.py"
        assert not plait_imports(path) - TOP_HELPERS, f"{helper} is below every layer: it imports none"


def test_imports_are_seen_however_they_are_written() -> None:
    source = """
from . import _expr
from ..runtime._memo import SQLiteMemo
import plait.backends
importlib.import_module("plait.report._cli")
exports(__name__, {"plait.monitoring": ["monitoring"]})
GROUP = "plait.executors"  # an entry point group, not a module
"""
    seen = {"plait.dsl._expr", "plait.runtime._memo", "plait.backends", "plait.report._cli", "plait.monitoring"}
    assert imports_in(source, "plait.dsl") == seen


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layer_imports_only_what_it_may(layer: str) -> None:
    for path in modules_of(layer):
        where = path.relative_to(PACKAGE.parent)
        others = {m for m in plait_imports(path) if m not in TOP_HELPERS and layer_of(m) != layer}
        forbidden = {layer_of(m) for m in others} - ALLOWED[layer]
        assert not forbidden, f"{where} imports plait.{', plait.'.join(sorted(forbidden))}"
        if layer in PUBLIC_ONLY:
            private = sorted(m for m in others if m.count(".") > 1)
            assert not private, f"{where} imports {', '.join(private)}: use the package's public names"


def test_plait_imports_each_subpackage_through_its_public_face() -> None:
    """``plait/__init__`` re-exports what each subpackage's ``__init__`` says is public.

    One private module is wired, not re-exported: the DSL's await hook, which the facade
    points at the runtime it loads on the first ``await`` (``import plait`` loads no runtime)."""
    wiring = {"plait.dsl._expr"}
    private = [
        module
        for module in sorted(plait_imports(PACKAGE / "__init__.py") - wiring)
        if module not in TOP_HELPERS and any(part.startswith("_") for part in module.split(".")[1:])
    ]
    assert not private, f"plait/__init__.py imports {', '.join(private)}: export the names from the subpackage"


def test_compat_uses_only_plaits_public_api() -> None:
    """A compatibility layer is plait's user: it imports plait and its packages, never their private modules."""
    for module in sorted((PACKAGE / "compat").rglob("*.py")):
        private = {
            name
            for name in plait_imports(module)
            if not name.startswith("plait.compat") and any(part.startswith("_") for part in name.split("."))
        }
        assert not private, f"{module.relative_to(PACKAGE.parent)} imports private {', '.join(sorted(private))}"


def test_nothing_in_plait_imports_compat() -> None:
    for module in sorted(PACKAGE.rglob("*.py")):
        if "compat" not in module.relative_to(PACKAGE).parts:
            assert "compat" not in plait_imports(module), f"{module.relative_to(PACKAGE.parent)} imports plait.compat"
