"""What users write: apps, expressions and their combinators. Values only, nothing runs."""

from plait.dsl._app import App, AppOptions, app, traverse
from plait.dsl._args import find_refs, substitute
from plait.dsl._expr import (
    Attempt,
    Await,
    Bind,
    Call,
    Expr,
    Gather,
    Interpreter,
    Map,
    Pure,
    as_expr,
    gather,
    pure,
    set_interpreter,
)
from plait.dsl._file import File
from plait.dsl._reach import ImpureAppWarning, MemoKeyWarning, Reach
from plait.dsl._retry import Constant, Exponential, Retry, constant, exponential
from plait.dsl._shell import ShellError, ShellResult, shell
from plait.dsl._token import Untokenizable, register_token, token_of

__all__ = [
    "App",
    "AppOptions",
    "Attempt",
    "Await",
    "Bind",
    "Call",
    "Constant",
    "Expr",
    "Exponential",
    "Gather",
    "ImpureAppWarning",
    "MemoKeyWarning",
    "Reach",
    "Interpreter",
    "Map",
    "Pure",
    "Retry",
    "Untokenizable",
    "app",
    "as_expr",
    "constant",
    "exponential",
    "find_refs",
    "gather",
    "pure",
    "register_token",
    "set_interpreter",
    "substitute",
    "token_of",
    "traverse",
    "File",
    "ShellError",
    "ShellResult",
    "shell",
]
