"""A stand-in Kubernetes API server on loopback: the Pod and Secret calls plait makes, answered in the API's shapes.

No cluster can run here. This server answers create/list/delete of Pods and create/delete
of Secrets as the API does (JSON bodies, ``Status`` errors), so the real ``kubernetes``
client talks HTTP to it; with ``run=True`` it is also the kubelet: each Pod's command runs
as a local process with the Pod's environment, and its Secret volumes are written to a
private directory (each file with the volume's ``defaultMode``) that stands for the mount
path in the command, so a real pool can start from a manifest and connect back.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse


class FakeCluster:
    def __init__(self, run: bool = False) -> None:
        self.run = run
        self.pods: dict[str, dict[str, Any]] = {}
        self.secrets: dict[str, dict[str, Any]] = {}
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.mounts: dict[str, Path] = {}  # Pod name -> the directory its Secret volumes were written to
        self.requests: list[tuple[str, str, Any]] = []  # method, path with query, JSON body
        self.refuse: dict[str, dict[str, Any]] = {}  # by "POST pods", "DELETE secrets"...: the Status to answer
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def kubeconfig(self, path: Path) -> str:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "fake", "user": {"token": "not-a-secret"}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
            "current-context": "fake",
        }
        path.write_text(json.dumps(config))  # YAML reads JSON
        return str(path)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        for name in list(self.processes):
            self._kill(name)

    # -- what the API does ------------------------------------------------------------------

    def route(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, dict[str, Any]]:
        """The answer to one request, as the API server's REST paths give it."""
        parts = path.strip("/").split("/")  # api v1 namespaces NS pods|secrets [NAME]
        if parts[:3] != ["api", "v1", "namespaces"] or len(parts) < 5 or parts[4] not in ("pods", "secrets"):
            return 404, _status(404, "NotFound", f"no route {path}")
        namespace, kind = parts[3], parts[4]
        refusal = self.refuse.get(f"{method} {kind}")
        if refusal is not None:
            return refusal["code"], refusal
        if method == "POST":
            return self.create(namespace, kind, body)
        if method == "GET" and kind == "pods":
            return 200, self.list(namespace, query.get("labelSelector", [""])[0])
        if method == "DELETE":
            return self.delete(namespace, kind, parts[5])
        return 405, _status(405, "MethodNotAllowed", f"{method} {path}")

    def create(self, namespace: str, kind: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        name = body["metadata"]["name"]
        stored = self._stored(kind)
        with self._lock:
            if name in stored:
                return 409, _status(409, "AlreadyExists", f'{kind} "{name}" already exists')
            stored[name] = body
            if self.run and kind == "pods":
                self._start(name, body)
        return 201, ({**body, "status": {"phase": "Pending"}} if kind == "pods" else body)

    def _start(self, name: str, pod: dict[str, Any]) -> None:
        """As the kubelet: mount the Pod's Secrets (here: files in a private directory) and run its command.

        A Pod whose Secret is not there stays Pending, as the kubelet waits for it.
        """
        container = pod["spec"]["containers"][0]
        env = {**os.environ, **{item["name"]: item["value"] for item in container.get("env", [])}}
        command = list(container["command"])
        volumes = {volume["name"]: volume for volume in pod["spec"].get("volumes", [])}
        for mount in container.get("volumeMounts", []):
            secret = volumes[mount["name"]]["secret"]
            stored = self.secrets.get(secret["secretName"])
            if stored is None or stored["metadata"]["namespace"] != pod["metadata"]["namespace"]:
                return
            directory = Path(tempfile.mkdtemp(prefix="fake-kubelet-"))
            self.mounts[name] = directory
            for item, data in stored["data"].items():
                (directory / item).write_bytes(base64.b64decode(data))
                (directory / item).chmod(secret.get("defaultMode", 0o644))  # the API's default mode
            command = [arg.replace(mount["mountPath"], str(directory)) for arg in command]
        self.processes[name] = subprocess.Popen(command, env=env, start_new_session=True)

    def list(self, namespace: str, selector: str) -> dict[str, Any]:
        wanted = dict(term.split("=", 1) for term in selector.split(",") if term)
        with self._lock:
            items = [
                {**pod, "status": {"phase": self._phase(name)}}
                for name, pod in self.pods.items()
                if pod["metadata"]["namespace"] == namespace
                and all(pod["metadata"]["labels"].get(k) == v for k, v in wanted.items())
            ]
        return {"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "1"}, "items": items}

    def delete(self, namespace: str, kind: str, name: str) -> tuple[int, dict[str, Any]]:
        with self._lock:
            body = self._stored(kind).pop(name, None)
            if kind == "pods":
                self._kill(name)
        if body is None:
            return 404, _status(404, "NotFound", f'{kind} "{name}" not found')
        return 200, body

    def _stored(self, kind: str) -> dict[str, dict[str, Any]]:
        return self.pods if kind == "pods" else self.secrets

    def _phase(self, name: str) -> str:
        process = self.processes.get(name)
        code = process.poll() if process is not None else None
        if process is None:
            return "Pending"
        return "Running" if code is None else "Succeeded" if code == 0 else "Failed"

    def _kill(self, name: str) -> None:
        process = self.processes.pop(name, None)
        if process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        mounted = self.mounts.pop(name, None)
        if mounted is not None:
            shutil.rmtree(mounted)


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason, "message": message,
            "code": code}  # fmt: skip


def _handler(cluster: FakeCluster) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # quiet
            pass

        def _answer(self, code: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _route(self, method: str) -> None:
            url = urlparse(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else {}
            cluster.requests.append((method, self.path, body))
            self._answer(*cluster.route(method, url.path, parse_qs(url.query), body))

        def do_POST(self) -> None:
            self._route("POST")

        def do_GET(self) -> None:
            self._route("GET")

        def do_DELETE(self) -> None:
            self._route("DELETE")

    return Handler
