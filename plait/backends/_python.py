"""The command line of a Python that plait starts: a pool, a worker launcher, a batch job.

It runs with ``-P``: ``-c`` and ``-m`` otherwise put the current directory first on
``sys.path``, and that directory is whoever started the run's, often one that others can
write (a shared ``/tmp``, a group's project directory). A ``zmq.py`` planted there would run
as the user in every pool and launcher, before plait has imported anything of its own.
Workers import the user's code from the driver's ``sys.path``, which they are sent.
"""

from __future__ import annotations

import sys

__all__ = ["SAFE_PATH", "python", "python_starting"]

SAFE_PATH = "-P"  # Python 3.11+: no unsafe path first on sys.path


def python(*args: str) -> list[str]:
    """This interpreter, with a safe ``sys.path``, and ``args``.

    >>> python("-m", "plait")[1:]
    ['-P', '-m', 'plait']
    """
    return [sys.executable, SAFE_PATH, *args]


def python_starting(code: str, *args: str) -> list[str]:
    """``python("-c", code, *args)`` with the cyclic collector off from the first line: what a
    pool or a launcher imports lives as long as it does, and young collections of it would
    look at objects that all survive. ``code`` turns it back on (``_launcher.imports_done``).

    >>> python_starting("import plait")[2:]
    ['-c', 'import gc; gc.disable(); import plait']
    """
    return python("-c", f"import gc; gc.disable(); {code}", *args)
