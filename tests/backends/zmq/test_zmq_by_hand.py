"""Pools started by hand: ``plait worker --url URL --key-file FILE`` with the key file
``ZMQExecutor(key_file=...)`` wrote, and no provider starting anything."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest

import plait as pl
from tests.backends.zmq.zmq_apps import FAST, inc, total

WORKER = [sys.executable, "-c", "from plait.cli import main; main()", "worker"]


@pytest.mark.parametrize("how", ["--key-file", "--keys", "stdin"])
def test_a_pool_started_by_hand_with_the_key_file_the_executor_wrote(tmp_path: Path, how: str) -> None:
    key_file = tmp_path / "run.keys"
    key_file.write_text("a previous run's keys")
    nothing = pl.LocalProvider(init_blocks=0, max_blocks=0)  # every pool comes by hand
    executor = pl.ZMQExecutor(provider=nothing, key_file=key_file, **FAST)
    with pl.Runtime([executor]) as rt:
        assert executor.key_file == key_file and stat.S_IMODE(key_file.stat().st_mode) == 0o600
        keys = ["--key-file", "-"] if how == "stdin" else [how, str(key_file)]
        argv = [*WORKER, "--url", executor.url, "--pool-id", "by-hand", "--workers", "1", *keys]
        with key_file.open() as stdin:  # read only when the pool is told "-"
            pool = subprocess.Popen(argv, stdin=stdin)
        assert rt.run(total(*[inc(i) for i in range(10)])) == 55
        assert executor.pools == ["by-hand"]
    assert pool.wait(10) == 0, "the executor's shutdown ends the pool"
    assert not key_file.exists(), "the key file outlived the run"


def test_a_key_file_without_encryption_is_refused() -> None:
    with pytest.raises(ValueError, match="key_file='k' with encrypted=False: no keys to write"):
        pl.ZMQExecutor(key_file="k", encrypted=False)


@pytest.mark.parametrize(
    ("options", "says"),
    [
        (["--url", "10.0.0.1:5", "--pool-id", "p"], "argument --url: '10.0.0.1:5' is not an executor address"),
        (["--url", "tcp://h:5", "--pool-id", "p", "--workers", "0"], "'0' is not a number of workers"),
        (["--url", "tcp://h:5"], "the following arguments are required: --pool-id"),
    ],
)
def test_plait_worker_says_which_option_is_wrong(options: list[str], says: str) -> None:
    done = subprocess.run([*WORKER, *options], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2 and says in done.stderr and "usage: plait worker" in done.stderr
    shown = subprocess.run([*WORKER, "--help"], capture_output=True, text=True, timeout=60, check=False)
    assert shown.returncode == 0 and all(f"--{name}" in shown.stdout for name in ("url", "pool-id", "workers", "keys"))
