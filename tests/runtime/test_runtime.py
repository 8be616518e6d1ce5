"""The runtime interprets graphs: results, sharing, failures, futures, and memory."""

from __future__ import annotations

import gc
import os
import re
import sqlite3
import subprocess
import sys
import textwrap
import threading
import traceback
import warnings
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest
from returns.result import Failure, Success

import plait as pl


@pytest.fixture(scope="module")
def threads() -> Iterator[pl.Runtime]:
    with pl.Runtime(executors=[pl.ThreadExecutor(4)]) as runtime:
        yield runtime


@pytest.fixture(scope="module")
def processes() -> Iterator[pl.Runtime]:
    with pl.Runtime(executors=[pl.ProcessExecutor(workers=2)]) as runtime:
        yield runtime


@pl.app
def inside(x: float, y: float) -> int:
    return 4 if x * x + y * y < 1 else 0


@pl.app
def avg(*xs: float) -> float:
    return sum(xs) / len(xs)


@pl.app
def div(a: float, b: float) -> float:
    return a / b


@pl.app
def add(x: int, y: int) -> int:
    return x + y


CALLS_LOCK = threading.Lock()
COORDS = [(i / 40, (39 - i) / 40) for i in range(40)]
EXPECTED_PI = sum(4 if x * x + y * y < 1 else 0 for x, y in COORDS) / len(COORDS)


def test_the_readme_example_lazily_and_with_futures(processes: pl.Runtime) -> None:
    assert processes.run(avg(*[inside(x, y) for x, y in COORDS])) == EXPECTED_PI
    futures = [processes.submit(inside(x, y)) for x, y in COORDS]
    assert isinstance(futures[0], pl.PlaitFuture)
    assert processes.run(avg(*futures)) == EXPECTED_PI


def test_plait_run_uses_the_runtime_of_the_enclosing_with() -> None:
    seen = []

    @pl.app
    def where() -> str:
        seen.append(threading.current_thread().name)
        return "ok"

    with pl.Runtime(executors=[pl.ThreadExecutor(1, label="mine")]):
        assert pl.run(where()) == "ok"
    assert seen and seen[0].startswith("plait-mine")


def test_equal_work_runs_once_per_run(threads: pl.Runtime) -> None:
    calls: list[int] = []

    @pl.app
    def slow_square(x: int) -> int:
        with CALLS_LOCK:  # a global: a lock in the closure would make the app unhashable
            calls.append(x)
        return x * x

    shared = slow_square(3)
    graph = pl.gather(shared, slow_square(3), add(shared, slow_square(3)), add(slow_square(4), shared))
    assert threads.run(graph) == [9, 9, 18, 25]
    assert sorted(calls) == [3, 4]


def test_futures_and_exprs_resolve_at_any_depth(threads: pl.Runtime) -> None:
    @pl.app
    def shape(data: dict[str, object]) -> list[object]:
        return [data["a"], sorted(data["b"]), data["c"]]  # type: ignore[call-overload]

    future = threads.submit(add(1, 1))
    expr = shape({"a": [future, (add(2, 2),)], "b": {add(0, 1), 7}, "c": {"deep": [[add(5, 5)]]}})
    assert threads.run(expr) == [[2, (4,)], [1, 7], {"deep": [[10]]}]


def test_map_bind_attempt_and_recover(threads: pl.Runtime) -> None:
    assert threads.run(add(1, 2).map(lambda v: v * 10)) == 30
    assert threads.run(add(1, 2).bind(lambda v: pl.traverse(lambda i: add(i, v), range(v)))) == [3, 4, 5]
    assert threads.run(div(1, 2).attempt()) == Success(0.5)
    failed = threads.run(div(1, 0).attempt())
    assert isinstance(failed, Failure) and isinstance(failed.failure(), ZeroDivisionError)
    assert threads.run(div(1, 0).recover(lambda e: float("inf"))) == float("inf")
    assert threads.run(div(1, 4).recover(lambda e: -1.0)) == 0.25


def test_a_failure_reaches_dependents_as_dependency_error_with_its_path(threads: pl.Runtime) -> None:
    with pytest.raises(pl.DependencyError) as caught:
        threads.run(avg(inside(0.1, 0.2), add(div(1, 0), 1)).map(round))
    error = caught.value
    assert isinstance(error.root, ZeroDivisionError)
    assert error.path == ("div(1, 0)", "add(div(1, 0), 1)", "avg(inside(0.1, 0.2), add(div(1, 0), 1))", "map(round)")
    assert "div(1, 0) failed with ZeroDivisionError" in str(error)
    assert pl.root_cause(error) is error.root


def test_result_reraises_the_apps_exception_with_the_remote_traceback(processes: pl.Runtime) -> None:
    with pytest.raises(ZeroDivisionError) as caught:
        processes.run(div(1, 0))
    frames = [frame.name for frame in traceback.extract_tb(caught.value.__traceback__)]
    assert "div" in frames  # the worker's frame, carried back


def test_a_custom_exception_that_cannot_be_rebuilt_arrives_as_remote_error(processes: pl.Runtime) -> None:
    @pl.app
    def odd() -> None:
        class Local(Exception):
            def __init__(self, a: int, b: int) -> None:
                super().__init__(f"{a}/{b}")

        raise Local(1, 2)

    with pytest.raises(pl.RemoteError, match=r"Local: 1/2") as caught:
        processes.run(odd())
    assert ", in odd\n" in caught.value.traceback


def test_lambdas_and_closures_run_in_worker_processes(processes: pl.Runtime) -> None:
    offset = 7
    shifted = pl.app(lambda x: x + offset)
    assert processes.run(pl.traverse(shifted, [1, 2, 3])) == [8, 9, 10]


SCRIPT_HEAD = """
import plait as pl

@pl.app
def square(x):
    return x * x
"""


def run_script(tmp_path: Path, main: str) -> subprocess.CompletedProcess[str]:
    """A script of ``square`` and then ``main``, run in tmp_path as ``python workflow.py``."""
    script = tmp_path / "workflow.py"
    script.write_text(SCRIPT_HEAD + textwrap.dedent(main))
    command = [sys.executable, str(script)]
    return subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=30, check=False)


def test_functions_of_a_main_script_run_in_worker_processes(tmp_path: Path) -> None:
    out = run_script(
        tmp_path,
        """
        if __name__ == "__main__":
            with pl.Runtime(executors=[pl.ProcessExecutor(workers=2)]) as rt:
                print(rt.run(pl.traverse(square, range(5))))
        """,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[0, 1, 4, 9, 16]"


def test_a_runtime_a_script_started_and_never_shut_down_is_shut_down_at_exit(tmp_path: Path) -> None:
    # The tutorial's interactive style, in a script that forgets rt.shutdown(): its memo and
    # monitor still hold every task, and it exits without asyncio's complaints.
    out = run_script(
        tmp_path,
        """
        rt = pl.Runtime(executors=[pl.ProcessExecutor(workers=2)], cache="memo.db", monitor="run.db").start()
        print(rt.run(pl.traverse(square, range(20)))[-1])
        """,
    )
    assert (out.returncode, out.stdout, out.stderr) == (0, "361\n", "")
    queries = "SELECT count(*) FROM plait_results", "SELECT count(*) FROM attempts WHERE state = 'done'"
    for name, query in zip(["memo.db", "run.db"], queries, strict=True):
        db = sqlite3.connect(tmp_path / name)
        assert db.execute(query).fetchone() == (20,), name
        db.close()


def test_a_thread_that_outlives_the_main_one_still_has_the_default_runtime(tmp_path: Path) -> None:
    # Python waits for such a thread before it exits: shutting the runtime down at exit waits too.
    out = run_script(
        tmp_path,
        """
        import threading, time

        def late() -> None:
            time.sleep(0.5)
            print(pl.run(square(3)))

        print(pl.run(square(2)))
        threading.Thread(target=late).start()
        """,
    )
    assert (out.returncode, out.stdout, out.stderr) == (0, "4\n9\n", "")


def test_a_module_that_runs_a_workflow_as_it_is_imported_is_not_run_again_by_its_workers(tmp_path: Path) -> None:
    # A worker imports an app's module to find the app: the module's workflow then started
    # a runtime on the worker, whose workers imported the module in turn: a hang, with ever
    # more processes. A worker now refuses that runtime, and takes the app by value instead.
    (tmp_path / "eager.py").write_text(
        textwrap.dedent(
            """
            import plait as pl

            @pl.app
            def double(x: int) -> int:
                return 2 * x

            with pl.Runtime(executors=[pl.ProcessExecutor(1)]) as rt:  # no __main__ guard
                print("as imported:", rt.run(double(1)))
            """
        )
    )
    out = run_script(tmp_path, "import eager")
    assert (out.returncode, out.stdout, out.stderr) == (0, "as imported: 2\n", "")


def test_a_runtime_is_refused_inside_a_task(threads: pl.Runtime) -> None:
    @pl.app
    def nested() -> int:
        with pl.Runtime(executors=[pl.ThreadExecutor(1)]) as inner:
            return inner.run(pl.pure(1))

    with pytest.raises(RuntimeError, match=r"a Runtime started inside the app .*nested.*__main__"):
        threads.run(nested(), timeout=60)


def test_an_unpicklable_argument_fails_that_task_only_naming_app_and_argument(processes: pl.Runtime) -> None:
    @pl.app(cache=False)
    def hold(token: object, n: int) -> int:
        return n

    outcome = processes.run(pl.gather(hold(threading.Lock(), 1).attempt(), hold(None, 2)))
    failure, fine = outcome
    assert fine == 2
    assert isinstance(failure, Failure)
    assert "hold(): argument 'token' (lock) cannot be pickled" in str(failure.failure())


def test_an_unpicklable_result_names_the_app(processes: pl.Runtime) -> None:
    @pl.app
    def make_lock() -> object:
        return threading.Lock()

    with pytest.raises(TypeError, match=r"make_lock: its result, a lock, cannot be pickled"):
        processes.run(make_lock())


def test_an_unknown_executor_label_fails_at_submit(threads: pl.Runtime) -> None:
    @pl.app(executor="gpu")
    def train() -> int:
        return 1

    with pytest.raises(ValueError, match=r"app .*train asks for executor 'gpu'.*it has 'threads'"):
        threads.submit(add(train(), 1))


def test_a_refused_graph_leaves_nothing_behind(threads: pl.Runtime) -> None:
    @pl.app(executor="gpu")
    def train(x: int) -> int:
        return x

    shared = add(40, 2)
    refused = threads.submit(pl.gather([add(shared, 1), add(train(shared), 0), add(add(shared, 3), 4)]))
    with pytest.raises(ValueError, match=r"asks for executor 'gpu'"):
        refused.result(10)
    # No node of it is left in the index, nor a leaf of it to start (admission puts leaves
    # in ready, and calls without inputs in unstarted, as it finds them).
    assert threads._interpreter.index == {}
    assert not threads._interpreter.ready
    assert not any(threads._interpreter.unstarted.values())
    # Every part of it that was walked before the refusal runs on its own afterwards.
    assert threads.submit(pl.gather([add(shared, 1), add(add(shared, 3), 4)])).result(10) == [43, 49]


def test_a_timeout_on_an_executor_that_cannot_kill_fails_at_submit(threads: pl.Runtime) -> None:
    @pl.app(timeout=1)
    def bounded() -> int:
        return 1

    with pytest.raises(ValueError, match=r"timeout=1.*cannot stop a running task"):
        threads.submit(bounded())


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"executors": pl.ThreadExecutor(1)}, r"takes a list: executors=\[ThreadExecutor\(\.\.\.\)\]"),
        ({"executors": [pl.ThreadExecutor]}, r"\[0\] is the class ThreadExecutor: make one, ThreadExecutor\(\)"),
        ({"executors": ["threads"]}, r"\[0\] is a str, not an executor"),
        ({"executors": "threads"}, r"takes a list of executors, not str"),
        ({"cache": 3}, r"Runtime\(cache=\.\.\.\) takes a file path or a plait.runtime.Memo, not int"),
        ({"monitor": True}, r"Runtime\(monitor=\.\.\.\) takes a file path or a plait.runtime.Monitor, not bool"),
    ],
    ids=["one-executor", "a-class", "a-name", "a-string", "cache", "monitor"],
)
def test_a_runtime_refuses_what_is_not_an_executor_memo_or_monitor_by_name(
    arguments: dict[str, object], message: str
) -> None:
    with pytest.raises(TypeError, match=message):
        pl.Runtime(**arguments)  # type: ignore[arg-type]


def test_a_runtime_takes_any_iterable_of_executors() -> None:
    with pl.Runtime(executors=(e for e in [pl.ThreadExecutor(1)])) as rt:
        assert rt.run(add(1, 2), timeout=60) == 3


@pytest.mark.parametrize(
    ("timeout", "error", "message"),
    [
        (add(3, 4), TypeError, r"the second argument is the timeout in seconds, not an Expr; .*plait.gather\(a, b\)"),
        ("5", ValueError, r"run\(timeout='5'\): a timeout is a number of seconds >= 0"),
        (-1, ValueError, r"run\(timeout=-1\): a timeout is a number of seconds >= 0"),
    ],
    ids=["an-expr", "a-string", "negative"],
)
def test_run_refuses_a_timeout_that_is_not_a_number_of_seconds(
    threads: pl.Runtime, timeout: object, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        threads.run(add(1, 2), timeout)  # type: ignore[arg-type]


def test_submit_refuses_what_is_not_an_expr(threads: pl.Runtime) -> None:
    with pytest.raises(TypeError, match="submit takes an Expr"):
        threads.submit(42)  # type: ignore[arg-type]
    # What a newcomer passes instead: the app itself, or a list of calls (as dask.compute takes).
    with pytest.raises(TypeError, match=r"not App: call it, add\(\.\.\.\)"):
        threads.submit(add)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"not list of Exprs: plait.gather\(\*exprs\)"):
        threads.submit([add(1, 2), add(3, 4)])  # type: ignore[arg-type]


class Blob:
    """A result whose lifetime the test watches."""


alive: list[weakref.ref[Blob]] = []


@pl.app
def make_blob(i: int) -> Blob:
    blob = Blob()
    alive.append(weakref.ref(blob))
    return blob


@pl.app
def measure(blob: Blob) -> int:
    return 1


def test_results_nobody_needs_are_released(threads: pl.Runtime) -> None:
    alive.clear()
    assert threads.run(pl.gather([measure(make_blob(i)) for i in range(50)]).map(sum)) == 50
    gc.collect()
    assert len(alive) == 50
    assert [ref for ref in alive if ref() is not None] == []
    assert threads._interpreter.index == {}


def test_shutdown_stops_every_worker_process() -> None:
    import psutil

    me = psutil.Process(os.getpid())
    before = set(me.children(recursive=True))
    runtime = pl.Runtime(executors=[pl.ProcessExecutor(workers=2)])
    runtime.start()
    assert runtime.run(add(1, 2)) == 3
    children = [p for p in me.children(recursive=True) if p not in before]
    assert len(children) == 3  # the launcher and the 2 workers it forked
    runtime.shutdown()
    _, still = psutil.wait_procs(children, timeout=5)
    assert still == []


def test_a_runtime_after_its_with_block_says_it_was_shut_down() -> None:
    with pl.Runtime(executors=[pl.ThreadExecutor(1)]) as runtime:
        assert runtime.run(add(1, 2), timeout=30) == 3
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for use in (runtime.submit, runtime.run):
            with pytest.raises(RuntimeError, match=r"this Runtime has been shut down; make a new one"):
                use(add(1, 2))
        gc.collect()  # an unawaited coroutine warns when it is collected
    assert [str(w.message) for w in caught] == []


@pl.app
def sleepy(seconds: float) -> float:
    import time

    time.sleep(seconds)
    return seconds


def test_run_with_a_timeout_names_it_and_what_was_still_running_and_cancels_it() -> None:
    import time

    with pl.Runtime(executors=[pl.ProcessExecutor(workers=1)]) as runtime:
        runtime.run(add(1, 2), timeout=30)  # the worker is up: the timeout below is all the task's
        with pytest.raises(TimeoutError) as raised:
            runtime.run(add(sleepy(60), sleepy(61)), timeout=1.5)
        message = str(raised.value)
        assert "run(timeout=1.5): no result in time, so it was cancelled" in message
        assert re.search(r"still running: sleepy\(6[01]\)", message) and "1 steps waiting on inputs" in message
        start = time.monotonic()
        assert runtime.run(add(3, 4), timeout=30) == 7  # the sleeper was killed, its worker replaced
        assert time.monotonic() - start < 30


def test_run_times_out_on_time_even_when_a_map_function_blocks_the_loop(threads: pl.Runtime) -> None:
    import time

    start = time.monotonic()
    with pytest.raises(TimeoutError, match=r"the runtime's loop did not answer: a map or bind function may be"):
        threads.run(pl.pure(2.0).map(time.sleep), timeout=0.5)
    assert time.monotonic() - start < 2.0


def test_an_apps_own_timeout_error_is_not_taken_for_run_timing_out(threads: pl.Runtime) -> None:
    @pl.app
    def times_out() -> None:
        raise TimeoutError("the instrument did not answer")

    with pytest.raises(TimeoutError, match=r"^the instrument did not answer$"):
        threads.run(times_out(), timeout=30)
