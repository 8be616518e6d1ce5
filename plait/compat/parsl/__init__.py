"""Parsl's user-facing API on plait: change ``import parsl`` to
``import plait.compat.parsl as parsl`` and the script runs on plait's runtime.

What differs from Parsl, and how to move a script to plait's own idiom:
docs/coming-from-parsl.md.
"""

from plait.compat.parsl.app.app import bash_app, join_app, python_app
from plait.compat.parsl.config import Config
from plait.compat.parsl.data_provider.files import File
from plait.compat.parsl.dataflow.dflow import (
    AUTO_LOGNAME,
    DataFlowKernel,
    DataFlowKernelLoader,
    clear,
    dfk,
    load,
    wait_for_current_tasks,
)
from plait.compat.parsl.executors import HighThroughputExecutor, ThreadPoolExecutor
from plait.compat.parsl.log_utils import set_file_logger, set_stream_logger

__all__ = [
    "AUTO_LOGNAME",
    "Config",
    "DataFlowKernel",
    "DataFlowKernelLoader",
    "File",
    "HighThroughputExecutor",
    "ThreadPoolExecutor",
    "bash_app",
    "clear",
    "dfk",
    "join_app",
    "load",
    "python_app",
    "set_file_logger",
    "set_stream_logger",
    "wait_for_current_tasks",
]
