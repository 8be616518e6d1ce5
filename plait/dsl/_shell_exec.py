"""Running one command line on a worker, for shell apps.

The command runs as the worker's child, in its session. A process-based executor stops
a task past its timeout (or cancelled) by killing the worker with every process in its
tree or session (``plait.backends._reaper``), so the command and everything it started
die with it, even in a process group or session of its own.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

__all__ = ["Completed", "run_command"]


@attrs.frozen
class Completed:
    """How a command ended: its exit code and the output it was asked to capture."""

    returncode: int
    stdout: str | None
    stderr: str | None


def run_command(
    command: str | Sequence[str],
    *,
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
    stdout: str | None = None,
    stderr: str | None = None,
) -> Completed:
    """Run ``command`` and wait for it: a str goes to ``/bin/sh -c``, a sequence is the argv.

    ``env`` is added to the worker's environment. ``stdout``/``stderr`` are paths to
    write to, or None to capture the stream as text. stdin is empty.

    >>> run_command(["printf", "%s|", "a b", "$HOME", ";"]).stdout
    'a b|$HOME|;|'
    >>> run_command("echo oops >&2; exit 3")
    Completed(returncode=3, stdout='', stderr='oops\\n')
    """
    environment = {**os.environ, **env} if env else None
    with contextlib.ExitStack() as stack:
        out = _target(stack, stdout)
        err = _target(stack, stderr)
        process = subprocess.Popen(
            command,
            shell=isinstance(command, str),
            cwd=cwd,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
        )
        try:
            captured_out, captured_err = process.communicate()
        except BaseException:
            process.kill()  # interrupted here (a thread executor's shutdown): do not leave it running
            process.wait()
            raise
    return Completed(process.returncode, _text(captured_out), _text(captured_err))


def _target(stack: contextlib.ExitStack, path: str | None) -> Any:
    if path is None:
        return subprocess.PIPE
    return stack.enter_context(open(path, "wb"))


def _text(data: bytes | None) -> str | None:
    return None if data is None else data.decode("utf-8", errors="replace")
