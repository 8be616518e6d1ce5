"""A shell app whose command names its arguments as text: ``return "cp {src} {dst}"``,
the ``f`` of an f-string forgotten, would run ``cp {src} {dst}`` as it is, on a worker, and
fail there as the command's own error (``cp: cannot stat '{src}'``). Refused when the app
is made instead, naming the placeholders."""

from __future__ import annotations

import dis
import inspect
import re
import types
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["refuse_unfilled_placeholders"]

_PLACEHOLDER = re.compile(r"(?<!\$)\{(\w+)\}")  # not ${name}: the shell's own variable
# What fills a template: an f-string's formatting, str.format, string.Template, replace.
_FILLING_NAMES = frozenset({"format", "format_map", "Template", "substitute", "safe_substitute", "replace"})


def refuse_unfilled_placeholders(fn: Callable[..., Any], name: str) -> None:
    """Refuse ``fn`` when a string in its code holds ``{parameter}`` and nothing in it fills one."""
    code = getattr(fn, "__code__", None)
    if not isinstance(code, types.CodeType) or _fills(code):
        return
    parameters = set(inspect.signature(fn).parameters)
    for text in _strings(code.co_consts):
        unfilled = [p for p in _PLACEHOLDER.findall(text) if p in parameters]
        if unfilled and text != fn.__doc__:
            shown = ", ".join(f"{{{p}}}" for p in dict.fromkeys(unfilled))
            raise TypeError(
                f"shell app {name}: its command {text!r:.80} holds {shown} as text, and nothing fills it "
                f"in: the command would run as it is. Make it an f-string, f{text!r:.80}"
            )


def _fills(code: types.CodeType) -> bool:
    if _FILLING_NAMES & set(code.co_names):
        return True
    return any(op.opname in ("FORMAT_VALUE", "BUILD_STRING", "BINARY_OP") for op in dis.get_instructions(code))


def _strings(constants: tuple[Any, ...]) -> Iterator[str]:
    for constant in constants:
        if isinstance(constant, str):
            yield constant
        elif isinstance(constant, tuple | frozenset):  # a list of literal strings: ["cp", "{src}", ...]
            yield from _strings(tuple(constant))
