"""Files without a shared filesystem: an input served over HTTP by one test host, read by
a shell app on the other (whose /tmp is its own), its output pushed over SFTP to the first.

The HTTP server runs in plait-h1's network namespace; the pool on plait-h2 starts with
SSHProvider; SFTP reaches plait-h1's sshd with the test hosts' key.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import fsspec.config
import pytest

import plait as pl
from tests.backends.zmq.test_zmq_remote import DRIVER, INIT, QUICK, hosts, on_host
from tests.backends.zmq.zmq_apps import shout
from tests.waiting import wait_for

__all__ = ["hosts"]  # the fixture, used here by name

H1, H2 = "198.18.0.2", "198.18.0.3"
PORT = 8642
KEY = "/var/lib/plait-hosts/id_ed25519"  # hosts-up's key: sshd on every host admits it
STAGING = pl.Staging(
    mode="isolated", stager=pl.FsspecStager(timeout=3.0, storage_options={"sftp": {"key_filename": KEY}})
)


@pytest.fixture
def served(hosts: list[str], tmp_path: Path) -> Iterator[Path]:
    """A directory served over HTTP at http://198.18.0.2:PORT/ from plait-h1's namespace."""
    root = tmp_path / "www"
    root.mkdir()
    argv = ["ip", "netns", "exec", "plait-h1", sys.executable, "-m", "http.server", str(PORT), "--bind", H1]
    server = subprocess.Popen([*argv, "--directory", str(root)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: _answers(H1, PORT), timeout=10, what="the HTTP server on plait-h1")
        yield root
    finally:
        server.kill()
        server.wait()


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture
def runtime(hosts: list[str]) -> Iterator[pl.Runtime]:
    """One pool, on plait-h2 only, whose executor stages files (local paths refused)."""
    provider = pl.SSHProvider(hosts=[H2], worker_init=INIT)
    executor = pl.ZMQExecutor(provider=provider, address=DRIVER, staging=STAGING, **QUICK)
    with pl.Runtime([executor]) as rt:
        yield rt


def test_an_input_over_http_is_read_on_another_host_and_its_output_lands_over_sftp(
    served: Path, runtime: pl.Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(fsspec.config.conf, "sftp", {"key_filename": KEY})  # the driver reads the output
    name = f"staged-{uuid.uuid4().hex}"
    (served / "in.txt").write_text("hello from h1\n")
    out = pl.File(f"sftp://{H1}/tmp/{name}.txt")
    result = runtime.run(shout(pl.File(f"http://{H1}:{PORT}/in.txt"), out))
    assert result.outputs == (out,)  # the URL the workflow named, not the worker's scratch path
    assert out.read_text() == "HELLO FROM H1\nplait-h2\n"  # read over SFTP from the driver
    on_host(H1, f"rm /tmp/{name}.txt")  # other tests check that hosts are left clean
    assert not out.exists()
    assert not Path(f"/tmp/{name}.txt").exists()  # it landed on plait-h1 only
    assert "plait-staged" not in on_host(H2, "ls /tmp")  # the scratch directory went with the task


def test_a_changed_input_over_http_changes_the_key(served: Path) -> None:
    url = pl.File(f"http://{H1}:{PORT}/changing.txt")
    (served / "changing.txt").write_text("one")
    first = shout(url, pl.File(f"sftp://{H1}/tmp/x.txt"))
    time.sleep(1.1)  # http.server's Last-Modified has whole seconds
    (served / "changing.txt").write_text("two, longer")
    assert shout(url, pl.File(f"sftp://{H1}/tmp/x.txt")) != first


def test_a_missing_input_over_http_is_an_error_naming_the_url(served: Path) -> None:
    url = f"http://{H1}:{PORT}/missing.txt"
    with pytest.raises(FileNotFoundError, match=f"{re.escape(url)} does not exist"):
        shout(pl.File(url), pl.File(f"sftp://{H1}/tmp/x.txt"))


def test_a_missing_input_over_sftp_is_an_error_naming_the_url(
    hosts: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(fsspec.config.conf, "sftp", {"key_filename": KEY})  # the driver reads it to key the call
    url = f"sftp://{H1}/tmp/no-such-file"
    with pytest.raises(FileNotFoundError, match=f"{re.escape(url)} does not exist"):
        shout(pl.File(url), pl.File(f"sftp://{H1}/tmp/x.txt"))


def test_a_host_that_refuses_is_an_error_naming_the_url(hosts: list[str]) -> None:
    url = f"http://{H2}:{PORT}/in.txt"  # nothing listens there
    with pytest.raises(pl.StagingError, match=f"cannot read {re.escape(url)}: .*Connect"):
        shout(pl.File(url), pl.File(f"sftp://{H1}/tmp/x.txt"))


def test_an_unknown_scheme_is_an_error_naming_the_url() -> None:
    with pytest.raises(ValueError, match=re.escape("gopher://h1/a.txt: unknown URL scheme 'gopher'")):
        pl.File("gopher://h1/a.txt")


def test_an_output_to_an_unreachable_host_fails_the_task_in_its_timeout(served: Path, runtime: pl.Runtime) -> None:
    (served / "in.txt").write_text("hello\n")
    url = "sftp://198.18.0.9/tmp/out.txt"  # in the test range, on no host: nothing answers
    started = time.monotonic()
    with pytest.raises(Exception, match=f"cannot reach {re.escape(url)}: .*timed out"):
        runtime.run(shout(pl.File(f"http://{H1}:{PORT}/in.txt"), pl.File(url)))
    assert time.monotonic() - started < 10  # the stager's 3 s, not a hang


def test_isolated_staging_refuses_a_local_path_naming_it(runtime: pl.Runtime, tmp_path: Path) -> None:
    local = tmp_path / "in.txt"
    local.write_text("only on the driver")
    refused = rf"argument 'src' is the local path {re.escape(str(local))}.*staging='isolated'"
    with pytest.raises(ValueError, match=refused):
        runtime.run(shout(pl.File(local), pl.File(f"sftp://{H1}/tmp/x.txt")))


def test_an_input_on_an_unreachable_host_is_an_error_within_fsspecs_timeout(
    hosts: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(fsspec.config.conf, "sftp", {"key_filename": KEY, "timeout": 1})  # the driver's, as configured
    url = "sftp://198.18.0.9/tmp/in.txt"
    started = time.monotonic()
    with pytest.raises(pl.StagingError, match=f"cannot reach {re.escape(url)}: .*timed out"):
        shout(pl.File(url), pl.File(f"sftp://{H1}/tmp/x.txt"))
    assert time.monotonic() - started < 5
