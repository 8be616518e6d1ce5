"""URL Files on one machine: an input over HTTP from a local server, outputs pushed to
fsspec's in-memory filesystem (one process: the threads' executor shares it). The same
across hosts without a shared filesystem is tests/backends/zmq/test_zmq_staging.py."""

from __future__ import annotations

import functools
import http.server
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import fsspec
import pytest

import plait as pl


@pl.app(outputs=["out"])
def upper(src: pl.File, out: pl.File) -> tuple[str, bool]:
    """Writes ``src`` upper-cased to ``out``; returns where it read and whether that is local."""
    Path(out).write_text(src.read_text().upper())
    return src.path, os.path.exists(src.path)


@pl.app
def where(files: dict[str, list[pl.File]]) -> list[str]:
    return [f.read_text() for f in files["a"]]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A directory served over HTTP on loopback, and its URL."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield tmp_path, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_a_url_stays_a_url_and_a_file_url_is_a_local_path() -> None:
    assert pl.File("https://example.org/a/b.csv").path == "https://example.org/a/b.csv"
    assert pl.File("https://example.org/a/b.csv").is_url
    assert pl.File("file:///data/a.csv") == pl.File("/data/a.csv")
    assert not pl.File("/data/a.csv").is_url


def test_an_http_input_is_fetched_and_an_output_pushed_and_the_result_names_the_urls(
    served: tuple[Path, str],
) -> None:
    root, base = served
    (root / "in.txt").write_text("staged")
    out = pl.File("memory://plait-test/out.txt")
    with pl.Runtime([pl.ThreadExecutor(2)]) as rt:
        read_from, was_local = rt.run(upper(pl.File(f"{base}/in.txt"), out))
        assert rt.run(where({"a": [pl.File(f"{base}/in.txt")]})) == ["staged"]  # at any depth
    assert was_local and not pl.File(read_from).is_url  # the app saw a local copy ...
    assert not os.path.exists(read_from)  # ... removed when the task ended
    assert fsspec.filesystem("memory").cat("/plait-test/out.txt") == b"STAGED"


def test_the_key_of_an_http_input_follows_its_content_not_its_url(served: tuple[Path, str]) -> None:
    root, base = served
    (root / "in.txt").write_text("one")
    src, out = pl.File(f"{base}/in.txt"), pl.File("memory://plait-test/k.txt")
    first = upper(src, out)
    assert upper(src, out) == first
    (root / "in.txt").write_text("three")  # another size: a new key within the same second
    assert upper(src, out) != first


def test_shared_staging_passes_urls_as_they_are(served: tuple[Path, str]) -> None:
    root, base = served
    (root / "in.txt").write_text("x")
    executor = pl.ThreadExecutor(1)
    executor.staging = pl.Staging(mode="shared")  # type: ignore[attr-defined]  # the option, set as ZMQExecutor does
    with pl.Runtime([executor]) as rt, pytest.raises(FileNotFoundError):
        rt.run(upper(pl.File(f"{base}/in.txt"), pl.File("memory://plait-test/s.txt")))


def test_a_bad_staging_option_is_refused_naming_the_executor() -> None:
    with pytest.raises(ValueError, match="executor 'zmq': staging='nfs' must be"):
        pl.ZMQExecutor(staging="nfs")  # type: ignore[arg-type]


class Shelf:
    """A stager of one's own: a dict of URLs' contents (one process: the threads share it)."""

    def __init__(self) -> None:
        self.items = {"memory://plait-test/shelf-in.txt": b"from the shelf"}

    def fetch(self, url: str, local: str) -> None:
        Path(local).write_bytes(self.items[url])

    def push(self, local: str, url: str) -> None:
        self.items[url] = Path(local).read_bytes()


def test_a_stager_of_ones_own_moves_the_files() -> None:
    memory = fsspec.filesystem("memory")
    memory.pipe("/plait-test/shelf-in.txt", b"from fsspec")  # what the driver keys the call by
    shelf = Shelf()
    assert isinstance(shelf, pl.Stager)
    executor = pl.ThreadExecutor(1)
    executor.staging = pl.Staging(stager=shelf)  # type: ignore[attr-defined]
    with pl.Runtime([executor]) as rt:
        rt.run(upper(pl.File("memory://plait-test/shelf-in.txt"), pl.File("memory://plait-test/shelf-out.txt")))
    assert shelf.items["memory://plait-test/shelf-out.txt"] == b"FROM THE SHELF"  # fetched and pushed by the shelf
    assert not memory.exists("/plait-test/shelf-out.txt")
