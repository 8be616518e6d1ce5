"""A real Jupyter kernel (ipykernel) for tests: run cells, interrupt them, read what they sent."""

from __future__ import annotations

import queue
import time
from typing import Any

import attrs
from jupyter_client.blocking import BlockingKernelClient
from jupyter_client.manager import KernelManager, start_new_kernel


@attrs.frozen
class Cell:
    """What one execution sent: its iopub messages (type, content) and its reply's status."""

    messages: list[tuple[str, dict[str, Any]]]
    status: str
    seconds: float

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [content for msg_type, content in self.messages if msg_type == kind]

    @property
    def error(self) -> str | None:
        errors = self.of("error")
        return errors[0]["ename"] if errors else None

    @property
    def result(self) -> str:
        """The cell's value as text, or its error and stderr, to show in a failed assert."""
        results = self.of("execute_result")
        if results:
            return str(results[0]["data"]["text/plain"])
        shown = [c.get("text", "") for c in self.of("stream")] + [str(c.get("evalue")) for c in self.of("error")]
        return f"<no result: {self.error}> {' '.join(shown)}"


class Kernel:
    """One ipykernel process, driven cell by cell as a notebook frontend would."""

    def __init__(self) -> None:
        manager, client = start_new_kernel(kernel_name="python3", startup_timeout=60)
        self.manager: KernelManager = manager
        self.client: BlockingKernelClient = client

    def run(self, code: str, *, timeout: float = 60, interrupt_after: float | None = None) -> Cell:
        """Execute ``code``; with ``interrupt_after``, interrupt the kernel (SIGINT) that many seconds in."""
        started = time.monotonic()
        msg_id = self.client.execute(code)
        messages: list[tuple[str, dict[str, Any]]] = []
        while True:
            now = time.monotonic()
            if interrupt_after is not None and now - started >= interrupt_after:
                self.manager.interrupt_kernel()
                interrupt_after = None
            if now - started > timeout:
                raise TimeoutError(f"cell did not finish in {timeout} s: {code!r}")
            try:
                message = self.client.get_iopub_msg(timeout=0.05)
            except queue.Empty:
                continue
            if message["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = message["msg_type"], message["content"]
            if kind == "status" and content["execution_state"] == "idle":
                break
            messages.append((kind, content))
        reply = self.client.get_shell_msg(timeout=timeout)
        return Cell(messages, reply["content"]["status"], time.monotonic() - started)

    def close(self) -> None:
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)
