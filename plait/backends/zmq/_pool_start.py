"""How a pool process starts (``plait worker``): its options, its launcher, then the pool.

``command`` parses the options, for the ``plait worker`` command and for the pools a
provider starts (``_blocks.pool_command``), which run it without the ``plait`` command:
argparse, not click, which would be ~15 ms of every pool's start.

The launcher (``plait.backends._launcher``) forks the pool's workers and kills what they
leave. It must be forked before any thread exists (a zmq context starts two), and it is
forked before anything else, before the pool imports zmq, its protocol and its
supervisor: the launcher then imports what the workers run (cloudpickle, the task
runner) on one core while the pool imports what it runs on the other. The pool itself
never loads the workers' modules.

Both import with the cyclic collector off (``pool_command`` starts the pool so): what they
import lives as long as they do, and the ~30 young collections of a pool's imports each
looked at objects that all survived (5-7 % of its start). Each then freezes what it has
(``imports_done``), so the collector never looks at it again, and turns it back on: before
the pool runs, and before the launcher forks a worker, which runs the user's tasks with
it on, as usual.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from plait.backends._measuring import unmeasured

if TYPE_CHECKING:  # the driver imports this module for the option names (``_blocks``): nothing more
    import argparse

    from plait.backends._launcher import Launcher

__all__ = ["NO_TASK_USAGE_OPTION", "check_url", "command", "main"]

NO_TASK_USAGE_OPTION = "--no-task-usage"


def command(argv: Sequence[str] | None = None, prog: str = "plait worker") -> NoReturn:
    """Run a pool with the options in ``argv`` (this process's own by default); exit with
    its code, or with 2 and a message saying which option is wrong."""
    options = _parser(prog).parse_args(argv)
    if not options.task_usage:  # before the launcher is forked: the workers inherit it
        os.environ.update(unmeasured({}))
    raise SystemExit(main(options.url, options.pool_id, options.workers, options.key_file))


def _parser(prog: str) -> argparse.ArgumentParser:
    import argparse  # the pool's own: see TYPE_CHECKING above

    parser = argparse.ArgumentParser(
        prog=prog,
        description="Run a pool of worker processes for a ZMQExecutor (what its providers start).",
        allow_abbrev=False,
        formatter_class=_formatter,
    )
    add = parser.add_argument
    add("--url", required=True, type=_executor_url, help="The executor's address, e.g. tcp://10.0.0.5:54321.")
    add("--pool-id", required=True, help="This pool's name, as the executor calls it.")
    add("--workers", type=_at_least_one, default=None, help="Worker processes [default: one per core].")
    add(
        "--key-file",
        "--keys",
        dest="key_file",
        type=Path,
        default=None,
        help="The file with the run's CurveZMQ keys (mode 0600; what ZMQExecutor(key_file=...) writes), "
        "or - to read them from stdin [default: none, for an executor with encrypted=False].",
    )
    add(
        NO_TASK_USAGE_OPTION,
        dest="task_usage",
        action="store_false",
        help="Do not measure each task's CPU time and peak memory (what an executor whose runtime has no "
        "monitor asks for: nothing would read them).",
    )
    return parser


# What argparse sizes help to without a terminal: shutil's 80 columns, less its margin of 2.
_NO_TERMINAL_WIDTH = 78


def _formatter(prog: str) -> argparse.HelpFormatter:
    """argparse's help formatter, sized to the terminal only when there is one: argparse
    makes one for each option added and sizes it with shutil, whose import (bz2, lzma and
    zlib with it) was ~3 ms of every pool's start, which has no terminal and shows no help."""
    import argparse  # loaded already, by _parser: see TYPE_CHECKING above

    terminal = sys.stdout is not None and sys.stdout.isatty()  # None: started with no stdout at all
    return argparse.HelpFormatter(prog, width=None if terminal else _NO_TERMINAL_WIDTH)


def _executor_url(url: str) -> str:
    try:
        return check_url(url)
    except ValueError as error:
        raise _bad_option(str(error)) from None


def _at_least_one(text: str) -> int:
    """A count of workers: a whole number, 1 or more."""
    if not text.isdigit() or int(text) < 1:
        raise _bad_option(f"{text!r} is not a number of workers: need a whole number, 1 or more")
    return int(text)


def _bad_option(message: str) -> Exception:
    """What an option's check raises for argparse to show ``message``."""
    import argparse  # loaded already, by _parser: see TYPE_CHECKING above

    return argparse.ArgumentTypeError(message)


def check_url(url: str) -> str:
    """``url`` if a pool can connect to it, else a ValueError saying what it should be.

    >>> check_url("tcp://10.0.0.5:54321")
    'tcp://10.0.0.5:54321'
    >>> check_url("ipc:///tmp/plait-zmq-x/executor")
    'ipc:///tmp/plait-zmq-x/executor'
    >>> check_url("10.0.0.5:54321")
    Traceback (most recent call last):
    ...
    ValueError: '10.0.0.5:54321' is not an executor address: expected tcp://HOST:PORT or ipc:///PATH
    """
    scheme, _, rest = url.partition("://")
    host, _, port = rest.rpartition(":")
    if (scheme, rest[:1]) != ("ipc", "/") and (scheme != "tcp" or not host or not port.isdigit()):
        raise ValueError(f"{url!r} is not an executor address: expected tcp://HOST:PORT or ipc:///PATH")
    return url


def main(url: str, pool_id: str, workers: int | None, key_file: Path | None = None) -> int:
    """Run a pool until it is shut down, drained, or loses its executor; its exit code.

    ``key_file`` holds the run's CurveZMQ keys; without it the pool connects in the clear
    (to an executor made with ``encrypted=False``).
    """
    from plait.backends._launcher import Launcher  # the pool's own: see TYPE_CHECKING above

    launcher = Launcher.forked()
    try:
        return _run(url, pool_id, workers, key_file, launcher)
    finally:
        launcher.close()  # when the pool did not get as far as closing it: a second close does nothing


def _run(url: str, pool_id: str, workers: int | None, key_file: Path | None, launcher: Launcher) -> int:
    # Imported once the launcher is forked: see the module's docstring.
    import logging

    from plait.backends._launcher import imports_done
    from plait.backends.zmq._curve import read_keys
    from plait.backends.zmq._pool import Pool

    imports_done()

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s plait worker %(levelname)s %(message)s")
    try:
        keys = None if key_file is None else read_keys(key_file)
    except ValueError as error:
        logging.getLogger("plait.zmq.pool").error("pool %s: %s", pool_id, error)
        return 2
    # A batch system stops a job with SIGTERM: leave through ``finally``, killing the workers.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in the driver's terminal is the driver's
    return Pool(url, pool_id, workers or os.cpu_count() or 1, keys, launcher).run()
