"""An app's key covers what it reaches: the user's helpers, classes, constants, distributions."""

from __future__ import annotations

import importlib
import subprocess
import sys
import types
import warnings
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import plait as pl
from plait.dsl import _reach

HELPERS = """
import functools

FACTOR = 3
OFFSET = {"a": 1}


def scale(x):
    return x * 2


def unrelated():
    return "nobody calls me"


def logged(fn):
    @functools.wraps(fn)
    def wrapper(x):
        return fn(x) + 0
    return wrapper


@logged
def decorated(x):
    return x - 2


class counted:
    def __init__(self, fn):
        functools.update_wrapper(self, fn)

    def __call__(self, x):
        return self.__wrapped__(x) * 1


@counted
def decorated_by_a_class(x):
    return x


class Model:
    weight = 5

    def predict(self, x):
        return self._inner(x) + 1

    def _inner(self, x):
        return x * self.weight
"""

PIPELINE = """
import plait as pl
import helpers
from helpers import scale, Model


@pl.app
def work(x):
    return scale(x)


@pl.app
def plus(x):
    return x + helpers.FACTOR


@pl.app
def predicts(x):
    return Model().predict(x)


@pl.app
def wrapped(x):
    return helpers.decorated(x) + helpers.decorated_by_a_class(x)


@pl.app
def alone(x):
    return x - 1


@pl.app
def same_file(x):
    return local_helper(x) + LOCAL


def local_helper(x):
    return x * 10


LOCAL = 7
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], dict[str, bytes]]]:
    """A user's project on sys.path; each call imports it afresh and gives each app's key of f(1)."""
    (tmp_path / "helpers.py").write_text(HELPERS)
    (tmp_path / "pipeline.py").write_text(PIPELINE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)  # an edit within a second must be seen

    def keys() -> dict[str, bytes]:
        for name in ("helpers", "pipeline"):
            sys.modules.pop(name, None)
        importlib.invalidate_caches()
        module = importlib.import_module("pipeline")
        apps = ("work", "plus", "predicts", "wrapped", "alone", "same_file")
        return {name: getattr(module, name)(1).key for name in apps}

    yield keys
    for name in ("helpers", "pipeline"):
        sys.modules.pop(name, None)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def changed(before: dict[str, bytes], after: dict[str, bytes]) -> set[str]:
    return {name for name in before if before[name] != after[name]}


def test_editing_a_helper_in_another_module_reruns_exactly_the_apps_that_reach_it(project, tmp_path) -> None:
    before = project()
    edit(tmp_path / "helpers.py", "return x * 2", "return x * 3")
    assert changed(before, project()) == {"work"}


def test_editing_a_decorator_s_wrapper_or_the_function_it_wraps_reruns_the_app(project, tmp_path) -> None:
    before = project()
    edit(tmp_path / "helpers.py", "return fn(x) + 0", "return fn(x) + 1")  # functools.wraps hid this
    middle = project()
    assert changed(before, middle) == {"wrapped"}
    edit(tmp_path / "helpers.py", "return x - 2", "return x - 3")
    after = project()
    assert changed(middle, after) == {"wrapped"}
    edit(tmp_path / "helpers.py", "(x) * 1", "(x) * 2")
    assert changed(after, project()) == {"wrapped"}


def test_editing_a_module_constant_reruns_exactly_the_apps_that_read_it(project, tmp_path) -> None:
    before = project()
    edit(tmp_path / "helpers.py", "FACTOR = 3", "FACTOR = 4")
    assert changed(before, project()) == {"plus"}


def test_editing_a_method_of_a_user_class_reruns_the_apps_that_use_the_class(project, tmp_path) -> None:
    before = project()
    edit(tmp_path / "helpers.py", "return x * self.weight", "return x * self.weight * 2")
    assert changed(before, project()) == {"predicts"}
    before = project()
    edit(tmp_path / "helpers.py", "weight = 5", "weight = 6")
    assert changed(before, project()) == {"predicts"}


def test_editing_a_helper_or_constant_in_the_same_file_reruns_the_app(project, tmp_path) -> None:
    before = project()
    edit(tmp_path / "pipeline.py", "return x * 10", "return x * 11")
    middle = project()
    assert changed(before, middle) == {"same_file"}
    edit(tmp_path / "pipeline.py", "LOCAL = 7", "LOCAL = 8")
    assert changed(middle, project()) == {"same_file"}


def test_an_unrelated_function_a_comment_or_moving_code_reruns_nothing(project, tmp_path) -> None:
    before = project()
    edit(tmp_path / "helpers.py", '"nobody calls me"', '"still nobody"')
    edit(tmp_path / "helpers.py", "def scale(x):\n    return x * 2\n", "")
    with (tmp_path / "helpers.py").open("a") as f:
        f.write("\n\n# moved down, with a comment\ndef scale(x):\n    return x * 2  # the same\n")
    edit(tmp_path / "pipeline.py", "@pl.app\ndef alone", "# a comment\n\n\n@pl.app\ndef alone")
    assert changed(before, project()) == set()


def test_version_overrides_the_reach(project, tmp_path) -> None:
    edit(tmp_path / "pipeline.py", "@pl.app\ndef work", '@pl.app(version="1")\ndef work')
    before = project()
    edit(tmp_path / "helpers.py", "return x * 2", "return x * 3")
    assert changed(before, project()) == set()


def test_a_map_function_s_helpers_are_in_the_key_too(tmp_path, monkeypatch) -> None:
    (tmp_path / "mapper.py").write_text("def norm(v):\n    return half(v)\n\n\ndef half(v):\n    return v / 2\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)

    def key() -> bytes:
        sys.modules.pop("mapper", None)
        importlib.invalidate_caches()
        return pl.pure(4).map(importlib.import_module("mapper").norm).key

    before = key()
    edit(tmp_path / "mapper.py", "v / 2", "v / 3")
    assert key() != before
    sys.modules.pop("mapper", None)


def ping(n: int) -> int:
    return pong(n - 1) if n else 0


def pong(n: int) -> int:
    return ping(n - 1) if n else 1


def test_cycles_and_recursion_are_walked_once() -> None:
    @pl.app
    def fib(n: int) -> int:  # an app that names itself, through helpers that name each other
        return n if n < 2 else fib(n - 1) + ping(n)  # type: ignore[operator, no-any-return]

    assert set(fib.reach.code) == {"tests.dsl.test_reach.ping", "tests.dsl.test_reach.pong"}
    assert fib(3).key == fib(3).key


def test_a_very_large_reach_is_cut_short_with_a_warning(monkeypatch) -> None:
    monkeypatch.setattr(_reach, "MAX_REACH", 5)
    chain = "\n".join(f"def h{i}(x):\n    return h{i + 1}(x)" for i in range(20))
    source = f"import plait as pl\n{chain}\ndef h20(x):\n    return x\n@pl.app\ndef deep(x):\n    return h0(x)\n"
    module = types.ModuleType("chain_of_helpers")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    exec(compile(source, "<chain>", "exec"), vars(module))
    deep = module.deep
    assert isinstance(deep, pl.App)
    with pytest.warns(pl.MemoKeyWarning, match="beyond its first"):
        deep(1)
    assert deep.reach.truncated and len(deep.reach.code) < 20


LOCK_FREE_STATE = object()


def test_a_constant_with_no_token_is_named_in_a_warning_and_left_out() -> None:
    @pl.app
    def reads_opaque(x: int) -> int:
        return x + (LOCK_FREE_STATE is None)

    with pytest.warns(pl.MemoKeyWarning, match=r"reads_opaque.*LOCK_FREE_STATE \(a object, which has no token\)"):
        reads_opaque(1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reads_opaque(2)  # once per app


USES_TINYLIB = """
import sys
import types
sys.path.insert(0, {site!r})
import plait as pl
import plait_tinylib


@pl.app
def doubled(x):
    return plait_tinylib.double(x)


@pl.app
def independent(x):
    return x


print(doubled.reach.distributions, doubled(1).key, independent(1).key)
"""


def _install_tinylib(tmp_path: Path, version: str) -> Path:
    """pip-install a tiny distribution at ``version`` into a site-packages of the test's own."""
    name = f"plait_tinylib-{version}"
    files = {
        "plait_tinylib.py": "def double(x):\n    return 2 * x\n",
        f"{name}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: plait-tinylib\nVersion: {version}\n",
        f"{name}.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        f"{name}.dist-info/top_level.txt": "plait_tinylib\n",
    }
    files[f"{name}.dist-info/RECORD"] = "".join(f"{f},,\n" for f in [*files, f"{name}.dist-info/RECORD"])
    wheel = tmp_path / f"{name}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    site = tmp_path / f"v{version}" / "site-packages"  # a fresh install: pip --target leaves old metadata
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--upgrade", "--target", str(site), str(wheel)]
    subprocess.run(pip, check=True, capture_output=True, timeout=120)
    return site


@pytest.mark.slow
def test_an_installed_library_s_version_change_reruns_what_uses_it(tmp_path: Path) -> None:
    def keys(site: Path) -> list[str]:
        script = tmp_path / "uses.py"
        script.write_text(USES_TINYLIB.format(site=str(site)))
        out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=True, timeout=60)
        return out.stdout.split()

    site = _install_tinylib(tmp_path, "1.0")
    first = keys(site)
    assert "plait-tinylib==1.0" in first[0]
    assert keys(site) == first  # the same install: the same keys
    second = keys(_install_tinylib(tmp_path, "2.0"))
    assert "plait-tinylib==2.0" in second[0]
    assert second[1] != first[1] and second[2] == first[2]


RUN = """
import sys
import types
import plait as pl
import helpers

LOG = {log!r}


@pl.app
def work(x):
    with open(LOG, "a") as f:
        f.write(f"work {{x}}\\n")
    return helpers.scale(x) + helpers.FACTOR


@pl.app
def other(x):
    with open(LOG, "a") as f:
        f.write(f"other {{x}}\\n")
    return x


with pl.Runtime([pl.ThreadExecutor(2)], cache={db!r}) as rt:
    print(rt.run(pl.gather([work(i) for i in range(3)] + [other(i) for i in range(3)])))
"""


@pytest.mark.slow
def test_a_memo_reruns_after_a_helper_or_constant_edit_between_runs(tmp_path: Path) -> None:
    (tmp_path / "helpers.py").write_text("FACTOR = 1\n\n\ndef scale(x):\n    return x * 2\n")
    log = tmp_path / "ran.log"
    (tmp_path / "run.py").write_text(RUN.format(log=str(log), db=str(tmp_path / "memo.db")))

    def run() -> tuple[str, list[str]]:
        out = subprocess.run(
            [sys.executable, "-B", "run.py"], cwd=tmp_path, capture_output=True, text=True, check=True, timeout=60
        )
        ran = log.read_text().split("\n") if log.exists() else []
        log.unlink(missing_ok=True)
        return out.stdout.strip(), sorted(line for line in ran if line)

    assert run() == ("[1, 3, 5, 0, 1, 2]", ["other 0", "other 1", "other 2", "work 0", "work 1", "work 2"])
    assert run() == ("[1, 3, 5, 0, 1, 2]", [])
    edit(tmp_path / "helpers.py", "x * 2", "x * 3")
    assert run() == ("[1, 4, 7, 0, 1, 2]", ["work 0", "work 1", "work 2"])
    edit(tmp_path / "helpers.py", "FACTOR = 1", "FACTOR = 10")
    assert run() == ("[10, 13, 16, 0, 1, 2]", ["work 0", "work 1", "work 2"])


MODELS = """
import dataclasses


@dataclasses.dataclass(frozen=True)
class Params:
    k: int

    def scaled(self):
        return self.k * 2
"""


def test_a_method_of_an_argument_s_class_is_in_the_call_s_key(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "models_for_reach.py").write_text(MODELS)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)

    @pl.app
    def fit(p: object) -> int:
        return p.scaled()  # type: ignore[attr-defined, no-any-return]

    def key() -> bytes:
        sys.modules.pop("models_for_reach", None)
        importlib.invalidate_caches()
        return fit(importlib.import_module("models_for_reach").Params(3)).key

    before = key()
    assert key() == before
    edit(tmp_path / "models_for_reach.py", "self.k * 2", "self.k * 3")
    assert key() != before
    sys.modules.pop("models_for_reach", None)


def _lines_of(path: str) -> int:
    with open(path) as f:
        return len(f.readlines())


def test_an_app_that_reads_a_file_by_name_is_warned_that_its_key_covers_the_name_only(tmp_path: Path) -> None:
    @pl.app
    def count(path: str) -> int:
        return _lines_of(path)

    @pl.app
    def size(path: Path) -> int:
        return len(path.read_bytes())

    with pytest.warns(pl.MemoKeyWarning, match=r"app .*count uses files by name \(open \(in .*_lines_of\)\).*pl\.File"):
        count("a.txt")
    with pytest.warns(pl.MemoKeyWarning, match=r"size uses files by name \(Path\.read_bytes\)"):
        size(tmp_path)


def test_an_app_that_takes_its_files_as_pl_file_or_says_how_it_is_keyed_is_not_warned() -> None:
    def by_file(src: pl.File) -> int:
        return _lines_of(str(src))

    def by_results(results: list[pl.ShellResult]) -> int:
        return sum(_lines_of(str(r.output)) for r in results)

    def by_name(path: str) -> int:
        return _lines_of(path)

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for app in (pl.app(by_file), pl.app(by_results)):
            assert app.reach.files  # it reads by name, from a file keyed by content
            app([])
        for app in (pl.app(version="1")(by_name), pl.app(pure=True)(by_name), pl.app(cache=False)(by_name)):
            app("a.txt")
