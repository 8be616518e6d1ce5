"""Bash apps as Parsl documents them: a command line, its streams, exit code and files."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from plait.compat import parsl
from plait.compat.parsl import File, bash_app, python_app
from plait.compat.parsl.app.errors import AppTimeout, BadStdStreamFile, BashExitFailure, MissingOutputs
from plait.compat.parsl.app.futures import DataFuture


@bash_app
def echo(message: str, stdout: Any = None, stderr: Any = None) -> str:
    return f"echo {message}; echo to-err >&2"


@bash_app
def exits(code: int) -> str:
    return f"exit {code}"


@bash_app
def write(text: str, outputs: list[File] = []) -> str:  # noqa: B006 - Parsl's idiom
    return f"echo {text} > {outputs[0]}"


@bash_app
def concat(inputs: list[Any] = [], outputs: list[File] = []) -> str:  # noqa: B006
    return f"cat {' '.join(str(f) for f in inputs)} > {outputs[0]}"


@bash_app
def promise(outputs: list[File] = []) -> str:  # noqa: B006
    return "true"


@bash_app
def sleeper(pidfile: str, walltime: float | None = None) -> str:
    return f"sleep 30 & echo $! > {pidfile}; wait"


@python_app
def read(inputs: list[File] = []) -> str:  # noqa: B006
    return Path(inputs[0]).read_text()


def test_stdout_and_stderr_go_to_files(threads: parsl.DataFlowKernel, tmp_path: Path) -> None:
    out, err = tmp_path / "logs" / "out.txt", tmp_path / "err.txt"
    future = echo("hello", stdout=str(out), stderr=str(err))
    assert future.result(timeout=10) == 0
    assert out.read_text() == "hello\n"
    assert "--> executable follows <--\necho hello" in err.read_text() and err.read_text().endswith("to-err\n")
    assert future.stdout == str(out)
    echo("again", stdout=str(out)).result(timeout=10)
    assert out.read_text() == "hello\nagain\n"  # a plain path is appended to
    echo("over", stdout=(str(out), "w")).result(timeout=10)
    assert out.read_text() == "over\n"


def test_a_non_zero_exit_is_bash_exit_failure(threads: parsl.DataFlowKernel) -> None:
    error = exits(3).exception(timeout=10)
    assert isinstance(error, BashExitFailure) and error.exitcode == 3 and error.app_name == "exits"
    assert str(error) == "bash_app exits failed with unix exit code 3"
    assert exits(0).result(timeout=10) == 0


def test_a_bad_stream_is_reported(threads: parsl.DataFlowKernel, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    assert isinstance(echo("x", stdout=str(tmp_path / "file" / "below")).exception(timeout=10), BadStdStreamFile)


def test_outputs_are_data_futures_that_later_apps_wait_for(threads: parsl.DataFlowKernel, tmp_path: Path) -> None:
    a, b, both = File(str(tmp_path / "a.txt")), File(str(tmp_path / "b.txt")), File(str(tmp_path / "ab.txt"))
    first, second = write("one", outputs=[a]), write("two", outputs=[b])
    assert isinstance(first.outputs[0], DataFuture) and first.outputs[0].tid == first.tid
    joined = concat(inputs=[first.outputs[0], second.outputs[0]], outputs=[both])
    assert read(inputs=[joined.outputs[0]]).result(timeout=10) == "one\ntwo\n"
    assert joined.outputs[0].result() is both and joined.outputs[0].filepath == both.filepath


def test_an_output_the_command_did_not_write_is_missing(threads: parsl.DataFlowKernel, tmp_path: Path) -> None:
    future = promise(outputs=[File(str(tmp_path / "never.txt"))])
    error = future.exception(timeout=10)
    assert isinstance(error, MissingOutputs) and error.outputs[0].filename == "never.txt"
    assert isinstance(future.outputs[0].exception(timeout=10), MissingOutputs)


def test_walltime_kills_the_command_and_what_it_started(threads: parsl.DataFlowKernel, tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    started = time.monotonic()
    error = sleeper(str(pidfile), walltime=0.5).exception(timeout=10)
    assert isinstance(error, AppTimeout) and time.monotonic() - started < 5
    pid = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid), "the command's child outlived the task's walltime"


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_a_function_returning_no_command_fails(threads: parsl.DataFlowKernel) -> None:
    @bash_app
    def nothing() -> None:
        return None

    with pytest.raises(ValueError, match="Expected a str"):
        nothing().result(timeout=10)


@bash_app
def logged(message: str, stdout: Any = parsl.AUTO_LOGNAME, label: str | None = None) -> str:
    return f"echo {message}"


def test_auto_logname_is_a_file_per_task_in_a_fresh_run_dir(load: Any, tmp_path: Path) -> None:
    kernel = load(run_dir=str(tmp_path / "runinfo"))
    first, second = logged("one"), logged("two", label="mine")
    first.result(timeout=10), second.result(timeout=10)
    assert Path(first.stdout).read_text() == "one\n"
    assert Path(second.stdout).name == f"task_{second.tid:04d}_logged_mine.stdout"
    assert Path(kernel.run_dir) == tmp_path / "runinfo" / "000"
    kernel.cleanup()
    again = load(run_dir=str(tmp_path / "runinfo"))  # a new run does not append to the last one's logs
    assert Path(again.run_dir).name == "001"
    third = logged("three")
    third.result(timeout=10)
    assert Path(third.stdout).read_text() == "three\n" and Path(third.stdout).is_relative_to(again.run_dir)


def test_std_autopath_names_the_files(load: Any, tmp_path: Path) -> None:
    load(std_autopath=lambda record, stream: str(tmp_path / f"{record['func_name']}.{record['id']}.{stream}"))
    future = logged("hi")
    assert future.stdout == str(tmp_path / f"logged.{future.tid}.stdout")
    future.result(timeout=10)
    assert Path(future.stdout).read_text() == "hi\n"


def test_a_file_as_stdout_is_a_data_future(threads: parsl.DataFlowKernel, tmp_path: Path) -> None:
    target = File(str(tmp_path / "out.txt"))
    future = echo("to-file", stdout=target)
    assert isinstance(future.stdout, DataFuture)
    assert future.stdout.result(timeout=10) is target and Path(target).read_text() == "to-file\n"


def test_a_stream_mode_open_refuses_is_a_bad_stream(threads: parsl.DataFlowKernel, tmp_path: Path) -> None:
    error = echo("x", stdout=(str(tmp_path / "o"), "badmode")).exception(timeout=10)
    assert isinstance(error, BadStdStreamFile) and "badmode" in str(error)
    assert isinstance(echo("x", stdout=(str(tmp_path / "o"),)).exception(timeout=10), BadStdStreamFile)


def test_task_record_names_the_function(threads: parsl.DataFlowKernel) -> None:
    future = exits(0)
    assert future.task_record["func_name"] == "exits" and future.task_record["func"].__name__ == "exits"
    assert future.task_record["id"] == future.tid
