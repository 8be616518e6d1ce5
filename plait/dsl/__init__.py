"""What users write: apps, expressions and their combinators. Values only, nothing runs.

``__all__`` is the user API, what ``plait`` re-exports, plus :func:`as_expr` for code
holding futures. The node kinds, tokens and the interpreter hook are the runtime's and
``plait.testing``'s: they import them from the private modules.
"""

from plait.dsl._app import App, traverse
from plait.dsl._combinators import as_expr, gather, pure
from plait.dsl._decorator import app
from plait.dsl._expr import Expr
from plait.dsl._file import File
from plait.dsl._reach import ImpureAppWarning, MemoKeyWarning
from plait.dsl._retry import Retry, constant, exponential
from plait.dsl._shell import ShellError, ShellResult, shell
from plait.dsl._token import register_token

__all__ = [
    "App",
    "Expr",
    "File",
    "ImpureAppWarning",
    "MemoKeyWarning",
    "Retry",
    "ShellError",
    "ShellResult",
    "app",
    "as_expr",
    "constant",
    "exponential",
    "gather",
    "pure",
    "register_token",
    "shell",
    "traverse",
]
