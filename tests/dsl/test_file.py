"""pl.File: inputs keyed by content (or stat), outputs keyed by path and checked after the task."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

import plait as pl


@pl.app
def size(f: pl.File) -> int:
    return len(Path(f).read_bytes())


@pl.app(outputs=["out"])
def write(text: str, out: pl.File) -> pl.File:
    Path(out).write_text(text)
    return out


@pl.app(outputs=["out"])
def forget_to_write(out: pl.File) -> None:
    return None


def test_a_file_is_its_absolute_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    f = pl.File("sub/../data.txt")
    assert f.path == str(tmp_path / "data.txt") == str(f) == os.fspath(f)
    assert f.name == "data.txt"
    assert pl.File(Path("data.txt")) == f


def test_bad_file_arguments_are_refused() -> None:
    with pytest.raises(TypeError, match="File takes a path"):
        pl.File(3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"File takes a path or URL, not an Expr \(<Expr pure.*pass the Expr to"):
        pl.File(pl.pure("data.txt"))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="hash"):
        pl.File("x", hash="md5")  # type: ignore[arg-type]


def test_the_key_follows_the_content(tmp_path: Path) -> None:
    data = tmp_path / "data.txt"
    data.write_text("one")
    first = size(pl.File(data)).key
    assert size(pl.File(data)).key == first
    data.write_text("two")
    assert size(pl.File(data)).key != first
    data.write_text("one")  # same content again, new mtime: the same work
    assert size(pl.File(data)).key == first


def test_the_key_includes_the_path(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_text("same")
    b.write_text("same")
    assert size(pl.File(a)).key != size(pl.File(b)).key


def test_stat_mode_follows_size_and_mtime_not_content(tmp_path: Path) -> None:
    data = tmp_path / "data.txt"
    data.write_text("one")
    os.utime(data, ns=(1_000_000_000, 1_000_000_000))
    first = size(pl.File(data, hash="stat")).key
    data.write_text("two")  # same size, new content ...
    os.utime(data, ns=(1_000_000_000, 1_000_000_000))  # ... and the old mtime: stat cannot tell
    assert size(pl.File(data, hash="stat")).key == first
    os.utime(data, ns=(2_000_000_000, 2_000_000_000))
    assert size(pl.File(data, hash="stat")).key != first
    assert size(pl.File(data, hash="stat")).key != size(pl.File(data)).key


def test_a_missing_input_is_an_error_when_the_call_is_built(tmp_path: Path) -> None:
    missing = tmp_path / "nope.txt"
    with pytest.raises(FileNotFoundError) as info:
        size(pl.File(missing))
    message = str(info.value)
    assert "size()" in message and "'f'" in message and str(missing) in message


def test_a_directory_is_not_an_input_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not a regular file"):
        size(pl.File(tmp_path))


def test_a_file_nested_in_a_list_is_keyed_by_content(tmp_path: Path) -> None:
    @pl.app
    def total(files: list[pl.File]) -> int:
        return sum(len(Path(f).read_bytes()) for f in files)

    a = tmp_path / "a"
    a.write_text("x")
    before = total([pl.File(a)]).key
    a.write_text("xy")
    assert total([pl.File(a)]).key != before
    a.unlink()
    with pytest.raises(FileNotFoundError, match=r"total\(\): argument 'files'"):
        total([pl.File(a)])


def test_an_output_argument_is_keyed_by_path_and_need_not_exist(tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    assert write("hi", pl.File(out)).key == write("hi", str(out)).key
    assert write("hi", pl.File(out)).key != write("hi", pl.File(tmp_path / "other.txt")).key
    out.write_text("whatever")  # its content is not part of the key
    assert write("hi", pl.File(out)).key == write("hi", str(tmp_path / "out.txt")).key


def test_a_declared_output_is_checked_after_the_task(tmp_path: Path, plait_runtime: pl.Runtime) -> None:
    out = tmp_path / "out.txt"
    assert plait_runtime.run(write("hello", pl.File(out)), timeout=30) == pl.File(out)
    assert out.read_text() == "hello"
    missing = tmp_path / "missing.txt"
    with pytest.raises(FileNotFoundError) as info:
        plait_runtime.run(forget_to_write(pl.File(missing)), timeout=30)
    assert "forget_to_write" in str(info.value) and str(missing) in str(info.value)


def test_fixed_outputs_are_part_of_the_identity(tmp_path: Path) -> None:
    def make(path: Path) -> pl.App[[], None]:
        def produce() -> None:
            path.write_text("x")

        return pl.app(outputs=[pl.File(path)], version="1")(produce)

    assert make(tmp_path / "a")().key == make(tmp_path / "a")().key != make(tmp_path / "b")().key


def test_outputs_must_name_parameters_or_be_files() -> None:
    with pytest.raises(ValueError, match=r"f: outputs names parameter 'dst', which it does not have \(it has out\)"):

        @pl.app(outputs=["dst"])
        def f(out: str) -> None: ...

    with pytest.raises(TypeError, match=re.escape("outputs takes pl.File objects or names of parameters, not a int")):

        @pl.app(outputs=[3])
        def g(out: str) -> None: ...


def test_an_output_argument_must_be_a_path(plait_runtime: pl.Runtime) -> None:
    with pytest.raises(TypeError, match=re.escape("output argument 'out' must be a pl.File or a path, not a int")):
        plait_runtime.run(write("x", 3), timeout=30)  # type: ignore[arg-type]


def test_the_wrapped_app_keeps_its_name_and_signature() -> None:
    assert write.name == "write"
    assert list(write.signature.parameters) == ["text", "out"]


def test_outputs_passed_in_the_call_parsl_style_show_how_to_declare_them(tmp_path: Path) -> None:
    out = pl.File(tmp_path / "out.txt")

    @pl.shell
    def write(text: str) -> str:
        return f"echo {text} > out.txt"

    with pytest.raises(TypeError) as raised:
        write("hi", outputs=[out])  # type: ignore[call-arg]
    message = str(raised.value)
    assert message.startswith("test_outputs_passed_in_the_call_parsl_style_show_how_to_declare_them.<locals>.write()")
    assert "takes no argument 'outputs': declare its outputs on the decorator, not in the call" in message
    assert "@pl.shell(outputs=['out']) def write(..., out: pl.File)" in message
    assert "@pl.shell(outputs=[pl.File('result.txt')])" in message


@pytest.mark.parametrize(("decorator", "make"), [("pl.app", pl.app), ("pl.shell", pl.shell)])
def test_a_file_meant_as_an_output_but_not_declared_shows_how_to_declare_it(
    tmp_path: Path, decorator: str, make: Any
) -> None:
    @make
    def write(text: str, out: pl.File, outputs: tuple[pl.File, ...] = ()) -> str:
        return f"echo {text} > {out}"

    missing = re.escape(str(tmp_path / "out.txt"))
    single = rf"argument 'out': input file {missing} does not exist; if \S*write writes it, declare the parameter"
    with pytest.raises(FileNotFoundError, match=single + re.escape(f" as an output: @{decorator}(outputs=['out'])")):
        write("hi", pl.File(tmp_path / "out.txt"))
    listed = r"argument 'outputs': .* declare its outputs on the decorator, not in the call: a parameter per file"
    with pytest.raises(FileNotFoundError, match=listed):
        write("hi", pl.File(__file__), outputs=(pl.File(tmp_path / "out.txt"),))
    with pytest.raises(FileNotFoundError, match=r"input file \S+ does not exist$"):  # no hint for an input
        size(pl.File(tmp_path / "in.txt"))
