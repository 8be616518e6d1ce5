"""The ZeroMQ pilot-job executor: worker pools connect to the driver and take tasks by credit."""

from plait.backends.zmq._executor import ZMQExecutor

__all__ = ["ZMQExecutor"]
