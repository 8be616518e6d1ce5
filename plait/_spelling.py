"""What a misspelt name may have meant, said in its error: imported only when one is raised."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["did_you_mean"]


def did_you_mean(name: str, names: Iterable[str]) -> str | None:
    """A question naming those of ``names`` closest to ``name``, case aside; None if none is.

    >>> did_you_mean("Runtim", ["Runtime", "run", "app"]), did_you_mean("zmqexecutor", ["ZMQExecutor"])
    ("did you mean 'Runtime' or 'run'?", "did you mean 'ZMQExecutor'?")
    >>> did_you_mean("tpyo", ["Runtime"]) is None
    True
    """
    import difflib  # ~1 ms, for an error only

    by_lower = {candidate.lower(): candidate for candidate in names}
    near = [by_lower[lower] for lower in difflib.get_close_matches(name.lower(), by_lower, n=3)]
    if not near:
        return None
    first = f"{', '.join(map(repr, near[:-1]))} or " if len(near) > 1 else ""
    return f"did you mean {first}{near[-1]!r}?"
