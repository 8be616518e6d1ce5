"""@pl.shell: commands run on real worker processes, their output, errors, files, timeouts and the memo."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

import plait as pl


@pytest.fixture(scope="module")
def rt() -> Iterator[pl.Runtime]:
    with pl.Runtime([pl.ProcessExecutor(2)], progress=False) as runtime:
        yield runtime


@pl.shell
def echo_argv(*words: str) -> list[str]:
    return ["printf", "%s\\n", *words]


@pl.shell
def pipeline(n: int) -> str:
    return f"seq {n} | sort -rn | head -n 2"


@pl.shell
def fail(lines: int) -> str:
    return f"for i in $(seq {lines}); do echo err-$i >&2; done; echo out; exit 3"


def test_a_str_command_runs_in_a_shell(rt: pl.Runtime) -> None:
    result = rt.run(pipeline(10), timeout=30)
    assert isinstance(result, pl.ShellResult)
    assert (result.returncode, result.stdout, result.stderr) == (0, "10\n9\n", "")
    assert result.command == "seq 10 | sort -rn | head -n 2"


def test_list_arguments_are_never_re_split(rt: pl.Runtime, tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    words = ["a b", "it's", '"quoted"', "$HOME", "; touch " + str(canary), "`id`", "*", "x\ty"]
    result = rt.run(echo_argv(*words), timeout=30)
    assert result.stdout == "".join(w + "\n" for w in words)
    assert not canary.exists()
    assert result.command == ("printf", "%s\\n", *words)


def test_a_failing_command_raises_shell_error_with_the_tail_of_stderr(rt: pl.Runtime) -> None:
    with pytest.raises(pl.ShellError) as info:
        rt.run(fail(50), timeout=30)
    error = info.value
    assert (error.app, error.returncode, error.command) == ("fail", 3, fail.fn.fn(50))  # type: ignore[attr-defined]
    lines = error.stderr_tail.splitlines()
    assert lines == [f"err-{i}" for i in range(31, 51)]
    text = str(error)
    assert "fail: command exited with code 3" in text and "err-50" in text and "err-30\n" not in text


def test_a_command_killed_by_a_signal_says_so(rt: pl.Runtime) -> None:
    @pl.shell
    def suicide() -> str:
        return "echo going >&2; kill -TERM $$"

    with pytest.raises(pl.ShellError, match=r"suicide: command was killed by signal 15: .*\n.*\ngoing") as info:
        rt.run(suicide(), timeout=30)
    assert info.value.returncode == -15


def test_stderr_to_a_file_still_shows_its_tail_on_failure(rt: pl.Runtime, tmp_path: Path) -> None:
    log = tmp_path / "err.log"

    @pl.shell(stderr=log)
    def noisy() -> str:
        return "echo first >&2; echo last >&2; exit 1"

    with pytest.raises(pl.ShellError, match="first\nlast"):
        rt.run(noisy(), timeout=30)
    assert log.read_text() == "first\nlast\n"


def test_stdout_to_a_file_is_a_declared_output(rt: pl.Runtime, tmp_path: Path) -> None:
    out = pl.File(tmp_path / "out.txt")

    @pl.shell(stdout=out)
    def numbers() -> list[str]:
        return ["seq", "3"]

    result = rt.run(numbers(), timeout=30)
    assert result.stdout is None and result.stderr == ""
    assert result.output == out and out.read_text() == "1\n2\n3\n"


def test_cwd_and_env(rt: pl.Runtime, tmp_path: Path) -> None:
    @pl.shell(cwd=tmp_path, env={"GREETING": "hello there"})
    def where() -> str:
        return 'pwd; echo "$GREETING"; echo "$PATH" | grep -c /'

    assert rt.run(where(), timeout=30).stdout == f"{tmp_path}\nhello there\n1\n"


def test_a_relative_output_path_is_where_the_command_writes_it(rt: pl.Runtime, tmp_path: Path) -> None:
    @pl.shell(cwd=tmp_path, outputs=["out"])
    def touch(out: str) -> list[str]:
        return ["touch", out]

    assert rt.run(touch("made.txt"), timeout=30).output == pl.File(tmp_path / "made.txt")


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (42, "must return the command as a str or a non-empty list of str, not int 42"),
        ([], "must return the command as a str or a non-empty list of str, not list"),
        (["echo", 3], "item 1 of the command is a int"),
        ("  ", "the command is empty"),
    ],
)
def test_a_command_of_the_wrong_type_is_a_clear_error(rt: pl.Runtime, command: Any, message: str) -> None:
    @pl.shell(version="1")
    def bad(c: Any) -> Any:
        return c

    with pytest.raises((TypeError, ValueError)) as info:
        rt.run(bad(command), timeout=30)
    assert "bad" in str(info.value) and message in str(info.value)


def test_a_missing_program_is_named(rt: pl.Runtime) -> None:
    @pl.shell
    def ghost() -> list[str]:
        return ["no-such-program-plait", "x"]

    with pytest.raises(FileNotFoundError, match="ghost: cannot run no-such-program-plait x: no-such-program-plait"):
        rt.run(ghost(), timeout=30)


def test_a_declared_output_that_was_not_written_is_an_error(rt: pl.Runtime, tmp_path: Path) -> None:
    @pl.shell(outputs=["out"])
    def lazy(out: pl.File) -> str:
        return "true"

    target = tmp_path / "never.txt"
    with pytest.raises(FileNotFoundError, match=f"lazy: declared output {target} does not exist"):
        rt.run(lazy(pl.File(target)), timeout=30)


@pl.shell(outputs=["out"])
def slow_write(text: str, out: pl.File) -> str:
    return f"sleep 0.5; printf %s '{text}' > {out}.tmp; mv {out}.tmp {out}"


@pl.shell
def cat(prev: pl.ShellResult) -> list[str]:
    return ["cat", str(prev.output)]


def test_downstream_apps_wait_for_the_files_they_receive(rt: pl.Runtime, tmp_path: Path) -> None:
    outs = [pl.File(tmp_path / f"part{i}") for i in range(2)]
    results = rt.run(pl.gather(cat(slow_write(f"text {i}", out)) for i, out in enumerate(outs)), timeout=30)
    assert [r.stdout for r in results] == ["text 0", "text 1"]


def test_a_timeout_kills_the_command_and_its_children(rt: pl.Runtime, tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"

    @pl.shell(timeout=3)  # room for a loaded machine to start the command before the deadline
    def hang() -> str:
        return f"sleep 60 & echo $! > {pidfile}; wait"

    with pytest.raises(pl.TaskTimeout):
        rt.run(hang(), timeout=30)
    pid = int(pidfile.read_text())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.05)
    assert not _alive(pid), f"sleep {pid} outlived its task"
    assert rt.run(pipeline(3), timeout=30).stdout == "3\n2\n"  # the worker was replaced


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_paths_outside_the_allowed_directory_are_refused(tmp_path: Path) -> None:
    inside, outside = tmp_path / "project", tmp_path / "elsewhere"
    inside.mkdir()
    outside.mkdir()
    (inside / "a.txt").write_text("a")
    (outside / "b.txt").write_text("b")

    @pl.shell(root=inside, outputs=["out"])
    def copy(src: pl.File, out: str) -> list[str]:
        return ["cp", str(src), out]

    copy(pl.File(inside / "a.txt"), str(inside / "c.txt"))  # fine
    with pytest.raises(PermissionError, match=f"copy: argument 'src' is {outside}/b.txt, outside the allowed"):
        copy(pl.File(outside / "b.txt"), str(inside / "c.txt"))
    with pytest.raises(PermissionError, match=r"copy: output argument 'out' is .*elsewhere/c.txt, outside"):
        copy(pl.File(inside / "a.txt"), str(outside / "c.txt"))
    with pytest.raises(PermissionError, match=r"copy: argument 'src' is .*, outside the allowed"):
        copy(pl.File(inside / ".." / "elsewhere" / "b.txt"), str(inside / "c.txt"))

    @pl.shell(root=inside, cwd=inside, outputs=["out"])
    def make(out: str) -> list[str]:
        return ["touch", out]

    make("relative.txt")  # under cwd, so inside, wherever the driver runs
    with pytest.raises(PermissionError, match=r"make: output argument 'out' is .*elsewhere/x, outside"):
        make("../elsewhere/x")
    with pytest.raises(PermissionError, match=r"run: cwd is .*elsewhere, outside the allowed directory"):

        @pl.shell(root=inside, cwd=outside)
        def run() -> str:
            return "true"


def test_files_received_from_other_apps_are_checked_on_the_worker(rt: pl.Runtime, tmp_path: Path) -> None:
    inside, outside = tmp_path / "project", tmp_path / "elsewhere"
    inside.mkdir()
    outside.mkdir()

    @pl.shell(root=inside)
    def show(prev: pl.ShellResult) -> list[str]:
        return ["cat", str(prev.output)]

    produced = slow_write("x", pl.File(outside / "made.txt"))
    with pytest.raises(PermissionError, match=r"show: argument 'prev'\.outputs\[0\] is .*elsewhere/made.txt, outside"):
        rt.run(show(produced), timeout=30)
    assert rt.run(show(slow_write("y", pl.File(inside / "made.txt"))), timeout=30).stdout == "y"


def test_bad_options_are_named() -> None:
    with pytest.raises(TypeError, match=r"shell app \S*\.f: env must be a mapping of str to str"):

        @pl.shell(env={"A": 1})
        def f() -> str:
            return "true"

    with pytest.raises(TypeError, match=r"shell app \S*\.g: stdout must be a path, a pl.File or None"):

        @pl.shell(stdout=3)  # type: ignore[call-overload]
        def g() -> str:
            return "true"


def _from_source(source: str, **options: Any) -> Any:
    namespace: dict[str, Any] = {"__name__": "tests.dsl.generated_shell", "pl": pl}
    exec(compile(textwrap.dedent(source), "<edited>", "exec"), namespace)
    return pl.shell(**options)(namespace["f"]) if options else pl.shell(namespace["f"])


def test_the_key_covers_the_command_function_and_the_options(tmp_path: Path) -> None:
    source = "def f(x):\n    return ['echo', {!r}, x]\n"
    base = _from_source(source.format("a"))("1").key
    assert _from_source(source.format("a"))("1").key == base
    assert _from_source(source.format("b"))("1").key != base
    assert _from_source(source.format("a"), cwd=tmp_path)("1").key != base
    assert _from_source(source.format("a"), env={"A": "1"})("1").key != base


class _Events:
    def __init__(self) -> None:
        self.log: list[tuple[str, str]] = []

    def task_event(self, state: str, task_id: int, name: str, key: bytes, **info: Any) -> None:
        if state in ("done", "cached"):
            self.log.append((state, name))

    def close(self) -> None:
        pass


@pl.shell(outputs=["out"])
def sort_into(src: pl.File, out: pl.File) -> list[str]:
    return ["sort", "-o", str(out), str(src)]


@pl.shell
def count_lines(prev: pl.ShellResult) -> str:
    return f"wc -l < {prev.output}"


@pl.app
def add(*counts: pl.ShellResult) -> int:
    return sum(int(c.stdout or 0) for c in counts)


def test_editing_an_input_reruns_what_depends_on_it_and_nothing_else(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("3\n1\n2\n")
    (tmp_path / "b.txt").write_text("y\nx\n")

    def workflow() -> pl.Expr[int]:
        counts = [
            count_lines(sort_into(pl.File(tmp_path / f"{n}.txt"), pl.File(tmp_path / f"{n}.sorted"))) for n in "ab"
        ]
        return add(*counts)

    def run() -> tuple[int, list[tuple[str, str]]]:
        events = _Events()
        with pl.Runtime([pl.ProcessExecutor(2)], cache=tmp_path / "memo.db", monitor=events, progress=False) as rt:
            return rt.run(workflow(), timeout=60), sorted(events.log)

    everything = ["sort_into", "sort_into", "count_lines", "count_lines", "add"]
    assert run() == (5, sorted(("done", name) for name in everything))
    assert run() == (5, sorted(("cached", name) for name in everything))
    (tmp_path / "a.txt").write_text("3\n1\n2\n4\n")
    total, events = run()
    assert total == 6
    rerun, served = ["sort_into", "count_lines", "add"], ["sort_into", "count_lines"]
    assert events == sorted([("done", name) for name in rerun] + [("cached", name) for name in served])
    assert (tmp_path / "a.sorted").read_text() == "1\n2\n3\n4\n"


def test_the_example_pipeline_serves_its_second_run_from_the_memo(tmp_path: Path) -> None:
    example = Path(__file__).parents[2] / "examples" / "shell_pipeline.py"
    command = [sys.executable, str(example), str(tmp_path)]
    done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "first run: 10 tasks ran, 0 served from the memo" in lines
    assert "second run: 0 tasks ran, 10 served from the memo" in lines
    assert "after editing params-1.txt: 4 tasks ran, 6 served from the memo" in lines
