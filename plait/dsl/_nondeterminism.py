"""What varies from call to call: the common sources of nondeterminism an app may read.

An app that reads one (``random.random``, ``time.time``, …) is likely impure: its calls
with equal arguments would share one result. Found by identity, never by calling anything.
"""

from __future__ import annotations

import sys

__all__ = ["nondeterminism"]

_NON_DETERMINISTIC_TIME = (
    "time", "time_ns", "perf_counter", "perf_counter_ns", "monotonic", "monotonic_ns",
    "process_time", "process_time_ns", "thread_time", "thread_time_ns", "clock_gettime",
)  # fmt: skip


def nondeterminism(obj: object) -> str | None:
    """The name of a common source of varying results that ``obj`` is, or None.

    >>> import random, time
    >>> nondeterminism(random.random), nondeterminism(time.time), nondeterminism(time.sleep)
    ('random.random', 'time.time', None)
    >>> nondeterminism(random.Random(3).random) is None
    True
    """
    owner = getattr(obj, "__self__", None)
    name = getattr(obj, "__name__", "")
    rng = sys.modules.get("random")
    if rng is not None and (owner is getattr(rng, "_inst", None) or _is_subclass(obj, rng.SystemRandom)):
        return f"random.{name}"
    nprandom = sys.modules.get("numpy.random")
    if nprandom is not None and owner is getattr(getattr(nprandom, "mtrand", None), "_rand", None):
        return f"numpy.random.{name}"
    for module, names in _KNOWN:
        found = sys.modules.get(module)
        if found is not None and name in names and getattr(found, name, None) is obj:
            return f"{module}.{name}"
    dt = sys.modules.get("datetime")
    if dt is not None and owner in (dt.datetime, dt.date) and name in ("now", "today", "utcnow"):
        return f"datetime.{owner.__name__}.{name}"
    return None


_KNOWN: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("time", _NON_DETERMINISTIC_TIME),
    ("os", ("urandom", "getrandom")),
    ("uuid", ("uuid1", "uuid4")),
    ("secrets", ("token_bytes", "token_hex", "token_urlsafe", "randbelow", "randbits", "choice")),
)


def _is_subclass(obj: object, cls: type) -> bool:
    return isinstance(obj, type) and issubclass(obj, cls)
