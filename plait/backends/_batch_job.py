"""Inside a BatchExecutor's job: run the task in a file, write its result beside it.

``python -m plait.backends._batch_job <task file>``. Its own module, so that running it
does not import the module a second time as ``__main__``.
"""

from __future__ import annotations

import os
import pickle
import socket
import sys
import threading
import time
from pathlib import Path

from plait.backends._errors import TaskTimeout
from plait.backends._records import Result
from plait.backends._wire import dumps_error
from plait.backends._worker import adopt_path, run_task

__all__ = ["main"]


def _write(path: Path, result: Result, lock: threading.Lock) -> None:
    """Write the result once: the task and its timeout watchdog race for it."""
    with lock:
        if path.exists():
            return
        partial = path.with_suffix(".partial")
        partial.write_bytes(pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))
        os.replace(partial, path)


def main(argv: list[str] | None = None) -> None:
    """Run the task in the file named by ``argv[0]`` and write its result beside it."""
    (task_path,) = sys.argv[1:] if argv is None else argv
    task_file = Path(task_path)
    sys_path, timeout, wire = pickle.loads(task_file.read_bytes())
    adopt_path(sys_path)
    result_file = task_file.with_suffix(".result")
    lock = threading.Lock()
    started = time.time()
    if timeout is not None:

        def expire() -> None:
            error = TaskTimeout(
                f"{wire.name} ran longer than its timeout of {timeout} s on {socket.gethostname()}; its job was ended"
            )
            _write(result_file, Result(wire.task_id, False, started, time.time(), None, None, dumps_error(error)), lock)
            os._exit(1)

        watchdog = threading.Timer(timeout, expire)
        watchdog.daemon = True
        watchdog.start()
    _write(result_file, run_task({}, wire), lock)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # threads the task left running must not keep the job (and its allocation) alive


if __name__ == "__main__":
    main()
