"""mkdocs hook: doctest examples in docstrings (``>>>`` lines and their output) show as code.

Markdown would read ``>>> x`` as a quote and ``[a][b]`` in an output as a reference link
(which the strict build then fails on), so each run of them outside a fence becomes a
``pycon`` fence, up to the next blank line.
"""

from __future__ import annotations

import re
from typing import Any

from markdown import Extension, Markdown
from markdown.preprocessors import Preprocessor

# A fence line holds only the fence and a language: a traceback's ``~~~~^~~~`` is not one.
_FENCE = re.compile(r"^\s*(`{3,}|~{3,})[\w+.-]*\s*$")


class _Doctests(Preprocessor):
    def run(self, lines: list[str]) -> list[str]:
        out: list[str] = []
        fenced = in_example = False
        indent = ""
        for line in lines:
            if in_example and not line.strip():
                out.append(f"{indent}```")
                in_example = False
            elif not in_example and not fenced and line.lstrip().startswith(">>> "):
                indent = line[: len(line) - len(line.lstrip())]
                out.append(f"{indent}```pycon")
                in_example = True
            elif not in_example and _FENCE.match(line):
                fenced = not fenced
            out.append(line)
        if in_example:
            out.append(f"{indent}```")
        return out


class DoctestExtension(Extension):
    def extendMarkdown(self, md: Markdown) -> None:
        md.preprocessors.register(_Doctests(md), "plait_doctests", 35)  # before fences are read (30)


def on_config(config: Any) -> Any:
    config.markdown_extensions.append(DoctestExtension())
    return config
