"""The ZeroMQ pilot-job executor: worker pools connect to the driver and take tasks by credit."""

from typing import TYPE_CHECKING

# Imported when first used (see plait._lazy): a pool runs plait.backends.zmq._pool only.
if TYPE_CHECKING:
    from plait.backends.zmq._executor import ZMQExecutor
else:
    from plait._lazy import exports

    __getattr__, __dir__ = exports(__name__, {"plait.backends.zmq._executor": ["ZMQExecutor"]})

__all__ = ["ZMQExecutor"]
