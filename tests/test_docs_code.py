"""Every Python block of the README and docs/ runs, in order, so the pages cannot drift.

Each page runs in its own process, in an empty temporary directory, all its blocks in one
namespace, top to bottom, as a reader pasting them into one session would, with
``import plait as pl`` done (every page writes ``pl``). A failure names the page and its
line. What a page may say about its blocks, in HTML comments (invisible on the page):

- ``<!-- doc-test: not run: REASON -->`` on the line before a block: the block is only
  compiled. For what cannot run here (a cluster that is not there); the reason is required
  and such blocks are few (``NOT_RUN``).
- ``<!-- doc-test: hidden` `` ... ``-->``: code run at that point but not shown, for what a
  fragment assumes and the page need not spell out (an app ``workflow``, an input file).
  Kept short (``HIDDEN_LINES``).

A block whose first line is ``>>>`` runs as a doctest: its output must match (``...``
matches anything). Batch schedulers' commands are stubs on PATH that fail: pages make
providers, which look for them, but submit nothing.
A block whose first line is ``# file: NAME`` is a file of docs/testing.md's example, which
tests/testing/test_docs_example.py writes out and runs with pytest: it is left alone here.
"""

from __future__ import annotations

import doctest
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

import plait
from plait.backends import providers
from plait.backends.providers._scheduler import BatchProvider

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

NOT_RUN = 3  # blocks marked not run, on all pages together: a ceiling, to keep them rare
HIDDEN_LINES = 8  # lines of one hidden block, at most

# Fences and comments may be indented, as in a list item: their code is dedented.
_PIECE = re.compile(
    r"^[ \t]*<!-- doc-test: not run: (?P<reason>.*?) -->\n[ \t]*```python[^\n]*\n(?P<skipped>.*?)^[ \t]*```"
    r"|^[ \t]*<!-- doc-test: hidden\n(?P<hidden>.*?)^[ \t]*-->"
    r"|^[ \t]*```python[^\n]*\n(?P<code>.*?)^[ \t]*```",
    re.MULTILINE | re.DOTALL,
)
_FILE = "# file: "


@attrs.frozen
class Block:
    kind: str  # "code", "hidden", "doctest", "file" or "skipped"
    line: int  # the page's line of the block's first line of code
    source: str
    note: str = ""  # why a skipped block is not run


def blocks(page: Path) -> Iterator[Block]:
    text = page.read_text()
    for match in _PIECE.finditer(text):
        kind = match.lastgroup
        assert kind is not None
        source = textwrap.dedent(match.group(kind))
        line = text.count("\n", 0, match.start(kind)) + 1
        if kind == "code" and source.startswith(">>>"):
            kind = "doctest"
        elif kind == "code" and source.startswith(_FILE):
            kind = "file"
        yield Block(kind, line, source, match.group("reason") or "")


def run_page(page: Path) -> None:
    """Run one page's blocks (in this process: the test starts one per page)."""
    namespace: dict[str, object] = {"__name__": "__main__", "pl": plait}
    for block in blocks(page):
        # Padded so that tracebacks give the page's own line numbers.
        padded = "\n" * (block.line - 1) + block.source
        if block.kind in ("code", "hidden"):
            exec(compile(padded, str(page), "exec"), namespace)
        elif block.kind == "skipped":
            compile(padded, str(page), "exec")
        elif block.kind == "doctest":
            _doctest(page, block, namespace)


def _doctest(page: Path, block: Block, namespace: dict[str, object]) -> None:
    # A page's block ends at its fence, not at a blank line as a docstring's example does.
    lines = block.source.rstrip("\n").split("\n")
    source = "\n".join(line or doctest.BLANKLINE_MARKER for line in lines) + "\n"
    test = doctest.DocTestParser().get_doctest(source, namespace, page.name, str(page), block.line - 1)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    runner.run(test, clear_globs=False)
    if runner.failures:
        raise AssertionError(f"{page}:{block.line}: the doctest above does not print what the page shows")


RUNNABLE = [page for page in PAGES if any(b.kind in ("code", "doctest") for b in blocks(page))]


@pytest.mark.parametrize("page", RUNNABLE, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_pages_python_blocks_run_in_order(page: Path, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "PATH": os.pathsep.join([str(_scheduler_stubs(tmp_path / "bin")), os.environ["PATH"]]),
    }
    (tmp_path / "work").mkdir()
    code = f"from tests.test_docs_code import run_page; from pathlib import Path; run_page(Path({str(page)!r}))"
    run = [sys.executable, "-c", code]
    done = subprocess.run(run, cwd=tmp_path / "work", env=env, capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, f"{page.name} does not run as written:\n{done.stdout}\n{done.stderr}"


def _scheduler_stubs(where: Path) -> Path:
    where.mkdir()
    # Every public provider, each loaded by name (the package loads its modules when first used).
    public = [getattr(providers, name) for name in providers.__all__]
    batch = [p for p in public if isinstance(p, type) and issubclass(p, BatchProvider) and p is not BatchProvider]
    for provider in batch:
        for command in provider.commands:
            stub = where / command
            stub.write_text(f"#!/bin/sh\necho 'doc-test: {command} is a stub' >&2\nexit 1\n")
            stub.chmod(0o755)
    return where


def test_blocks_not_run_are_few_and_say_why() -> None:
    skipped = [(page.name, b) for page in PAGES for b in blocks(page) if b.kind == "skipped"]
    assert len(skipped) <= NOT_RUN, [f"{name}:{b.line}" for name, b in skipped]
    assert all(len(b.note.split()) >= 3 for _, b in skipped), [b.note for _, b in skipped]


def test_hidden_code_is_short() -> None:
    long = [
        f"{page.name}:{b.line}"
        for page in PAGES
        for b in blocks(page)
        if b.kind == "hidden" and len(b.source.splitlines()) > HIDDEN_LINES
    ]
    assert not long, f"hidden blocks longer than {HIDDEN_LINES} lines: {long}"


def test_every_python_fence_is_found() -> None:
    # A fence the pattern above missed (```py, an indented one) would silently not run.
    for page in PAGES:
        text = page.read_text()
        fences = len(re.findall(r"^\s*```(?:python|py)\b", text, re.MULTILINE))
        assert fences == sum(b.kind != "hidden" for b in blocks(page)), page.name
