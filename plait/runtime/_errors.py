"""Failures the runtime reports about the graph, rather than about one task."""

from __future__ import annotations

__all__ = ["DependencyError", "root_cause"]

_PATH_KEEP = 8  # a failure deep in a long chain keeps its ends, not every step
_STEP_KEEP = 80  # and a step with a long label keeps its start: the message stays small


class DependencyError(Exception):
    """A task could not run because something it needs failed.

    ``root`` is the exception that started it; ``path`` names the work it passed
    through, from the failed task to this one (long paths keep their two ends).
    """

    __module__ = "plait"  # tracebacks name it as users import it, not by its private module

    def __init__(self, root: BaseException, path: tuple[str, ...]) -> None:
        super().__init__(root, path)
        self.root = root
        self.path = path
        self.__cause__ = root

    def __str__(self) -> str:
        steps = " → ".join(self.path)
        return f"{self.path[0]} failed with {type(self.root).__name__}: {self.root}\n  path: {steps}"

    def __reduce__(self) -> tuple[type[DependencyError], tuple[BaseException, tuple[str, ...]]]:
        return (DependencyError, (self.root, self.path))

    @classmethod
    def caused_by(cls, error: BaseException, failed: str, dependent: str) -> DependencyError:
        """The error ``dependent`` gets when its input ``failed`` ended with ``error``.

        >>> e = DependencyError.caused_by(ZeroDivisionError("x"), "f(0)", "g(…)")
        >>> DependencyError.caused_by(e, "g(…)", "h(…)").path
        ('f(0)', 'g(…)', 'h(…)')
        """
        if isinstance(error, DependencyError):
            path = (*error.path, _step(dependent))
            if len(path) > _PATH_KEEP:
                path = (*path[:2], "…", *path[-(_PATH_KEEP - 3) :])
            return cls(error.root, path)
        return cls(error, (_step(failed), _step(dependent)))


def _step(label: str) -> str:
    return label if len(label) <= _STEP_KEEP else label[: _STEP_KEEP - 1] + "…"


def root_cause(error: BaseException) -> BaseException:
    """The exception a failure started from."""
    return error.root if isinstance(error, DependencyError) else error
