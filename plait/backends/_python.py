"""The command line of a Python that plait starts: a pool, a worker launcher, a batch job.

It runs with ``-P``: ``-c`` and ``-m`` otherwise put the current directory first on
``sys.path``, and that directory is whoever started the run's, often one that others can
write (a shared ``/tmp``, a group's project directory). A ``zmq.py`` planted there would run
as the user in every pool and launcher, before plait has imported anything of its own.
Workers import the user's code from the driver's ``sys.path``, which they are sent.
"""

from __future__ import annotations

import sys

__all__ = ["SAFE_PATH", "python"]

SAFE_PATH = "-P"  # Python 3.11+: no unsafe path first on sys.path


def python(*args: str) -> list[str]:
    """This interpreter, with a safe ``sys.path``, and ``args``.

    >>> python("-m", "plait")[1:]
    ['-P', '-m', 'plait']
    """
    return [sys.executable, SAFE_PATH, *args]
