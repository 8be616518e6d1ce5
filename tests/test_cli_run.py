"""The plait command's run, report and graph, each in a fresh process as a user runs them."""

from __future__ import annotations

import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import plait as pl

FLOW = """
import plait as pl

@pl.app
def square(x: int) -> int:
    return x * x

@pl.app
def total(xs: list[int]) -> int:
    return sum(xs)

@pl.app
def boom(x: int) -> int:
    raise ValueError(f"no good: {x}")

@pl.shell
def grep_nothing() -> str:
    return "echo 'grep: nothing matched' >&2; exit 3"

result = total([square(i) for i in range(10)])
bad = boom(1)
bad_shell = grep_nothing()

def build():
    shared = square(3)
    return pl.gather(shared, total([shared, square(4)]))
"""


def plait(
    *args: str, cwd: Path, path: str | None = None, stdin: str = "", timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """The plait command in a fresh process; ``stdin`` is what it reads (a pdb session, say)."""
    env = None if path is None else {"PATH": path}
    return subprocess.run(
        [sys.executable, "-c", "from plait.cli import main; main(prog_name='plait')", *args],
        cwd=cwd,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def flow(tmp_path: Path) -> Path:
    (tmp_path / "flow.py").write_text(textwrap.dedent(FLOW))
    return tmp_path


def test_run_on_processes_with_monitor_and_cache(flow: Path) -> None:
    args = ["run", "flow.py:result", "--executor", "processes:2", "--monitor", "run.db", "--cache", "memo.db"]
    first = plait(*args, cwd=flow)
    assert (first.returncode, first.stdout) == (0, "285\n"), first.stderr
    second = plait(*args, cwd=flow)
    assert (second.returncode, second.stdout) == (0, "285\n"), second.stderr
    db = sqlite3.connect(flow / "run.db")
    per_run = db.execute("SELECT run, state, count(*) FROM attempts GROUP BY run, state ORDER BY run").fetchall()
    workers = {w for (w,) in db.execute("SELECT DISTINCT worker FROM attempts WHERE run = 1")}
    db.close()
    assert per_run == [(1, "done", 11), (2, "cached", 11)]
    assert len(workers) == 2 and all(w.startswith("processes/") for w in workers)


def test_run_a_function_or_a_module_target(flow: Path) -> None:
    built = plait("run", "flow.py:build", "--executor", "threads:2", cwd=flow)
    assert (built.returncode, built.stdout) == (0, "[9, 25]\n"), built.stderr
    package = flow / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    shutil.copy(flow / "flow.py", package / "work.py")
    by_module = plait("run", "pkg.work:result", "--executor", "threads", cwd=flow)
    assert (by_module.returncode, by_module.stdout) == (0, "285\n"), by_module.stderr


@pytest.mark.parametrize("executor", ["threads:1", "processes:1"])
def test_a_failing_run_shows_the_users_frames_and_the_summary_and_exits_1(flow: Path, executor: str) -> None:
    failed = plait("run", "flow.py:bad", "--executor", executor, cwd=flow)
    assert failed.returncode == 1
    assert failed.stderr.splitlines() == [
        "Traceback (most recent call last):",
        f'  File "{flow / "flow.py"}", line 14, in boom',
        '    raise ValueError(f"no good: {x}")',
        "ValueError: no good: 1",
        "Error: flow.py:bad failed: ValueError: no good: 1",
    ], failed.stderr


def test_a_failed_shell_command_is_shown_once_with_its_stderr(flow: Path) -> None:
    failed = plait("run", "flow.py:bad_shell", "--executor", "threads:1", cwd=flow)
    assert failed.returncode == 1
    assert failed.stderr.splitlines().count("grep: nothing matched") == 1, failed.stderr  # the stderr tail
    assert failed.stderr.startswith(
        "Error: flow.py:bad_shell failed: ShellError: grep_nothing: command exited with code 3"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["flow.py"], "expected path.py:name or package.module:name"),
        (["nowhere.py:result"], "no such file: nowhere.py"),
        (["flow.py:nothing"], "flow.py has no 'nothing'"),
        (["flow.py:reslt"], "flow.py has no 'reslt'; did you mean 'result'?"),
        (["flow.py:result.x"], "flow.py has no 'result.x'"),
        ([".py:x"], "cannot import .py: there is no such module"),
        (["flow.py:square"], "flow.py:square is an app; name an Expr"),
        (["no_such_module:x"], "cannot import no_such_module"),
        (["flow.py:result", "--executor", "gpus:2"], "'gpus:2': expected processes[:N] or threads[:N]"),
        (["flow.py:result", "--executor", "threads:0"], "'threads:0'"),
    ],
)
def test_run_refuses_bad_input_by_name(flow: Path, args: list[str], message: str) -> None:
    refused = plait("run", *args, cwd=flow)
    assert refused.returncode == 2
    assert message in refused.stderr and "Traceback" not in refused.stderr, refused.stderr


def test_run_refuses_a_directory_named_as_its_file(flow: Path) -> None:
    (flow / "steps.py").mkdir()
    refused = plait("run", "steps.py:result", cwd=flow)
    assert refused.returncode == 2
    assert "Invalid value for TARGET: not a file: steps.py" in refused.stderr, refused.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["graph", "flow.py:result", "-o", "missing/graph.dot"],
        ["graph", "flow.py:result", "-o", "missing/graph.svg"],  # by Graphviz's dot, or as .dot without it
        ["report", "run.db", "-o", "missing/report.html"],
    ],
    ids=["graph-dot", "graph-svg", "report"],
)
def test_an_output_file_that_cannot_be_written_is_named_in_one_line(flow: Path, args: list[str]) -> None:
    with pl.Runtime([pl.ThreadExecutor(1)], monitor=flow / "run.db") as runtime:
        runtime.run(pl.pure(1))
    refused = plait(*args, cwd=flow)
    assert refused.returncode == 1, refused.stderr
    assert "Traceback" not in refused.stderr, refused.stderr
    last = refused.stderr.splitlines()[-1]
    assert last.startswith("Error: ") and "missing/" in last, last  # the file it could not write


@pytest.mark.parametrize(
    ("source", "target", "line", "error"),
    [
        ("import plait\nraise RuntimeError('at import')\n", "broken.py:x", 2, "RuntimeError: at import"),
        ("import plait\nimport no_such_module_here\n", "broken.py:x", 2, "No module named 'no_such_module_here'"),
        ("import plait\n\ndef build():\n    return {}['key']\n", "broken.py:build", 4, "KeyError: 'key'"),
        ("import plait\nraise RuntimeError('at import')\n", "broken:x", 2, "RuntimeError: at import"),
    ],
    ids=["raises-at-import", "imports-a-missing-module", "builder-raises", "module-raises-at-import"],
)
def test_an_error_in_the_targets_own_code_shows_its_line_not_the_commands_frames(
    tmp_path: Path, source: str, target: str, line: int, error: str
) -> None:
    (tmp_path / "broken.py").write_text(source)
    failed = plait("run", target, cwd=tmp_path)
    assert failed.returncode == 1, failed.stderr
    assert f'broken.py", line {line}, in ' in failed.stderr and error in failed.stderr, failed.stderr
    assert failed.stderr.count('File "') == 1, failed.stderr  # click, importlib and plait are not the user's


def test_a_syntax_error_in_the_target_names_its_line(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("import plait\n\ndef build(:\n    pass\n")
    failed = plait("run", "broken.py:build", cwd=tmp_path)
    assert failed.returncode == 1, failed.stderr
    assert 'broken.py", line 3' in failed.stderr and "SyntaxError" in failed.stderr, failed.stderr
    assert "click" not in failed.stderr and "/plait/" not in failed.stderr, failed.stderr


RUNS_AS_IMPORTED = """
import plait as pl

@pl.app
def double(x: int) -> int:
    return 2 * x

with pl.Runtime(executors=[pl.ProcessExecutor(1)]) as rt:  # no __main__ guard
    print("as imported:", rt.run(double(1)))

result = double(21)
"""


def test_a_file_that_runs_a_workflow_as_it_is_imported_runs_it_once(tmp_path: Path) -> None:
    # Its workers imported it by name, ran its workflow again, and so on down: a hang,
    # with ever more processes.
    (tmp_path / "eager.py").write_text(RUNS_AS_IMPORTED)
    ran = plait("run", "eager.py:result", "--executor", "processes:1", cwd=tmp_path, timeout=60)
    assert (ran.returncode, ran.stdout) == (0, "as imported: 2\n42\n"), ran.stderr


def test_report_writes_the_page_of_the_last_run(flow: Path) -> None:
    assert plait("run", "flow.py:bad", "--executor", "threads", "--monitor", "run.db", cwd=flow).returncode == 1
    done = plait("report", "run.db", "-o", "page.html", cwd=flow)
    assert (done.returncode, done.stdout) == (0, "wrote page.html: run 1, 1 tasks, 1 failed\n"), done.stderr
    assert "ValueError: no good: 1" in (flow / "page.html").read_text()
    missing = plait("report", "other.db", cwd=flow)
    assert missing.returncode == 1
    assert "'other.db' is not a file" in missing.stderr


def test_graph_prints_dot_or_draws_svg(flow: Path) -> None:
    printed = plait("graph", "flow.py:build", cwd=flow)
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout.startswith("digraph build {")
    assert printed.stdout.count('label="square(3)"') == 1  # shared: drawn once
    no_dot = plait("graph", "flow.py:build", "-o", "g.svg", cwd=flow, path=str(flow / "empty-bin"))
    assert no_dot.returncode == 0, no_dot.stderr
    assert "writing DOT text to g.dot instead" in no_dot.stderr
    assert (flow / "g.dot").read_text() == printed.stdout
    if shutil.which("dot") is None:
        pytest.skip("graphviz is not installed here (.ci/run installs it); the DOT fallback was checked")
    drawn = plait("graph", "flow.py:build", "-o", "g.svg", cwd=flow)
    assert drawn.returncode == 0, drawn.stderr
    assert "<svg" in (flow / "g.svg").read_text()


@pytest.mark.parametrize(
    ("command", "options"),
    [
        ("run", ["--executor", "--cache", "--monitor", "--progress"]),
        ("report", ["--output", "--run"]),
        ("graph", ["--output"]),
    ],
)
def test_help(command: str, options: list[str], tmp_path: Path) -> None:
    shown = plait(command, "--help", cwd=tmp_path)
    assert shown.returncode == 0
    assert shown.stdout.startswith(f"Usage: plait {command} [OPTIONS]")
    assert all(option in shown.stdout for option in options)


def test_python_dash_m_plait_is_the_plait_command(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "plait", "run", "--help"]
    shown = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("Usage: plait run [OPTIONS]")


SLEEPER = """
import time
from pathlib import Path
import plait as pl

@pl.app
def sleeper() -> int:
    Path("started").touch()
    time.sleep(60)
    return 1

result = sleeper()
"""


def test_ctrl_c_stops_a_run_on_threads_at_once_though_its_task_runs_on(tmp_path: Path) -> None:
    (tmp_path / "sleeper.py").write_text(SLEEPER)
    command = [sys.executable, "-m", "plait", "run", "sleeper.py:result", "--executor", "threads:1", "--no-progress"]
    run = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not (tmp_path / "started").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        interrupted = time.monotonic()
        run.send_signal(signal.SIGINT)
        _, stderr = run.communicate(timeout=30)
        # A thread cannot be stopped: the command must not wait the task's 60 s for it.
        assert time.monotonic() - interrupted < 10, stderr
        assert run.returncode != 0 and "Aborted" in stderr
    finally:
        run.kill()
        run.wait()
