"""examples/pi.ipynb, the seed's session, run cell by cell by a real Jupyter kernel, outputs checked."""

from __future__ import annotations

import math
import random
import re
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

EXAMPLES = Path(__file__).parent.parent / "examples"
RUNTIME = "<Runtime running on processes (ProcessExecutor, 2 workers):"
FUTURE = r"<PlaitFuture at 0x[0-9a-f]+ for pi_estim_b\(1\d\) state=([^>]+)>"


@pytest.fixture(scope="module")
def cells() -> dict[str, Any]:
    notebook = nbformat.read(EXAMPLES / "pi.ipynb", as_version=4)
    client = NotebookClient(notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": EXAMPLES}})
    client.execute()  # raises CellExecutionError naming the cell if any cell fails
    return {cell.id: cell for cell in notebook.cells if cell.cell_type == "code"}


def result(cell: Any, kind: str = "text/plain") -> str:
    (output,) = [o for o in cell.outputs if o.output_type == "execute_result"]
    return str(output.data[kind])


def printed(cell: Any) -> str:
    assert not [o for o in cell.outputs if o.output_type == "stream" and o.name == "stderr"], "a warning or error"
    return "".join(o.text for o in cell.outputs if o.output_type == "stream")


def test_the_runtime_shows_its_executors(cells: dict[str, Any]) -> None:
    assert result(cells["runtime"]) == f"{RUNTIME} tasks 0 running, 0 done>"
    assert "<table>" in result(cells["runtime"], "text/html")


def test_an_expr_is_drawn_and_runs(cells: dict[str, Any]) -> None:
    assert re.fullmatch(r"<Expr pi_estim_b\(1\) [0-9a-f]{12}>", result(cells["expr"]))
    assert ">pi_estim_b(1)</text>" in result(cells["expr"], "image/svg+xml")
    assert result(cells["run"]) == "4"


def test_two_calls_run_at_once(cells: dict[str, Any]) -> None:
    value, seconds = re.fullmatch(r"(\S+) in (\S+) s\n", printed(cells["two-at-once"])).groups()  # type: ignore[union-attr]
    assert value == "4.0"
    assert float(seconds) < 0.9  # two 0.5 s calls one after the other would take 1 s


def test_the_futures_go_from_running_to_finished(cells: dict[str, Any]) -> None:
    states = re.findall(FUTURE, result(cells["watch"]))
    assert len(states) == 6 and set(states) <= {"pending", "running"}
    states = re.findall(FUTURE, result(cells["watch-again"]))
    assert states == ["finished returned int"] * 6


def test_darts_and_their_average_over_futures(cells: dict[str, Any]) -> None:
    random.seed(2019)  # as the notebook does: the same darts, scored here
    hits = [4 if math.hypot(random.random(), random.random()) < 1 else 0 for _ in range(9)]
    assert printed(cells["darts"]) == f"{hits}\n{sum(hits) / 9}\n"


def test_the_whole_estimate_is_drawn_folded_and_estimates_pi(cells: dict[str, Any]) -> None:
    svg = result(cells["estimate-graph"], "image/svg+xml")
    assert ">inside \N{MULTIPLICATION SIGN}500</text>" in svg and ">501 nodes in 2 boxes</text>" in svg
    estimate = float(re.fullmatch(r"pi ~ (\S+)\n", printed(cells["estimate"]))[1])  # type: ignore[index]
    assert abs(estimate - math.pi) < 0.3  # 500 darts: the error's deviation is 0.07
    assert result(cells["estimate"]).endswith("state=finished returned float>")


def test_an_impure_app_runs_each_call_and_is_awaited_without_a_warning(cells: dict[str, Any]) -> None:
    estimate = float(re.fullmatch(r"pi ~ (\S+)\n", printed(cells["impure"]))[1])  # type: ignore[index]
    assert abs(estimate - math.pi) < 0.05  # 160 000 darts: the deviation is 0.004
    # 1 + 2 + 6 pi_estim_b, 9 inside + avg, 500 inside + avg, and all 8 equal hits(20_000) calls
    assert result(cells["end"]) == f"{RUNTIME} tasks 0 running, 528 done>"
