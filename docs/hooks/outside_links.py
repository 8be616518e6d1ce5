"""mkdocs hook: a page's link to a file of the repository outside docs/ (``../examples/pi.py``)
ships that file with the site and points the link at it; a link to a file that does not
exist is left alone, so the strict build fails on it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
_OUTSIDE = re.compile(r"\]\(\.\./([^)#\s]+)")


def _targets(markdown: str) -> list[str]:
    return [t for t in _OUTSIDE.findall(markdown) if (ROOT / t).is_file() and not t.startswith("docs/")]


def on_files(files: Files, config: Any) -> Files:
    for page in DOCS.glob("*.md"):
        for target in _targets(page.read_text(encoding="utf-8")):
            if files.get_file_from_path(target) is None:
                files.append(File(target, str(ROOT), config["site_dir"], config["use_directory_urls"]))
    return files


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    for target in _targets(markdown):
        markdown = markdown.replace(f"](../{target}", f"]({target}")
    return markdown
