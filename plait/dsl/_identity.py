"""An app's identity: what its keys say the app is (module, name, code, reach, or version=).

Also the unique bytes that keep a key from being shared: for calls of an impure app, and
for an app whose identity cannot be hashed when it is not memoized.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from typing import Any

from plait.dsl._options import AppOptions
from plait.dsl._token import Untokenizable, code_token, digest, token_of

__all__ = ["SELF", "identity_of", "unique"]

# What an app that calls itself stands for while its identity is being made.
SELF = b"this app: "


def unique() -> bytes:
    """Bytes no other call of this function returns, in any process.

    >>> unique() != unique()
    True
    """
    # A random prefix per process and a counter: a uuid4 per call costs a system call,
    # which was 40 % of building a million cache=False calls.
    return _unique_prefix + next(_unique_counter).to_bytes(8, "little")


def _reseed_unique() -> None:
    global _unique_prefix, _unique_counter
    _unique_prefix, _unique_counter = os.urandom(8), itertools.count()


_unique_prefix = b""
_unique_counter = itertools.count()
_reseed_unique()
os.register_at_fork(after_in_child=_reseed_unique)  # a forked child must not repeat its parent's


def identity_of(fn: Callable[..., Any], options: AppOptions, name: str, reach: bytes) -> bytes:
    """Module + qualname + the code's hash (closure included) + its reach, or the explicit version."""
    where = f"{getattr(fn, '__module__', '?')}.{name}".encode()
    inner = getattr(fn, "__plait_inner__", None)
    if inner is not None:  # a wrapper plait made (a shell command, an output check): its fn + settings
        return digest(b"w", identity_of(inner[0], options, name, reach), token_of(inner[1]))
    if options.version is not None:
        return digest(b"v", where, options.version.encode())
    code = getattr(fn, "__code__", None)
    if code is None:
        return digest(b"n", where)
    try:
        closure = tuple(c.cell_contents for c in getattr(fn, "__closure__", None) or ())
        extra = token_of((closure, getattr(fn, "__defaults__", None), getattr(fn, "__kwdefaults__", None)))
    except Untokenizable as error:
        if not options.memoized:
            return digest(b"u", where, unique())
        raise TypeError(
            f"app {name}: its closure holds a {error.value_type.__qualname__}, which plait "
            "cannot hash; give the app an explicit version=... or cache=False"
        ) from None
    return digest(b"c", where, code_token(code), extra, reach)
