"""Pools on the driver's host connect over a unix socket in a directory only its user can
enter (the same CurveZMQ handshake as on TCP: see test_zmq_security.py); others over TCP."""

from __future__ import annotations

import stat
import tempfile
from pathlib import Path

import psutil
import pytest

import plait as pl
from tests.backends.zmq.zmq_apps import FAST, inc


def test_a_local_pool_connects_over_a_unix_socket_that_goes_with_the_run() -> None:
    executor = pl.ZMQExecutor(provider=pl.LocalProvider(workers=1), **FAST)
    with pl.Runtime([executor]) as rt:
        assert rt.run(inc(1)) == 2
        assert executor.url.startswith("tcp://127.0.0.1:")
        assert executor.pools_url.startswith("ipc:///")
        pool = psutil.Process(int(executor.blocks.jobs["zmq-0"]))  # type: ignore[union-attr]
        assert pool.cmdline()[pool.cmdline().index("--url") + 1] == executor.pools_url
        directory = Path(executor.pools_url.removeprefix("ipc://")).parent
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert not directory.exists(), "the socket's directory outlived the run"


def test_pools_of_a_provider_elsewhere_connect_over_tcp() -> None:
    class Elsewhere(pl.LocalProvider):
        shares_host = False  # as a batch or SSH provider's pools do not

    executor = pl.ZMQExecutor(provider=Elsewhere(workers=1), **FAST)
    with pl.Runtime([executor]) as rt:
        assert rt.run(inc(1)) == 2
        assert executor.pools_url == executor.url


def test_where_the_socket_s_path_would_be_too_long_local_pools_connect_over_tcp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deep = tmp_path / ("d" * 100)
    deep.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(deep))
    executor = pl.ZMQExecutor(provider=pl.LocalProvider(workers=1), **FAST)
    with pl.Runtime([executor]) as rt:
        assert rt.run(inc(1)) == 2
        assert executor.pools_url == executor.url
    assert not any(deep.iterdir()), "a directory made for the socket was left"
