"""``pip install plait[testing]`` is all ``plait.testing`` needs: plait's own dependencies
and hypothesis, not the test stack (Ray, Dask, mypy, numpy...)."""

from __future__ import annotations

import ast
import importlib.metadata
import sys
import tomllib
from pathlib import Path

from tests.test_packaging import distribution

ROOT = Path(__file__).resolve().parent.parent.parent


def test_plait_testing_imports_only_plaits_dependencies_and_the_testing_extra() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    allowed = {distribution(r) for r in [*project["dependencies"], *project["optional-dependencies"]["testing"]]}
    distributions = importlib.metadata.packages_distributions()
    for path in sorted((ROOT / "plait" / "testing").glob("*.py")):
        if path.name == "_pytest_plugin.py":  # loaded by pytest only: pytest is there
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                if top in sys.stdlib_module_names or top == "plait":
                    continue
                needs = {distribution(d) for d in distributions.get(top, [top])}
                assert needs & allowed, f"plait/testing/{path.name} imports {module}, not in plait[testing]"
