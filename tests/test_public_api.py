"""The public face is exactly what docs/api.md lists, and nothing leaks in by accident: each
subpackage says what it exports, plait.dsl only the user API, and type checkers see what runs."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

import plait

API_DOC = Path(__file__).parent.parent / "docs" / "api.md"


def documented_names() -> list[str]:
    return re.findall(r"^\| `(\w+)` \|", API_DOC.read_text(), flags=re.MULTILINE)


def documented_subpackage_names() -> list[tuple[str, str]]:
    """The rows of docs/api.md naming ``plait.package.name``: public, but not re-exported by plait."""
    return re.findall(r"^\| `(plait(?:\.\w+)+)\.(\w+)` \|", API_DOC.read_text(), flags=re.MULTILINE)


def test_all_is_what_the_docs_list() -> None:
    documented = documented_names()
    assert len(documented) == len(set(documented)), "a name is listed twice in docs/api.md"
    assert sorted(plait.__all__) == sorted(documented), "update docs/api.md or plait.__all__"


def test_every_public_name_exists_and_nothing_private_is_public() -> None:
    for name in plait.__all__:
        assert hasattr(plait, name), name
        assert not name.startswith("_"), name


def test_the_built_in_executors_and_providers_are_what_the_exported_protocols_say() -> None:
    for executor in (plait.ThreadExecutor(1), plait.ProcessExecutor(1)):
        assert isinstance(executor, plait.Executor), executor
    assert isinstance(plait.ProcessExecutor(1), plait.SamplingExecutor)
    assert not isinstance(plait.ThreadExecutor(1), plait.SamplingExecutor)  # nothing to sample: the runtime leaves it
    for provider in (plait.LocalProvider(1), plait.SlurmProvider(walltime="00:10:00")):
        assert isinstance(provider, plait.Provider), provider
        assert provider.walltime_seconds in (None, 600)


def test_every_subpackage_says_what_is_public_and_has_it() -> None:
    packages = [info.name for info in pkgutil.walk_packages(plait.__path__, "plait.") if info.ispkg]
    assert "plait.monitoring" in packages and "plait.backends.zmq" in packages
    for name in packages:
        package = importlib.import_module(name)
        public = getattr(package, "__all__", None)
        assert public is not None, f"{name} has no __all__"
        for exported in public:
            assert hasattr(package, exported), f"{name}.__all__ names {exported}, which it lacks"
            assert not exported.startswith("_"), f"{name}.__all__ names the private {exported}"


def test_what_api_md_lists_under_a_subpackage_that_subpackage_exports() -> None:
    assert documented_subpackage_names(), "docs/api.md lists no plait.package.name row: is the pattern stale?"
    for package, name in documented_subpackage_names():
        assert name in importlib.import_module(package).__all__, f"docs/api.md lists {package}.{name}"


def test_dsl_exports_the_user_api_and_no_runtime_plumbing() -> None:
    """``plait.dsl`` exports what plait re-exports from it and what docs/api.md lists under it:
    the node kinds, tokens and the interpreter hook stay in its private modules."""
    dsl = importlib.import_module("plait.dsl")
    reexported = {name for name in plait.__all__ if getattr(dsl, name, None) is getattr(plait, name)}
    listed = {name for package, name in documented_subpackage_names() if package == "plait.dsl"}
    assert sorted(dsl.__all__) == sorted(reexported | listed)
    for plumbing in ("Call", "Interpreter", "set_interpreter", "substitute", "token_of", "Untokenizable"):
        assert not hasattr(dsl, plumbing), f"plait.dsl.{plumbing} is runtime plumbing, not user API"


def type_checking_blocks(package: str) -> list[ast.stmt]:
    """The statements of a package's ``if TYPE_CHECKING:`` blocks (what a lazy package shows type checkers)."""
    source = Path(importlib.import_module(package).__file__ or "").read_text()
    blocks = [n for n in ast.parse(source).body if isinstance(n, ast.If) and ast.unparse(n.test) == "TYPE_CHECKING"]
    return [statement for block in blocks for statement in block.body]


def names_type_checkers_see(package: str) -> set[str]:
    """The names a lazily exporting package imports for type checkers, and the plait names it imports at once."""
    source = Path(importlib.import_module(package).__file__ or "").read_text()
    body = ast.parse(source).body
    eager = [n for n in body if isinstance(n, ast.ImportFrom) and (n.module or "").startswith("plait.")]
    imports = [n for n in [*eager, *type_checking_blocks(package)] if isinstance(n, ast.ImportFrom)]
    names = {alias.asname or alias.name for n in imports for alias in n.names}
    return {name for name in names if not name.startswith("__")}


LAZY_PACKAGES = [
    name
    for name in ["plait", *(info.name for info in pkgutil.walk_packages(plait.__path__, "plait.") if info.ispkg)]
    if type_checking_blocks(name)
]


@pytest.mark.parametrize("package", LAZY_PACKAGES)
def test_type_checkers_see_what_a_lazy_package_exports(package: str) -> None:
    """As trio's exports test: what mypy and IDEs read is what ``__all__`` says and ``getattr`` finds."""
    assert {"plait", "plait.backends", "plait.backends.zmq"} <= set(LAZY_PACKAGES)
    module = importlib.import_module(package)
    assert names_type_checkers_see(package) == set(module.__all__), f"{package}: TYPE_CHECKING imports vs __all__"
    assert set(module.__all__) <= set(dir(module))


def public_errors() -> list[type[BaseException]]:
    found = [getattr(plait, name) for name in plait.__all__]
    return [cls for cls in found if isinstance(cls, type) and issubclass(cls, BaseException)]


def test_a_traceback_names_each_public_error_as_users_import_it() -> None:
    errors = public_errors()
    assert {cls.__name__ for cls in errors} >= {"DependencyError", "ShellError", "WorkerLost", "ImpureAppWarning"}
    for cls in errors:
        assert f"{cls.__module__}.{cls.__qualname__}" == f"plait.{cls.__name__}", cls


def test_each_public_error_class_pickles_by_its_public_name_in_a_fresh_process() -> None:
    """A worker pickles the class by reference; the driver, with nothing but plait imported
    lazily, must find it under that name (and a pool loads no more of plait than it needs)."""
    names = [cls.__name__ for cls in public_errors()]
    script = (
        "import pickle, sys, plait\n"
        f"for name in {names!r}:\n"
        "    cls = getattr(plait, name)\n"
        "    assert pickle.loads(pickle.dumps(cls)) is cls, name\n"
        "    assert b'plait' in pickle.dumps(cls) and b'_errors' not in pickle.dumps(cls), name\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
