"""A fork of the driver does not keep the run's writer process alive after the driver dies."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.processes import gone

DRIVER = textwrap.dedent(
    """
    import os, sys, time
    import plait as pl

    @pl.app
    def square(x: int) -> int:
        return x * x

    rt = pl.Runtime([pl.ThreadExecutor(2)], monitor=sys.argv[1], progress=False)
    assert rt.run(pl.gather(*(square(i) for i in range(20)))) == [i * i for i in range(20)]
    log = rt._interpreter.monitor
    deadline = time.monotonic() + 30
    while log._writer is None and time.monotonic() < deadline:  # started with the first batch
        time.sleep(0.01)
    child = os.fork()  # as multiprocessing's default start method does: it lives on
    if child == 0:
        time.sleep(60)
        os._exit(0)
    print(log._writer.process.pid, child, flush=True)
    time.sleep(60)  # killed here, its runtime open
    """
)


def test_a_forked_child_of_the_driver_does_not_keep_its_writer_alive(tmp_path: Path) -> None:
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    argv = [sys.executable, str(script), str(tmp_path / "run.db")]
    driver = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    child = 0
    try:
        assert driver.stdout is not None
        writer, child = map(int, driver.stdout.readline().split())
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait(10)
        assert not gone(child, within=0.5), "the forked child is to outlive the driver here"
        assert gone(writer), "the writer waited for the end of a pipe the driver's forked child held"
    finally:
        for pid in (driver.pid, child):
            if pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        driver.wait(10)
