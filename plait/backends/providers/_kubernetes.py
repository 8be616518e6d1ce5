"""KubernetesProvider: blocks as Pods, through the official ``kubernetes`` client.

A block is one Pod (``restartPolicy: Never``) running the pool in ``image``; the pool
connects back to the executor, so the executor's ``address`` must be reachable from
the cluster's Pods. ``manifest`` renders the Pod without submitting, as ``job_script``
does for batch schedulers. Status is one list call for all of this provider's Pods.
A file the command names with ``--key-file`` (a pool's CurveZMQ keys, on the driver's
machine) reaches the Pod as a Secret of its own, mounted read-only; the command is
told the path inside the Pod, and no key is ever in the Pod's manifest.
The client is imported when the provider first talks to a cluster
(``pip install plait[kubernetes]``), so rendering needs nothing installed.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import re
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import attrs

from plait.backends.providers._base import Command, JobState, argv_of, move_key_file
from plait.backends.providers._container import image_command
from plait.backends.providers._scheduler import SchedulerError, parse_walltime

__all__ = ["SECRET_MOUNT", "KubernetesProvider", "parse_pods"]

log = logging.getLogger("plait.providers")

_MANAGED_BY = "app.kubernetes.io/managed-by"
_PROVIDER = "plait.dev/provider"  # which provider made the Pod: one list call finds all of its blocks
_NAME = re.compile(r"[^a-z0-9-]+")
SECRET_MOUNT = "/var/run/secrets/plait"  # where the Secret is mounted in every Pod
_SECRET_ITEM = "pool.keys"  # the file's name under the mount (its key in the Secret)
_SECRET_VOLUME = "plait-keys"
_CPU = re.compile(r"^(\d+(?:\.\d+)?)(m?)$")
# A waiting container's reasons that mean the Pod will never start by itself.
_NEVER_STARTS = ("ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull", "CreateContainerConfigError")
_PHASES = {
    "Pending": JobState.PENDING,
    "Running": JobState.RUNNING,
    "Succeeded": JobState.COMPLETED,
    "Failed": JobState.FAILED,
}


def parse_pods(pod_list: Mapping[str, Any]) -> dict[str, JobState]:
    """States by Pod name from a ``PodList`` as the API returns it (JSON).

    A Pending Pod whose container cannot be pulled or configured is FAILED (it would wait
    for ever); a Pod past ``activeDeadlineSeconds`` is TIMEOUT.

    >>> parse_pods({"items": [{"metadata": {"name": "p"}, "status": {"phase": "Running"}}]})
    {'p': <JobState.RUNNING: 'running'>}
    """
    states = {}
    for pod in pod_list.get("items") or []:
        status = pod.get("status") or {}
        state = _PHASES.get(status.get("phase", ""), JobState.UNKNOWN)
        if state is JobState.FAILED and status.get("reason") == "DeadlineExceeded":
            state = JobState.TIMEOUT
        waiting = [(s.get("state") or {}).get("waiting") or {} for s in status.get("containerStatuses") or []]
        if state is JobState.PENDING and any(w.get("reason") in _NEVER_STARTS for w in waiting):
            state = JobState.FAILED
        states[pod["metadata"]["name"]] = state
    return states


def _cores(cpu: str) -> float:
    """Cores in a Kubernetes CPU quantity: ``'2'``, ``'1.5'``, ``'500m'``."""
    match = _CPU.match(cpu)
    if match is None:
        raise ValueError(f"KubernetesProvider(cpu={cpu!r}): a CPU quantity is cores ('2', '1.5') or millicores")
    return float(match[1]) / (1000 if match[2] else 1)


def _quantity(value: str | float) -> str:
    return str(value)


def _secret_of(pod: str) -> str:
    """The name of the Secret of the Pod ``pod``: found from the Pod alone."""
    return f"{pod}-keys"


def _in_pod(command: Command) -> tuple[list[str], str | None]:
    """``command`` with its key file moved to the Secret's mount, and that file's path here (or None).

    The provider knows that much of the file (it must be in the Pod and stay secret), and
    nothing of what is in it.

    >>> _in_pod(["plait", "worker", "--key-file", "/tmp/run.keys"])
    (['plait', 'worker', '--key-file', '/var/run/secrets/plait/pool.keys'], '/tmp/run.keys')
    """
    owner = "KubernetesProvider"
    return move_key_file(owner, argv_of(owner, command), f"{SECRET_MOUNT}/{_SECRET_ITEM}")


@attrs.define(kw_only=True)
class KubernetesProvider:
    """Blocks as Kubernetes Pods in ``namespace``, each running a pool in ``image``.

    ``image`` must hold plait and the apps' dependencies; ``python`` is its interpreter.
    ``cpu`` and ``memory`` are the Pod's requests and limits (Kubernetes quantities:
    ``2``, ``'500m'``, ``'4Gi'``); a pool runs ``workers`` workers (by default one per
    whole core). ``walltime`` (``[D-]HH:MM:SS``) becomes ``activeDeadlineSeconds``.
    ``kubeconfig``/``context`` choose the cluster; by default the in-cluster service
    account when running in a Pod, else ``~/.kube/config``. Pods that ended stay in the
    namespace, for their logs, until deleted (label ``app.kubernetes.io/managed-by=plait``).
    A command's ``--key-file`` file is copied into a Secret beside its Pod (same labels), deleted
    when ``status`` finds the Pod ended or ``cancel`` deletes the Pod. Mounted, it is root's,
    mode 0400: for an image that runs as another user, ``fs_group`` (the Pod's ``fsGroup``)
    is a group its processes join and the kubelet lets read the file.
    """

    image: str
    namespace: str = "default"
    cpu: str = attrs.field(default="1", converter=_quantity)
    memory: str = attrs.field(default="1Gi", converter=_quantity)
    workers: int | None = None
    init_blocks: int = 1
    min_blocks: int = 0
    max_blocks: int = 1
    walltime: str | None = None
    python: str | None = "python3"
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] | None = None
    service_account: str | None = None
    fs_group: int | None = None
    labels: Mapping[str, str] = attrs.field(factory=dict)
    kubeconfig: str | None = None
    context: str | None = None
    request_timeout: float = 30.0
    label: str = attrs.field(init=False, default="kubernetes")
    workers_per_block: int = attrs.field(init=False)
    # Pod names are unique per provider: two runs (or drivers) in one namespace never collide.
    _token: str = attrs.field(init=False, factory=lambda: secrets.token_hex(3))
    _api: Any = attrs.field(init=False, default=None)
    _with_secret: set[str] = attrs.field(init=False, factory=set)  # Pods whose Secret may still exist

    def __attrs_post_init__(self) -> None:
        cores = _cores(self.cpu)
        if self.workers is not None and (not isinstance(self.workers, int) or self.workers < 1):
            raise ValueError(f"KubernetesProvider(workers={self.workers!r}): need at least one worker")
        self.workers_per_block = self.workers or max(1, math.floor(cores))
        if not 0 <= self.min_blocks <= self.max_blocks or self.init_blocks > self.max_blocks or self.max_blocks < 1:
            raise ValueError(
                f"KubernetesProvider: need 0 <= min_blocks <= max_blocks, max_blocks >= 1, init_blocks <= max_blocks: "
                f"got init_blocks={self.init_blocks} min_blocks={self.min_blocks} max_blocks={self.max_blocks}"
            )
        if self.fs_group is not None and (not isinstance(self.fs_group, int) or self.fs_group < 0):
            raise ValueError(f"KubernetesProvider(fs_group={self.fs_group!r}): a group id is an integer >= 0")
        if self.walltime is not None:
            try:
                parse_walltime(self.walltime)
            except ValueError as error:
                raise ValueError(f"KubernetesProvider(walltime={self.walltime!r}): {error}") from None

    @property
    def walltime_seconds(self) -> int | None:
        """The walltime in seconds, if any: the executor drains pools before it."""
        return parse_walltime(self.walltime) if self.walltime else None

    def pod_name(self, job_name: str) -> str:
        """The Pod's name for ``job_name``: a DNS label, unique to this provider."""
        name = _NAME.sub("-", job_name.lower()).strip("-")[:55] or "plait"
        return f"{name}-{self._token}"

    def secret_name(self, job_name: str) -> str:
        """The name of the Secret that carries the ``--key-file`` file of ``job_name``'s Pod."""
        return _secret_of(self.pod_name(job_name))

    def manifest(self, command: Command, job_name: str, env: Mapping[str, str] | None = None) -> dict[str, Any]:
        """The Pod ``submit`` would create, as a dict, without submitting anything.

        A ``--key-file`` file becomes a read-only mount of the Pod's Secret (mode 0400), and
        the command names it there; its content is only in ``secret_manifest``.
        """
        command, key_file = _in_pod(command)
        resources = {"cpu": self.cpu, "memory": self.memory}
        container: dict[str, Any] = {
            "name": "pool",
            "image": self.image,
            "command": image_command(command, self.python),
            "env": [{"name": key, "value": value} for key, value in (env or {}).items()],
            "resources": {"requests": resources, "limits": dict(resources)},
        }
        if self.image_pull_policy:
            container["imagePullPolicy"] = self.image_pull_policy
        spec: dict[str, Any] = {"restartPolicy": "Never", "containers": [container]}
        if key_file is not None:
            container["volumeMounts"] = [{"name": _SECRET_VOLUME, "mountPath": SECRET_MOUNT, "readOnly": True}]
            secret = {"secretName": self.secret_name(job_name), "defaultMode": 0o400}
            spec["volumes"] = [{"name": _SECRET_VOLUME, "secret": secret}]
        if self.walltime_seconds:
            spec["activeDeadlineSeconds"] = self.walltime_seconds
        if self.service_account:
            spec["serviceAccountName"] = self.service_account
        if self.fs_group is not None:
            spec["securityContext"] = {"fsGroup": self.fs_group}
        return {"apiVersion": "v1", "kind": "Pod", "metadata": self._metadata(self.pod_name(job_name)), "spec": spec}

    def secret_manifest(self, command: Command, job_name: str) -> dict[str, Any] | None:
        """The Secret ``submit`` would create for the command's ``--key-file`` file (None if it names none).

        It holds the file's bytes, read now: print it only where the keys may be seen.
        """
        key_file = _in_pod(command)[1]
        if key_file is None:
            return None
        name = self.secret_name(job_name)
        try:
            content = Path(key_file).read_bytes()
        except OSError as error:
            raise SchedulerError(f"kubernetes: cannot read key file {key_file} for Secret {name}: {error}") from None
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": self._metadata(name),
            "type": "Opaque",
            "immutable": True,  # the kubelet need not watch it
            "data": {_SECRET_ITEM: base64.b64encode(content).decode()},
        }

    def _metadata(self, name: str) -> dict[str, Any]:
        """A Pod's or Secret's: both carry the labels that find all of this provider's objects."""
        labels = {**self.labels, _MANAGED_BY: "plait", _PROVIDER: self._token}
        return {"name": name, "namespace": self.namespace, "labels": labels}

    # -- talking to the cluster ----------------------------------------------------------

    def submit(self, command: Command, job_name: str, env: Mapping[str, str] | None = None) -> str:
        """Create the block's Secret (if the command names a key file), then its Pod; the Pod's name is the job id."""
        manifest = self.manifest(command, job_name, env)
        name = str(manifest["metadata"]["name"])
        secret = self.secret_manifest(command, job_name)
        if secret is not None:
            what = f"create Secret {secret['metadata']['name']}"
            self._call(what, "create_namespaced_secret", self.namespace, body=secret)
            self._with_secret.add(name)
        try:
            self._call(f"create Pod {name}", "create_namespaced_pod", self.namespace, body=manifest)
        except SchedulerError:
            self._delete_secret(name)  # no Pod will read it
            raise
        return name

    def status(self, job_ids: Sequence[str]) -> dict[str, JobState]:
        """The state of every Pod, from one list call; a Pod gone from the cluster was deleted: CANCELLED."""
        if not job_ids:
            return {}
        selector = f"{_MANAGED_BY}=plait,{_PROVIDER}={self._token}"
        response = self._call(
            "list Pods", "list_namespaced_pod", self.namespace, label_selector=selector, _preload_content=False
        )
        found = parse_pods(json.loads(response.data))
        states = {job_id: found.get(job_id, JobState.CANCELLED) for job_id in job_ids}
        for job_id, state in states.items():
            if state.finished and job_id in self._with_secret:
                self._delete_secret(job_id)  # an ended Pod never starts again (restartPolicy: Never)
        return states

    def cancel(self, job_ids: Sequence[str]) -> None:
        """Delete these Pods at once, and their Secrets (ones already gone are ignored)."""
        for job_id in job_ids:
            self._call(f"delete Pod {job_id}", "delete_namespaced_pod", job_id, self.namespace, grace_period_seconds=0)
            if job_id in self._with_secret:
                self._delete_secret(job_id)

    def _delete_secret(self, job_id: str) -> None:
        """Delete the Secret of the Pod ``job_id`` (one already gone is ignored).

        One that cannot be deleted is logged, not raised: what the caller asked about is the
        Pod (its state, its deletion, its refusal), and the Secret's labels find it later.
        """
        self._with_secret.discard(job_id)
        secret = _secret_of(job_id)
        try:
            self._call(f"delete Secret {secret}", "delete_namespaced_secret", secret, self.namespace)
        except SchedulerError as error:
            log.warning("%s; it stays until deleted by hand", error)

    def _call(self, what: str, method: str, *args: object, **kwargs: object) -> Any:
        """One API call; SchedulerError naming what was asked when the cluster refuses or cannot be reached."""
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        api = self._client()
        try:
            return getattr(api, method)(*args, _request_timeout=self.request_timeout, **kwargs)
        except ApiException as error:
            if error.status == 404 and method.startswith("delete_"):
                return None
            detail = _api_message(error.body) or error.reason
            where = f"in namespace {self.namespace!r}"
            raise SchedulerError(f"kubernetes: {what} {where}: {error.status} {detail}") from None
        except (OSError, HTTPError) as error:
            raise SchedulerError(f"kubernetes: {what}: cannot reach the cluster: {error}") from None

    def _client(self) -> Any:
        if self._api is None:
            try:
                from kubernetes import client, config
            except ImportError:
                raise SchedulerError(
                    "KubernetesProvider needs the kubernetes client: pip install 'plait[kubernetes]'"
                ) from None
            configuration = client.Configuration()  # this provider's own: the client's global one stays as it is
            try:
                if self.kubeconfig is not None or self.context is not None:
                    raise config.ConfigException("a kubeconfig was chosen")
                config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
            except config.ConfigException:
                config.load_kube_config(  # type: ignore[no-untyped-call]
                    config_file=self.kubeconfig, context=self.context, client_configuration=configuration
                )
            self._api = client.CoreV1Api(client.ApiClient(configuration))
        return self._api


def _api_message(body: object) -> str:
    """The ``message`` of a Kubernetes ``Status`` error body, if it is one."""
    try:
        return str(json.loads(body)["message"]) if isinstance(body, (str, bytes)) else ""
    except (ValueError, KeyError, TypeError):
        return ""
