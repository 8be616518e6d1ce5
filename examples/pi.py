"""Estimating pi by throwing darts, in plait: the Parsl live-coding session of PyHEP 2019, retold.

Run it with `make demo`, or `python examples/pi.py`. Every step of the original session is
here, in order, each in two styles:

- lazy: calling an app builds an expression (an `Expr`); `run` computes it;
- interactive: `rt.submit` starts work now and gives a future, which you may pass to
  other apps before it has finished, as the talk does with Parsl's AppFutures.
"""

from __future__ import annotations

import math
import random
import time

import plait as pl

# The one line that says where tasks run. Swap it for a ZMQExecutor, or a Slurm-backed one,
# and nothing below changes.
EXECUTORS = [pl.ZMQExecutor(provider=pl.LocalProvider(workers=2))]


@pl.app
def pi_estim_b(guess: int) -> int:
    """The talk's first app: a slow, bad estimate. ``guess`` tells calls apart: plait runs
    equal calls once, so two calls with no arguments would be one piece of work."""
    time.sleep(0.5)
    return 4


@pl.app
def inside(x: float, y: float) -> int:
    """4 when the dart (x, y) lands inside the quarter circle, else 0: their mean tends to pi."""
    return 4 if math.sqrt(x * x + y * y) < 1 else 0


@pl.app
def avg(*xs: float) -> float:
    return sum(xs) / len(xs)


def estimate_pi(n: int) -> pl.Expr[float]:
    """The whole estimate as one expression: n darts and their mean. Nothing runs yet."""
    coords = [(random.random(), random.random()) for _ in range(n)]
    return avg(*[inside(x, y) for x, y in coords])


def main() -> None:
    with pl.Runtime(executors=EXECUTORS) as rt:
        print("1. one call: an Expr describes the work, run() computes it")
        expr = pi_estim_b(1)
        print(f"   {expr!r} -> {rt.run(expr)}")

        print("2. two calls at once: they run concurrently, so this takes ~0.5 s, not 1 s")
        started = time.perf_counter()
        f1, f2 = rt.submit(pi_estim_b(2)), rt.submit(pi_estim_b(3))
        both = (f1.result() + f2.result()) / 2
        print(f"   (f1 + f2) / 2 = {both} in {time.perf_counter() - started:.2f} s")
        # The same, lazily: one expression, one run.
        started = time.perf_counter()
        lazily = rt.run(pl.gather(pi_estim_b(4), pi_estim_b(5)).map(lambda rs: sum(rs) / 2))
        print(f"   lazily: {lazily} in {time.perf_counter() - started:.2f} s")

        print("3. map an app over coordinates")
        coords = [(random.random(), random.random()) for _ in range(9)]
        futures = [rt.submit(inside(x, y)) for x, y in coords]
        print(f"   results: {[f.result() for f in futures]}")
        print(f"   lazily:  {rt.run(pl.traverse(lambda c: inside(*c), coords))}")

        print("4. avg over futures: pass the futures themselves, plait waits for them")
        print(f"   avg(*futures) = {rt.run(avg(*futures)):.3f}")

        print("5. the whole estimate, 500 darts and their mean, all launched at once")
        started = time.perf_counter()
        pi = rt.run(estimate_pi(500))
        print(f"   pi ~ {pi:.3f} (error {abs(pi - math.pi):.3f}) in {time.perf_counter() - started:.2f} s")


if __name__ == "__main__":
    main()
