"""Parsl's logging helpers (``parsl.set_stream_logger``, ``parsl.set_file_logger``).

The name ``parsl`` (the default) stands for plait's own loggers, which log this run's work.
Each helper returns a function that removes the handler it added.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import IO

__all__ = ["set_file_logger", "set_stream_logger"]

_FORMAT = "%(asctime)s %(name)s:%(lineno)d %(processName)s(%(process)d) %(threadName)s %(funcName)s [%(levelname)s] %(message)s"  # noqa: E501


def set_stream_logger(
    name: str = "parsl", level: int = logging.DEBUG, format_string: str | None = None, stream: IO[str] | None = None
) -> Callable[[], None]:
    """Log ``name`` (``parsl``: plait's loggers) at ``level`` to ``stream`` (stderr)."""
    return _attach(logging.StreamHandler(stream), name, level, format_string)


def set_file_logger(
    filename: str, name: str = "parsl", level: int = logging.DEBUG, format_string: str | None = None
) -> Callable[[], None]:
    """Log ``name`` (``parsl``: plait's loggers) at ``level`` to ``filename``."""
    return _attach(logging.FileHandler(filename), name, level, format_string)


def _attach(handler: logging.Handler, name: str, level: int, format_string: str | None) -> Callable[[], None]:
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter(format_string or _FORMAT, datefmt="%Y-%m-%d %H:%M:%S"))
    logger = logging.getLogger("plait" if name == "parsl" else name)
    before = logger.level
    logger.setLevel(min(before or level, level))
    logger.addHandler(handler)

    def remove() -> None:
        logger.removeHandler(handler)
        logger.setLevel(before)
        handler.close()

    return remove
