"""An error a user causes while building a graph names what was wrong and shows the user's
own line, with none of plait's frames below it (``plait._tracebacks.user_facing``)."""

from __future__ import annotations

import os
import threading
import traceback
from collections.abc import Callable
from typing import Any

import pytest

import plait as pl
from tests.tracebacks import raises_at_its_line


@pl.app
def add(x: int, y: int) -> int:
    return x + y


@pl.shell
def copy(src: str, dst: str) -> str:
    return f"cp {src} {dst}"


def returns_an_int(x: int) -> int:
    return x


def forgot_the_f(src: str, dst: str) -> str:
    return "cp {src} {dst}"


def listed_unfilled(src: str) -> list[str]:
    return ["wc", "-l", "{src}"]


SUM = add(1, 2)

# Each case is the user's line (a lambda here), the error it raises and what its message says.
WRONG: list[tuple[Callable[[], Any], type[Exception], str]] = [
    (lambda: add(1, yy=2), TypeError, r"add\(\): got an unexpected keyword argument 'yy'; did you mean 'y'"),
    (lambda: add(1), TypeError, r"add\(\): missing a required argument: 'y'"),
    (lambda: add(threading.Lock(), 2), TypeError, r"add\(\): argument 'x' is a lock"),
    (lambda: copy("a", dest="b"), TypeError, r"copy\(\): got an unexpected keyword argument 'dest'"),
    (lambda: SUM.map(3), TypeError, r"add\(1, 2\)\.map\(\.\.\.\) takes a function of the result, not int 3"),
    (lambda: SUM.map(add), TypeError, r"add is an app.*use \.bind\(add\)"),
    (lambda: SUM.bind("f"), TypeError, r"add\(1, 2\)\.bind\(\.\.\.\) takes a function of the result, not str"),
    (lambda: SUM.recover(0), TypeError, r"add\(1, 2\)\.recover\(\.\.\.\) takes a function of the exception"),
    (lambda: SUM.apply(len), TypeError, r"add\(1, 2\)\.apply\(\.\.\.\) takes an Expr whose result is a function"),
    (lambda: SUM + 1, TypeError, r"add\(1, 2\) \+ \.\.\.: an Expr is work not done yet"),
    (lambda: SUM.value, AttributeError, r"add\(1, 2\)\.value: an Expr has no attribute 'value'"),
    (lambda: SUM == 3, TypeError, r"add\(1, 2\) == 3: an Expr is work not done yet"),
    (lambda: bool(SUM), TypeError, r"add\(1, 2\) has no truth value before it runs"),
    (lambda: list(SUM), TypeError, r"add\(1, 2\) cannot be iterated before it runs"),
    (lambda: f"{SUM}", TypeError, r"add\(1, 2\) in a string"),
    (lambda: pl.traverse(3, [1]), TypeError, r"traverse needs an app or a function returning an Expr, not 3"),
    (lambda: pl.traverse(add, 5), TypeError, r"traverse\(add, items\): items is a list .* not 5"),
    (lambda: pl.traverse(add, [1]), TypeError, r"add\(\): missing a required argument: 'y'"),
    (lambda: pl.traverse(returns_an_int, [1]), TypeError, r"traverse: returns_an_int\(1\) returned a int"),
    (lambda: pl.app(3), TypeError, r"@app decorates a function, not 3"),
    (lambda: pl.app(dict), TypeError, r"app dict: plait cannot read the parameters it takes"),
    (lambda: pl.app(retry=3), TypeError, r"@app: no option retry=; did you mean 'retries='"),
    (lambda: pl.app(timeout=-1)(returns_an_int), ValueError, r"@app: timeout must be a positive number"),
    (lambda: pl.app(version=3), TypeError, r"@app: version must be a str, not 3"),
    (lambda: pl.app(executor=3), TypeError, r"@app: executor must be a label \(a str\), not 3"),
    (lambda: pl.app(cache="no"), TypeError, r"@app: cache must be True or False, not 'no'"),
    (lambda: pl.app(resources=3), TypeError, r"@app: resources must be a mapping"),
    (lambda: pl.app(ignore_for_cache=["y"])(returns_an_int), ValueError, r"ignore_for_cache names parameter 'y'"),
    (lambda: pl.shell(cwd=3)(returns_an_int), TypeError, r"shell app returns_an_int: cwd must be a path, not 3"),
    (lambda: pl.shell(forgot_the_f), TypeError, r"shell app forgot_the_f: .* holds \{src\}, \{dst\} as text.*f-string"),
    (lambda: pl.shell(listed_unfilled), TypeError, r"shell app listed_unfilled: .* holds \{src\} as text"),
    (lambda: pl.File(3), TypeError, r"File takes a path or URL"),
    (lambda: pl.Retry(attempts=0), ValueError, r"Retry\.attempts must be at least 1, not 0"),
    (lambda: pl.register_token(3, str), TypeError, r"register_token\(cls, fn\): cls is the class"),
    (lambda: pl.register_token(int, 3), TypeError, r"register_token\(int, fn\): fn is a function of an instance"),
]


@pytest.mark.parametrize(("build", "error", "message"), WRONG, ids=[f"case{i}" for i in range(len(WRONG))])
def test_a_wrong_argument_while_building_names_it_at_the_users_line_alone(
    build: Callable[[], Any], error: type[Exception], message: str
) -> None:
    raises_at_its_line(build, error, message)


def test_an_error_in_the_users_own_function_keeps_its_frames_and_drops_plaits() -> None:
    def fails(x: int) -> pl.Expr[int]:
        raise KeyError(x)  # the user's failing line

    with pytest.raises(KeyError) as caught:
        pl.traverse(fails, [1])  # the user's call
    lines = [frame.line for frame in traceback.extract_tb(caught.value.__traceback__)]
    assert lines == ["pl.traverse(fails, [1])  # the user's call", "raise KeyError(x)  # the user's failing line"]


def test_plait_traceback_full_keeps_plaits_frames(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(os.environ, "PLAIT_TRACEBACK", "full")
    with pytest.raises(TypeError) as caught:
        SUM.map(3)
    assert any("/plait/" in frame.filename for frame in traceback.extract_tb(caught.value.__traceback__))


def test_a_shell_command_that_fills_its_placeholders_or_has_braces_of_its_own_is_made() -> None:
    def awk(path: str) -> str:
        """Prints the first column of {path}."""
        return "awk '{print $1}' " + path

    def formatted(src: str) -> str:
        return "wc -l {src}".format(src=src)  # noqa: UP032 - str.format is the case under test

    def fstring(src: str) -> list[str]:
        return ["wc", "-l", f"{src}"]

    def variable(name: str) -> str:
        return "echo ${name}"  # the shell's variable, set by env=

    for fn in (awk, formatted, fstring, variable):
        assert isinstance(pl.shell(fn), pl.App)
