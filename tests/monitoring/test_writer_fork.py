"""A fork of the driver does not keep the run's writer process alive after the driver dies."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.monitoring.test_writer_process import DRIVER as WRITER_DRIVER
from tests.processes import gone

# The killed driver of test_writer_process, forking a child that lives on before it says its writer.
DRIVER = WRITER_DRIVER.replace(
    "print(log._writer.process.pid, flush=True)",
    "import os\n"
    "child = os.fork()  # as multiprocessing's default start method does\n"
    "if child == 0:\n"
    "    time.sleep(60)\n"
    "    os._exit(0)\n"
    "print(log._writer.process.pid, child, flush=True)",
)
assert DRIVER != WRITER_DRIVER


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
