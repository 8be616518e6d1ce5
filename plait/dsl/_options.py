"""App options: how an app's tasks run, and the keyword options the decorators take."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from plait.dsl._retry import Retry

__all__ = ["AppOptions", "app_options", "typed_signature"]


def _retry_policy(retries: int | Retry | None) -> Retry | None:
    return Retry.of(retries)


@attrs.frozen
class AppOptions:
    """How an app's tasks run: retries, timeout, executor label, memo, resources."""

    retries: Retry | None = attrs.field(default=None, converter=_retry_policy)
    timeout: float | None = attrs.field(default=None)
    executor: str | None = None
    cache: bool = True
    pure: bool | None = attrs.field(default=None)
    version: str | None = None
    resources: Mapping[str, Any] = attrs.field(factory=dict, converter=dict)
    ignore_for_cache: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    # Files the task writes (pl.File), or names of parameters whose arguments are paths it writes
    outputs: tuple[Any, ...] = attrs.field(default=(), converter=tuple)

    @property
    def memoized(self) -> bool:
        """Whether results are kept in the memo: ``cache`` and not ``pure=False``."""
        return self.cache and self.pure is not False

    @timeout.validator
    def _check_timeout(self, _: attrs.Attribute[float | None], value: float | None) -> None:
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or not value > 0):
            raise ValueError(f"timeout must be a positive number of seconds, not {value!r}")

    @pure.validator
    def _check_pure(self, _: attrs.Attribute[bool | None], value: bool | None) -> None:
        if value is not None and not isinstance(value, bool):
            raise TypeError(f"pure must be True, False or None (assumed pure, and checked), not {value!r}")


def app_options(options: dict[str, Any], where: str, also: Iterable[str] = ()) -> AppOptions:
    """The AppOptions that ``options`` name; an unknown name is refused with the nearest
    valid one (``also``: names the caller takes itself, which it has already removed)."""
    valid = [f.name for f in attrs.fields(AppOptions)]
    for name in options:
        if name not in valid:
            import difflib  # for the error only: ~1 ms of every start-up otherwise

            near = difflib.get_close_matches(name, [*valid, *also], n=1)
            hint = f"did you mean {near[0]}=?" if near else f"the options are {', '.join([*valid, *also])}"
            raise TypeError(f"{where}: no option {name}=; {hint}")
    if options.get("resources") is None:
        options.pop("resources", None)
    return AppOptions(**options)


def typed_signature(decorator: Callable[..., Any]) -> Callable[..., Any]:
    """``decorator``, whose ``**options`` show in ``help()`` and editors as the keyword
    options of its last ``@overload`` (type checkers read the overloads themselves)."""
    options = inspect.signature(typing.get_overloads(decorator)[-1]).parameters.values()
    fn = next(iter(inspect.signature(decorator).parameters.values()))
    decorator.__signature__ = inspect.Signature([fn, *options])  # type: ignore[attr-defined]
    return decorator
