"""App options: how an app's tasks run, and the keyword options the decorators take."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from plait._spelling import did_you_mean
from plait.dsl._retry import Retry

__all__ = ["AppOptions", "app_options", "typed_signature"]


def _retry_policy(retries: int | Retry | None) -> Retry | None:
    return Retry.of(retries)


def _of_type(kind: type, what: str) -> Callable[[object, attrs.Attribute[Any], object], None]:
    """A validator: the option is a ``kind`` (``what``, as the error says it)."""

    def check(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, kind):
            raise TypeError(f"{attribute.name} must be {what}, not {value!r:.60}")

    return check


def _mapping(resources: object) -> dict[str, Any]:
    if not isinstance(resources, Mapping):
        raise TypeError(f"resources must be a mapping (such as {{'cpus': 2}}), not {resources!r:.60}")
    return dict(resources)


def _names(names: object) -> tuple[str, ...]:
    """Parameter names: a str is one name, not its letters."""
    if isinstance(names, str):
        return (names,)
    found = tuple(names) if isinstance(names, Iterable) else None
    if found is None or not all(isinstance(name, str) for name in found):
        raise TypeError(f"ignore_for_cache must be parameter names, not {names!r:.60}")
    return found


@attrs.frozen
class AppOptions:
    """How an app's tasks run: retries, timeout, executor label, memo, resources."""

    retries: Retry | None = attrs.field(default=None, converter=_retry_policy)
    timeout: float | None = attrs.field(default=None)
    executor: str | None = attrs.field(
        default=None, validator=attrs.validators.optional(_of_type(str, "a label (a str)"))
    )
    cache: bool = attrs.field(default=True, validator=_of_type(bool, "True or False"))
    pure: bool | None = attrs.field(default=None)
    version: str | None = attrs.field(default=None, validator=attrs.validators.optional(_of_type(str, "a str")))
    resources: Mapping[str, Any] = attrs.field(factory=dict, converter=_mapping)
    ignore_for_cache: tuple[str, ...] = attrs.field(default=(), converter=_names)
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
            known = [*valid, *also]
            hint = did_you_mean(f"{name}=", [f"{k}=" for k in known]) or f"the options are {', '.join(known)}"
            raise TypeError(f"{where}: no option {name}=; {hint}")
    if options.get("resources") is None:
        options.pop("resources", None)
    try:
        return AppOptions(**options)
    except (TypeError, ValueError) as error:  # an option's own message, with whose option it is
        raise type(error)(f"{where}: {error}") from None


def typed_signature(decorator: Callable[..., Any]) -> Callable[..., Any]:
    """``decorator``, whose ``**options`` show in ``help()`` and editors as the keyword
    options of its last ``@overload`` (type checkers read the overloads themselves)."""
    options = inspect.signature(typing.get_overloads(decorator)[-1]).parameters.values()
    fn = next(iter(inspect.signature(decorator).parameters.values()))
    decorator.__signature__ = inspect.Signature([fn, *options])  # type: ignore[attr-defined]
    return decorator
