"""The Parsl live-coding session of PyHEP 2019 (/work/shared/notes/origin-parsl-live-coding.txt),
as the speaker typed it, with one change: ``import parsl`` became the line below.

Two things the notes' export lost are put back as the session ran them: the ``@python_app``
decorators (the calls return AppFutures) and the ``else:`` in ``pi_estim_E`` (the
results show 4s and 0s). Run it with ``python examples/seed_parsl.py``.
"""

import plait.compat.parsl as parsl  # was: import parsl  # noqa: PLR0402
from plait.compat.parsl import python_app  # was: from parsl import python_app

parsl.load()

# help(parsl) # or online:

import time  # noqa: E402, F401 - the session imported it


def pi_estim_A():
    return 4


print(pi_estim_A())


@python_app
def pi_estim_B():
    return 4


future = pi_estim_B()
print(future)
print(future.result())

# so here we get some concurrency: this will take 5 seconds, not 10 seconds...
f1 = pi_estim_B()
f2 = pi_estim_B()
print((f1.result() + f2.result()) / 2)

# now move towards better pi estimation...
# circle inscribed in a square... pick points.

import random  # noqa: E402

coords = [(random.random(), random.random()) for _ in range(1, 10)]
print(coords)


@python_app
def pi_estim_D(coords):
    (x, y) = coords  # noqa: RUF059
    return 4


fs = list(map(pi_estim_D, coords))
print(fs)
rs = [f.result() for f in fs]
print(rs)

# now implement circle inside square

import math  # noqa: E402


@python_app
def pi_estim_E(coords):
    (x, y) = coords
    if math.sqrt(x * x + y * y) >= 1:
        return 0
    else:
        return 4


fs = list(map(pi_estim_E, coords))
rs = [f.result() for f in fs]
print(rs)
print(sum(rs) / len(rs))


@python_app
def avg(*args):
    return sum(args) / len(args)


# i'll pass in the *futures* here, not the results
# and parsl will block until all those futures are done (which they are)
# and then run the code
af = avg(*fs)
print(af.result())


def estimate_pi():
    coords = [(random.random(), random.random()) for _ in range(1, 500)]
    fs = list(map(pi_estim_E, coords))
    return avg(*fs)


f = estimate_pi()
print(f.result())
print(f)
