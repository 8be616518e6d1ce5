"""``DataFuture``: a file an app writes, ready when the app has finished."""

from __future__ import annotations

import concurrent.futures
from typing import Any

from plait.compat.parsl.data_provider.files import File

__all__ = ["DataFuture"]


class DataFuture(concurrent.futures.Future[File]):
    """The future of one of an app's ``outputs=[File(...)]``: its result is the File.

    It fails as the app fails. Pass it in another app's ``inputs=`` to wait for the file.
    """

    def __init__(self, fut: concurrent.futures.Future[Any], file_obj: File, tid: int | None = None) -> None:
        super().__init__()
        if not isinstance(file_obj, File):
            raise TypeError(f"DataFuture tracks a File, not a {type(file_obj).__name__}")
        self._tid = tid
        self.file_obj = file_obj
        self.parent = fut
        fut.add_done_callback(self._parent_done)

    def _parent_done(self, parent: concurrent.futures.Future[Any]) -> None:
        error = None if parent.cancelled() else parent.exception()
        if parent.cancelled():
            self.set_exception(concurrent.futures.CancelledError())
        elif error is not None:
            self.set_exception(error)
        else:
            self.set_result(self.file_obj)

    @property
    def tid(self) -> int | None:
        """The id of the task that writes the file."""
        return self._tid

    @property
    def filepath(self) -> str:
        return self.file_obj.filepath

    @property
    def filename(self) -> str:
        return self.filepath

    def cancel(self) -> bool:
        raise NotImplementedError("cancel the app's future, not one of its DataFutures")

    def running(self) -> bool:
        return self.parent.running()

    def __repr__(self) -> str:
        done = "done" if self.done() else "not done"
        name = f"{type(self).__module__}.{type(self).__qualname__}"
        return f"<{name} object at {hex(id(self))} representing {self.file_obj!r} {done}>"
