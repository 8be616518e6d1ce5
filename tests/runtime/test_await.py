"""await an Expr or a future from async code, on a loop other than the runtime's."""

from __future__ import annotations

import asyncio

import plait as pl
from tests.backends.engine_apps import avg, inside


def test_await_a_future_and_an_expr_from_another_loop() -> None:
    async def main(rt: pl.Runtime) -> tuple[int, float]:
        future = rt.submit(inside(0.1, 0.2))
        hits = await future
        mean = await avg(future, inside(0.9, 0.9))  # an Expr: runs on the current runtime, rt
        return hits, mean

    with pl.Runtime([pl.ThreadExecutor(2)]) as rt:
        assert asyncio.run(main(rt)) == (4, 2.0)
