"""How an app pickles: by reference to where its module holds it, as pickle does functions.

The standard library's pickle (multiprocessing, ``concurrent.futures``' process pools,
``pickle.dump`` of a result holding an Expr) pickles a function as its module and name. An
app's function is not found by its name, its App is: so the App goes by that reference,
and unpickles as the very app its module holds, whose Exprs keep their keys. An app no
module holds by its name (a lambda, a closure, one made in a function) cannot be found
again: pickle refuses it, naming it. cloudpickle (plait's executors, Dask, joblib) sends
every app by value, as it always has: as it does a function its module does not hold by
its name (it holds the app), and as a worker needs an app of ``__main__`` (not its own), of
a module registered to go by value, or of one it cannot import (another host).
"""

from __future__ import annotations

import importlib
import pickle
import sys
import types
from typing import Any, Protocol

__all__ = ["app_at", "reduce_app"]


class _App(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def __wrapped__(self) -> Any: ...


def reduce_app(app: _App, protocol: int, caller: types.FrameType | None) -> str | tuple[Any, ...]:
    """``app.__reduce_ex__(protocol)``, which ``caller`` (the frame below it) called."""
    if _by_cloudpickle(caller):
        return object.__reduce_ex__(app, protocol)
    module, found = _module_holding(app)
    if not found:
        raise pickle.PicklingError(
            f"app {app.name} of {module} cannot be pickled by reference: pickle sends an app as the "
            f"module and name where it is found, and {module}.{app.name} is not this app (a lambda, a "
            "closure, or an app made in a function). Define it at the top level of a module, or "
            "pickle with cloudpickle (cloudpickle.dumps), which sends it by value"
        )
    return app_at, (module, app.name)


def app_at(module: str, qualname: str) -> Any:
    """The app that ``module`` holds as ``qualname``: what an app pickled by reference unpickles as."""
    found: Any = importlib.import_module(module)
    for part in qualname.split("."):
        found = getattr(found, part)
    if not hasattr(type(found), "__plait_identity__"):  # the module has changed since: not an App any more
        raise pickle.UnpicklingError(f"{module}.{qualname} is a {type(found).__name__}, not a plait app")
    return found


def _module_holding(app: _App) -> tuple[str, bool]:
    """The app's module, and whether it holds the app by the app's name."""
    module = getattr(app.__wrapped__, "__module__", None) or "?"
    found: Any = sys.modules.get(module)
    for part in app.name.split("."):
        found = getattr(found, part, None)
    return module, found is app


def _by_cloudpickle(caller: types.FrameType | None) -> bool:
    """Whether a cloudpickle pickler asks: ``__reduce_ex__`` is not told which pickler asks,
    but a C pickler calls it from the Python frame that called its ``dump``, cloudpickle's own."""
    cloudpickle = sys.modules.get("cloudpickle")
    return (
        caller is not None and cloudpickle is not None and isinstance(caller.f_locals.get("self"), cloudpickle.Pickler)
    )
