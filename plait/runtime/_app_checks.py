"""Whether a runtime can run an app: the executor it asks for is there and can honour it.

Admission checks each graph's calls, and ``Runtime.submit`` the calls at a submission's
top in the caller's thread, so the error points at the caller's line. Both check a run of
calls of one app once: a gathered graph's calls are mostly of a few apps, in runs.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from plait.backends import Executor
from plait.dsl import App, Expr
from plait.dsl._expr import Call

__all__ = ["AppChecks"]


class AppChecks:
    """A base of ``Interpreter``: the checks read its executors."""

    executors: dict[str, Executor]
    default_label: str
    _submitted_app: App[Any, Any] | None = None  # the last app check_submitted passed

    def _check_call(self, expr: Expr[Any], checked: App[Any, Any] | None) -> App[Any, Any] | None:
        """``check_app`` for ``expr``'s app if it is a call of another app than ``checked``;
        the app checked last."""
        if isinstance(expr, Call) and expr.app is not checked:
            app: App[Any, Any] = expr.app
            self.check_app(app)
            return app
        return checked

    def check_calls(self, exprs: Iterable[Expr[Any]]) -> None:
        """``check_app`` for the apps of the calls among ``exprs``: once per run of calls of one
        app (a gathered graph's children are mostly that), as admission checks them."""
        checked = None
        for expr in exprs:
            checked = self._check_call(expr, checked)

    def check_submitted(self, expr: Expr[Any]) -> None:
        """``check_calls`` for a submission's top and its children, in the caller's thread.

        The seed's eager idiom submits calls of one app without inputs, thousands a second:
        the app checked last is remembered (it passed; a runtime's executors do not change),
        so each such submission costs an attribute read, not the check.
        """
        if isinstance(expr, Call) and not expr.deps:
            if expr.app is not self._submitted_app:
                self.check_app(expr.app)
                self._submitted_app = expr.app  # threads that submit at once at worst check again
        else:
            self.check_calls((expr, *expr.children()))

    def check_app(self, app: App[Any, Any]) -> None:
        """Raise if ``app`` asks for an executor this runtime lacks, or one that cannot honour it."""
        label = app.options.executor or self.default_label
        executor = self.executors.get(label)
        if executor is None:
            raise ValueError(
                f"app {app.name} asks for executor {label!r}, which this runtime does not have "
                f"(it has {', '.join(map(repr, self.executors))})"
            )
        if app.options.timeout is not None and not executor.can_kill:
            raise ValueError(
                f"app {app.name} has timeout={app.options.timeout}, but executor {label!r} "
                f"({type(executor).__name__}) cannot stop a running task; run it on a ProcessExecutor"
            )
