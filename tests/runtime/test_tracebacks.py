"""A task's error names the user's file and line, without plait's own frames around it."""

from __future__ import annotations

import pickle
import sqlite3
import subprocess
import sys
import textwrap
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import plait as pl
from tests.runtime import failing_apps
from tests.tracebacks import raises_at_its_line

SOURCE_LINE = 'raise ValueError(f"failed on purpose: {doubled}")'


def shown(error: BaseException) -> str:
    return "".join(traceback.format_exception(error))


@pytest.mark.parametrize("executor", [pl.ProcessExecutor(1), pl.ThreadExecutor(1)], ids=["processes", "threads"])
def test_the_error_of_an_app_in_a_module_names_its_file_and_line(executor: pl.Executor) -> None:
    with pl.Runtime(executors=[executor]) as rt, pytest.raises(ValueError) as caught:
        rt.run(failing_apps.fail_here(2), timeout=60)
    text = shown(caught.value)
    assert f'{failing_apps.__file__}", line 11, in fail_here' in text and SOURCE_LINE in text, text
    assert "<dynamic-code>" not in text
    assert "/plait/" not in text and "concurrent/futures" not in text, text


@pytest.mark.parametrize("executor", [pl.ProcessExecutor(1), pl.ThreadExecutor(1)], ids=["processes", "threads"])
def test_an_app_that_calls_sys_exit_fails_naming_itself_and_does_not_end_the_run(executor: pl.Executor) -> None:
    with pl.Runtime(executors=[executor]) as rt:
        with pytest.raises(RuntimeError, match=r"exit_four called sys.exit\(4\)") as caught:
            rt.run(failing_apps.exit_four(), timeout=60)
        assert "sys.exit(4)  # the user's line" in shown(caught.value)
        assert rt.run(failing_apps.fail_here(1).recover(lambda _: "still running"), timeout=60) == "still running"


@pytest.mark.parametrize("executor", [pl.ProcessExecutor(1), pl.ThreadExecutor(1)], ids=["processes", "threads"])
def test_an_app_that_returns_another_apps_call_fails_naming_both_and_keeps_nothing(
    executor: pl.Executor, tmp_path: Path
) -> None:
    """Parsl's habit of calling an app inside an app: the value was the Expr itself, memoized as a result."""
    with pl.Runtime(executors=[executor], cache=tmp_path / "memo.db") as rt:
        with pytest.raises(TypeError, match=r"app calls_an_app returned an Expr \(double\(3\)\), not a value"):
            rt.run(failing_apps.calls_an_app(3), timeout=60)
        with pytest.raises(TypeError, match=r"app calls_apps returned an Expr \(double\(1\)\)"):
            rt.run(failing_apps.calls_apps([1, 2]), timeout=60)
    with pl.Runtime(executors=[pl.ThreadExecutor(1)], cache=tmp_path / "memo.db") as rt:
        assert rt.run(failing_apps.double(3)) == 6
        with pytest.raises(TypeError, match="returned an Expr"):  # not served from the memo
            rt.run(failing_apps.calls_an_app(3), timeout=60)


@pl.shell
def exit_three() -> str:
    return "echo the reason >&2; exit 3"


@pl.app
def plus_one(x: int) -> int:
    return x + 1


@pl.app(executor="elsewhere")
def placed_nowhere(x: int) -> int:
    return x


def call_line(marker: str) -> str:
    """How a traceback shows the line of this file that holds ``marker``."""
    lines = Path(__file__).read_text().splitlines()
    number = next(i for i, line in enumerate(lines, 1) if marker in line and "call_line" not in line)
    return f'{__file__}", line {number}, in'


def test_an_error_plait_raises_shows_the_users_call_and_no_plait_frames() -> None:
    with pl.Runtime(executors=[pl.ThreadExecutor(1)]) as rt:
        with pytest.raises(pl.DependencyError) as dependency:
            rt.run(plus_one(failing_apps.fail_here(2)), timeout=60)  # the dependent's call
        with pytest.raises(pl.ShellError) as shell:
            rt.run(exit_three(), timeout=60)  # the shell app's call
        with pytest.raises(ValueError, match="executor 'elsewhere'") as unknown:
            rt.run(placed_nowhere(1))  # the unknown executor's call
    for error, marker in [(dependency, "the dependent's"), (shell, "the shell app's"), (unknown, "the unknown")]:
        text = shown(error.value)
        assert call_line(marker) in text, text
        assert "/plait/" not in text and "concurrent/futures" not in text, text
    assert f'{failing_apps.__file__}", line 11, in fail_here' in shown(dependency.value)
    assert "the reason" in shown(shell.value)


def test_an_app_of_a_module_is_sent_by_reference_with_a_copy_for_workers_that_cannot_import_it(
    tmp_path: Path,
) -> None:
    from plait.backends._functions import dumps_function_payload

    payload = dumps_function_payload(failing_apps.fail_here.fn)
    here = pickle.loads(payload)
    assert here is failing_apps.fail_here.fn  # importable: the module's own function
    # A worker where the module is not importable gets the by-value copy, file name kept.
    (tmp_path / "payload").write_bytes(payload)
    assert load_elsewhere(tmp_path) == failing_apps.__file__
    # A worker that imports another version of the module (an edited file, another host).
    other = tmp_path / "tests" / "runtime"
    other.mkdir(parents=True)
    for package in (other.parent, other):
        (package / "__init__.py").write_text("")
    edited = Path(failing_apps.__file__).read_text().replace("failed on purpose", "another version")
    (other / "failing_apps.py").write_text(edited)
    assert load_elsewhere(tmp_path, tmp_path) == failing_apps.__file__


def load_elsewhere(tmp_path: Path, *path: Path) -> str:
    """The file name of the function unpickled from tmp_path/payload in a fresh process
    whose path has plait and ``path``, but not this test package."""
    probe = "import pickle, sys; fn = pickle.loads(open(sys.argv[1], 'rb').read()); print(fn.__code__.co_filename)"
    out = subprocess.run(
        [sys.executable, "-c", probe, str(tmp_path / "payload")],
        cwd=tmp_path,
        env={"PYTHONPATH": ":".join(map(str, [Path(pl.__file__).parents[1], *path]))},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return out.stdout.strip()


SCRIPT = """
import plait as pl

@pl.app
def fail_in_script(x: int) -> int:
    raise ValueError(f"script failed: {x}")

if __name__ == "__main__":
    with pl.Runtime(executors=[pl.ProcessExecutor(1)]) as rt:
        rt.run(fail_in_script(1))
"""


def run_script(tmp_path: Path, **env: str) -> str:
    script = tmp_path / "workflow.py"
    script.write_text(textwrap.dedent(SCRIPT))
    path = str(Path(pl.__file__).parents[1])
    out = subprocess.run(
        [sys.executable, str(script)],
        env={"PYTHONPATH": path, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 1
    return out.stderr


def test_an_app_of_a_main_script_shows_its_script_line_and_no_plait_frames(tmp_path: Path) -> None:
    stderr = run_script(tmp_path)
    assert f'{tmp_path / "workflow.py"}", line 6, in fail_in_script' in stderr, stderr
    assert 'raise ValueError(f"script failed: {x}")' in stderr
    assert "/plait/" not in stderr, stderr
    assert stderr.count("File ") == 2  # the script's call of run, and the task's line


def test_plait_traceback_full_keeps_plait_frames(tmp_path: Path) -> None:
    stderr = run_script(tmp_path, PLAIT_TRACEBACK="full")
    assert "plait/backends/_worker.py" in stderr and "plait/runtime/_runtime.py" in stderr, stderr
    assert 'workflow.py", line 6, in fail_in_script' in stderr


def test_the_monitor_records_the_users_frames(tmp_path: Path) -> None:
    with pl.Runtime(executors=[pl.ProcessExecutor(1)], monitor=tmp_path / "run.db") as rt, pytest.raises(ValueError):
        rt.run(failing_apps.fail_here(1), timeout=60)
    db = sqlite3.connect(tmp_path / "run.db")
    (error,) = db.execute("SELECT error FROM attempts WHERE state = 'failed'").fetchone()
    db.close()
    assert error.splitlines() == [
        "Traceback (most recent call last):",
        f'  File "{failing_apps.__file__}", line 11, in fail_here',
        f"    {SOURCE_LINE}",
        "ValueError: failed on purpose: 2",
    ]


def test_a_wrong_argument_to_an_app_points_at_the_users_call_alone() -> None:
    add = pl.app(lambda x, y: x + y)
    with pytest.raises(TypeError, match="unexpected keyword argument 'z'") as caught:
        add(1, z=3)  # the user's line
    frames = traceback.extract_tb(caught.value.__traceback__)
    assert [frame.line for frame in frames] == ["add(1, z=3)  # the user's line"], frames


# A wrong option to an executor, a provider or a runtime: the user's line (a lambda here), the
# error, and what its message says.
WRONG_OPTIONS: list[tuple[Callable[[], Any], type[Exception], str]] = [
    (lambda: pl.ProcessExecutor(workers="2"), ValueError, r"ProcessExecutor\(workers='2'\): need a whole number"),
    (lambda: pl.ProcessExecutor(2.5), ValueError, r"ProcessExecutor\(workers=2\.5\): need a whole number"),
    (lambda: pl.ThreadExecutor(-1), ValueError, r"ThreadExecutor\(workers=-1\): need a whole number"),
    (lambda: pl.LocalProvider(workers=True), ValueError, r"LocalProvider\(workers=True\): need a whole number"),
    (lambda: pl.ZMQExecutor(provider=4), TypeError, r"ZMQExecutor\('zmq'\): provider=4 is not a provider"),
    (lambda: pl.ZMQExecutor(heartbeat_period=0), ValueError, r"need 0 < heartbeat_period < heartbeat_threshold"),
    (lambda: pl.Runtime([pl.ThreadExecutor(1)], lost_retries=-1), ValueError, r"Runtime\(lost_retries=-1\)"),
    (lambda: pl.Runtime([pl.ThreadExecutor]), TypeError, r"is the class ThreadExecutor: make one"),
    (lambda: pl.Runtime([pl.ThreadExecutor(1)], cache=3), TypeError, r"Runtime\(cache=\.\.\.\) takes a file path"),
    (lambda: pl.Runtime([pl.ThreadExecutor(1)], progress="yes"), TypeError, r"Runtime\(progress='yes'\) takes True"),
    (lambda: pl.Runtime([pl.ThreadExecutor(1)], progress=0), TypeError, r"Runtime\(progress=0\) takes True"),
    (lambda: pl.Runtime([pl.ThreadExecutor(1)], retries="2"), TypeError, r"Runtime\(retries='2'\): retries must"),
    (lambda: pl.Runtime([pl.ThreadExecutor(1)], retries=None), TypeError, r"Runtime\(retries=None\): give a count"),
    (
        lambda: pl.Runtime([pl.ThreadExecutor(1), pl.ThreadExecutor(2)]),
        ValueError,
        r"Runtime\(executors=\.\.\.\): 2 executors are labelled 'threads'.*label=",
    ),
    (
        lambda: pl.Runtime(executor=[]),
        TypeError,
        r"unexpected keyword argument 'executor'; did you mean 'executors'\?$",
    ),
    (lambda: pl.Runtime(monitoring="run.db"), TypeError, r"'monitoring'; did you mean 'monitor'\?$"),
    (lambda: pl.Runtime(memo="m.db"), TypeError, r"'memo'; it takes executors, retries, lost_retries, cache, monitor,"),
    (lambda: pl.ThreadExecutor(worker=1), TypeError, r"'worker'; did you mean 'workers'\?$"),
    (lambda: pl.run(pl.pure(1), timout=3), TypeError, r"'timout'; did you mean 'timeout'\?$"),
    (lambda: pl.gather(pl.pure(1), x=3), TypeError, r"'x'; it takes no keywords$"),
    (lambda: pl.run(3), TypeError, r"^run takes an Expr \(the result of calling an app\), not int$"),
    (lambda: shut_down().submit(pl.pure(1)), RuntimeError, r"this Runtime has been shut down"),
    (lambda: shut_down().submit(plus_one), TypeError, r"submit takes an Expr"),
]


def shut_down() -> pl.Runtime:
    runtime = pl.Runtime([pl.ThreadExecutor(1)])
    runtime.shutdown()
    return runtime


@pytest.mark.parametrize(
    ("make", "error", "message"), WRONG_OPTIONS, ids=[f"case{i}" for i in range(len(WRONG_OPTIONS))]
)
def test_a_wrong_option_to_an_executor_or_a_runtime_is_named_at_the_users_line_alone(
    make: Callable[[], Any], error: type[Exception], message: str
) -> None:
    raises_at_its_line(make, error, message)
