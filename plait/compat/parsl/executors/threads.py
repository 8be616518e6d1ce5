"""``parsl.executors.threads``: where Parsl defines its ThreadPoolExecutor."""

from plait.compat.parsl.executors import ThreadPoolExecutor

__all__ = ["ThreadPoolExecutor"]
