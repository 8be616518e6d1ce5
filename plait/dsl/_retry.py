"""Retry policies: values that say whether, and after how long, to try a task again."""

from __future__ import annotations

import random
from collections.abc import Callable

import attrs

from plait._tracebacks import user_facing

__all__ = ["Constant", "Exponential", "Retry", "constant", "exponential"]


@attrs.frozen
class Constant:
    """Wait the same time before every retry."""

    seconds: float = 0.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait before attempt number ``attempt`` (the first retry is 2).

        >>> Constant(0.5).delay(7)
        0.5
        """
        return self.seconds


@attrs.frozen
class Exponential:
    """Wait ``base * factor ** (attempt - 2)`` seconds, at most ``max``."""

    base: float = 0.1
    factor: float = 2.0
    max: float = 30.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait before attempt number ``attempt`` (the first retry is 2).

        >>> [Exponential(0.1, 2, 0.5).delay(n) for n in (2, 3, 4, 5)]
        [0.1, 0.2, 0.4, 0.5]
        """
        return float(min(self.max, self.base * self.factor ** max(0, attempt - 2)))


def constant(seconds: float = 0.0) -> Constant:
    """A backoff that always waits ``seconds``."""
    return Constant(seconds)


def exponential(base: float = 0.1, *, factor: float = 2.0, max: float = 30.0) -> Exponential:
    """A backoff that waits ``base``, then ``base * factor``, ... up to ``max`` seconds."""
    return Exponential(base, factor, max)


def _positive(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 1:
        raise ValueError(f"Retry.{attribute.name} must be at least 1, not {value}")


def _fraction(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"Retry.{attribute.name} must be between 0 and 1, not {value}")


def _exception_types(value: object) -> tuple[type[BaseException], ...]:
    types = value if isinstance(value, tuple) else (value,)
    for t in types:
        if not (isinstance(t, type) and issubclass(t, BaseException)):
            raise TypeError(f"Retry(on=...) takes exception types, not {t!r}")
    return types


@user_facing
@attrs.frozen
class Retry:
    """How many times to try a task, which failures count, and how long to wait.

    ``attempts`` counts every try, the first included: ``Retry(attempts=3)`` retries twice.

    >>> policy = Retry(attempts=3, backoff=constant(1.0), on=(OSError,))
    >>> [policy.delay(OSError("disk"), attempt=n) for n in (2, 3, 4)]
    [1.0, 1.0, None]
    >>> policy.delay(ValueError("bad"), attempt=2) is None
    True
    """

    attempts: int = attrs.field(default=1, validator=_positive)
    backoff: Constant | Exponential = Constant()
    jitter: float = attrs.field(default=0.0, validator=_fraction)
    on: tuple[type[BaseException], ...] = attrs.field(default=(Exception,), converter=_exception_types)
    when: Callable[[BaseException], bool] | None = None

    def delay(self, error: BaseException, attempt: int) -> float | None:
        """Seconds to wait before try number ``attempt``, or None: do not retry."""
        if attempt > self.attempts or not isinstance(error, self.on):
            return None
        if self.when is not None and not self.when(error):
            return None
        seconds = self.backoff.delay(attempt)
        if self.jitter:
            seconds *= 1.0 + random.uniform(-self.jitter, self.jitter)
        return max(0.0, seconds)

    @classmethod
    def of(cls, retries: int | Retry | None) -> Retry | None:
        """A policy from an app's ``retries=``: a count of retries, a Retry, or None.

        >>> Retry.of(2).attempts
        3
        """
        if retries is None or isinstance(retries, Retry):
            return retries
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise TypeError(f"retries must be a count of retries (int >= 0) or a Retry, not {retries!r}")
        return cls(attempts=retries + 1)
