"""A fork of a process with a running runtime (a user's ``os.fork()``, multiprocessing's
default start method on Linux) copies the runtime but not its loop thread or workers: the
child is told so, or gets its own, and never waits for an answer that cannot come."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import os, sys
    import plait as pl

    @pl.app
    def square(x: int) -> int:
        return x * x

    def in_child(body):
        pid = os.fork()
        if pid == 0:
            try:
                body()
            except BaseException as error:
                print(f"child: {type(error).__name__}: {error}", flush=True)
            sys.exit(0)  # as a program ends: its exit hooks run
        _, status = os.waitpid(pid, 0)
        print(f"child exit status {status}", flush=True)

    mode = sys.argv[1]
    if mode == "explicit":
        with pl.Runtime([pl.ThreadExecutor(2)], progress=False) as rt:
            assert rt.run(square(2)) == 4
            in_child(lambda: print("child:", rt.run(square(3))))
            print("parent:", rt.run(square(4)), flush=True)
    elif mode == "with-exit":
        with pl.Runtime([pl.ThreadExecutor(2)], progress=False) as rt:
            assert rt.run(square(2)) == 4
            in_child(lambda: None)  # the child leaves the with block: its copy shuts down
            print("parent:", rt.run(square(4)), flush=True)
    elif mode == "default":
        assert pl.run(square(2)) == 4  # the parent's default runtime
        in_child(lambda: print("child:", pl.run(square(3)), flush=True))
        print("parent:", pl.run(square(4)), flush=True)
    """
)


def run(mode: str) -> list[str]:
    done = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()


def test_a_fork_that_submits_to_its_parents_runtime_is_told_to_start_its_own() -> None:
    child, status, parent = run("explicit")
    assert child.startswith("child: RuntimeError: this Runtime was started in process ")
    assert "of which this process is a fork" in child
    assert status == "child exit status 0"
    assert parent == "parent: 16"


@pytest.mark.parametrize("mode", ["with-exit", "default"])
def test_a_fork_leaves_its_parents_runtime_to_it_and_ends(mode: str) -> None:
    *child, status, parent = run(mode)
    assert child == ([] if mode == "with-exit" else ["child: 9"])  # pl.run in a fork: a default runtime of its own
    assert status == "child exit status 0"
    assert parent == "parent: 16"
