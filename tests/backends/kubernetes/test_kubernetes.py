"""KubernetesProvider: manifests checked against the client's models, states against recorded API
responses, and submit/status/cancel through the real client against a stand-in API server.

No Kubernetes cluster runs here: the stand-in (fake_cluster.py) answers over HTTP in the API's
shapes and runs each Pod's command as a local process, so a real pool starts from a manifest.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from kubernetes import client

import plait as pl
from plait.backends.providers import JobState, SchedulerError
from plait.backends.providers._kubernetes import SECRET_MOUNT, parse_pods
from tests.backends.kubernetes.fake_cluster import FakeCluster
from tests.backends.zmq.zmq_apps import FAST, inc

_UTC_Z = re.compile(r'(T\d{2}:\d{2}:\d{2})Z"')
RECORDED = Path(__file__).parent / "recorded"
POOL = [sys.executable, "-c", "from plait.cli import main; main()", "worker", "--url", "tcp://10.0.0.1:5000"]


def as_model(document: dict[str, Any], model: str) -> Any:
    """The client's model for a JSON document, as its ApiClient reads an API response."""
    return client.ApiClient().deserialize(json.dumps(document), model, "application/json")


def same_after_round_trip(document: dict[str, Any], model: str) -> bool:
    """Every field is one the model knows, with the type it wants: reading drops or changes anything else.

    Timestamps come back as ``+00:00`` where the API writes ``Z``: the same instant.
    """
    again = client.ApiClient().sanitize_for_serialization(as_model(document, model))  # type: ignore[no-untyped-call]
    return bool(json.loads(_UTC_Z.sub(r'\1+00:00"', json.dumps(document))) == again)


def test_the_manifest_is_a_valid_pod_with_what_was_asked() -> None:
    provider = pl.KubernetesProvider(
        image="ghcr.io/me/plait:1", namespace="science", cpu="2", memory="4Gi", max_blocks=4, walltime="01:00:00",
        image_pull_policy="IfNotPresent", service_account="runner", labels={"team": "physics"},
    )  # fmt: skip
    manifest = provider.manifest(POOL, "plait-zmq-0", env={"PLAIT_SECRET": "s"})
    assert same_after_round_trip(manifest, "V1Pod")
    pod = as_model(manifest, "V1Pod")
    assert pod.metadata.namespace == "science" and pod.metadata.name.startswith("plait-zmq-0-")
    assert pod.metadata.labels["team"] == "physics" and pod.metadata.labels["app.kubernetes.io/managed-by"] == "plait"
    assert pod.spec.restart_policy == "Never" and pod.spec.active_deadline_seconds == 3600
    assert pod.spec.service_account_name == "runner"
    [container] = pod.spec.containers
    assert container.image == "ghcr.io/me/plait:1" and container.image_pull_policy == "IfNotPresent"
    assert container.command == ["python3", *POOL[1:]]  # the image's Python, not this machine's path
    assert [(e.name, e.value) for e in container.env] == [("PLAIT_SECRET", "s")]
    assert container.resources.requests == container.resources.limits == {"cpu": "2", "memory": "4Gi"}
    assert provider.workers_per_block == 2 and provider.max_blocks == 4


def test_the_minimal_manifest_is_valid_and_names_are_dns_labels() -> None:
    provider = pl.KubernetesProvider(image="python:3.11", namespace="default", cpu="500m")
    manifest = provider.manifest(["true"], "plait-My_Label-0")
    assert same_after_round_trip(manifest, "V1Pod")
    name = manifest["metadata"]["name"]
    assert name.startswith("plait-my-label-0-") and len(name) <= 63
    assert provider.workers_per_block == 1
    assert pl.KubernetesProvider(image="i").pod_name("x") != pl.KubernetesProvider(image="i").pod_name("x")


KEYS = b'{"client_secret": "NOT-IN-A-POD-MANIFEST"}'


def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "run.keys"
    path.write_bytes(KEYS)
    path.chmod(0o600)
    return path


def test_a_key_file_is_a_read_only_secret_mount_and_never_in_the_pod(tmp_path: Path) -> None:
    keys = key_file(tmp_path)
    provider = pl.KubernetesProvider(image="ghcr.io/me/plait:1", namespace="science")
    manifest = provider.manifest([*POOL, "--key-file", str(keys)], "plait-zmq-0")
    assert same_after_round_trip(manifest, "V1Pod")
    pod = as_model(manifest, "V1Pod")
    [volume] = pod.spec.volumes
    assert volume.secret.secret_name == provider.secret_name("plait-zmq-0") == f"{pod.metadata.name}-keys"
    assert volume.secret.default_mode == 0o400 and volume.secret.items is None
    [mount] = pod.spec.containers[0].volume_mounts
    assert (mount.name, mount.mount_path, mount.read_only) == (volume.name, SECRET_MOUNT, True)
    assert pod.spec.containers[0].command == ["python3", *POOL[1:], "--key-file", f"{SECRET_MOUNT}/pool.keys"]
    text = json.dumps(manifest)
    assert str(keys) not in text, "the driver's path means nothing in a Pod"
    assert "NOT-IN-A-POD" not in text and base64.b64encode(KEYS).decode() not in text
    equals_form = provider.manifest([*POOL, f"--keys={keys}"], "plait-zmq-0")
    assert equals_form["spec"]["containers"][0]["command"][-1] == f"--keys={SECRET_MOUNT}/pool.keys"
    assert "volumes" not in provider.manifest(POOL, "plait-zmq-0")["spec"], "no --keys, no Secret"
    assert pod.spec.security_context is None, "the file stays root's unless asked"


def test_fs_group_lets_a_non_root_image_read_its_keys(tmp_path: Path) -> None:
    provider = pl.KubernetesProvider(image="i", fs_group=1000)
    manifest = provider.manifest([*POOL, "--key-file", str(key_file(tmp_path))], "plait-zmq-0")
    assert same_after_round_trip(manifest, "V1Pod")
    assert as_model(manifest, "V1Pod").spec.security_context.fs_group == 1000


def test_the_manifest_reads_no_key_file() -> None:
    provider = pl.KubernetesProvider(image="i", namespace="n")
    manifest = provider.manifest(["plait", "worker", "--key-file", "/nowhere/run.keys"], "j")
    in_pod = ["plait", "worker", "--key-file", f"{SECRET_MOUNT}/pool.keys"]
    assert manifest["spec"]["containers"][0]["command"] == in_pod


def test_the_secret_holds_the_key_file_and_the_pods_labels(tmp_path: Path) -> None:
    provider = pl.KubernetesProvider(image="i", namespace="science", labels={"team": "physics"})
    command = [*POOL, "--key-file", str(key_file(tmp_path))]
    secret = provider.secret_manifest(command, "plait-zmq-0")
    assert secret is not None and same_after_round_trip(secret, "V1Secret")
    model = as_model(secret, "V1Secret")
    pod = provider.manifest(command, "plait-zmq-0")
    assert model.metadata.name == provider.secret_name("plait-zmq-0") and model.metadata.namespace == "science"
    assert model.metadata.labels == pod["metadata"]["labels"], "found, and deleted, with the Pod's labels"
    assert model.immutable and model.type == "Opaque"
    assert {k: base64.b64decode(v) for k, v in model.data.items()} == {"pool.keys": KEYS}
    assert provider.secret_manifest(POOL, "plait-zmq-0") is None


def test_a_command_naming_two_key_files_is_refused() -> None:
    provider = pl.KubernetesProvider(image="i")
    with pytest.raises(ValueError, match=r"names 2 key files \(--key-file\): \[.a., .b.\]"):
        provider.manifest(["plait", "worker", "--key-file", "a", "--keys=b"], "j")


def test_rendering_a_manifest_needs_no_kubernetes_client() -> None:
    code = (
        "import sys, plait as pl; pl.KubernetesProvider(image='i', namespace='n').manifest(['true'], 'j'); "
        "print('kubernetes' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "False"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"cpu": "two"}, r"cpu='two'\): a CPU quantity"),
        ({"workers": 0}, r"workers=0\): need at least one worker"),
        ({"init_blocks": 3, "max_blocks": 2}, "init_blocks <= max_blocks"),
        ({"walltime": "90"}, r"walltime='90'\)"),
        ({"fs_group": -1}, r"fs_group=-1\): a group id"),
    ],
)
def test_bad_settings_are_refused_naming_the_setting(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        pl.KubernetesProvider(image="i", **options)


def test_recorded_pod_lists_are_the_apis_shapes() -> None:
    document = json.loads((RECORDED / "pods.json").read_text())
    assert same_after_round_trip(document, "V1PodList")
    assert same_after_round_trip(json.loads((RECORDED / "forbidden.json").read_text()), "V1Status")


def test_states_from_a_recorded_pod_list() -> None:
    states = parse_pods(json.loads((RECORDED / "pods.json").read_text()))
    assert states == {
        "plait-zmq-0-a1b2c3": JobState.PENDING,  # scheduled, container being created
        "plait-zmq-1-a1b2c3": JobState.FAILED,  # the image cannot be pulled: it would wait for ever
        "plait-zmq-2-a1b2c3": JobState.RUNNING,
        "plait-zmq-3-a1b2c3": JobState.COMPLETED,
        "plait-zmq-4-a1b2c3": JobState.FAILED,
        "plait-zmq-5-a1b2c3": JobState.TIMEOUT,  # activeDeadlineSeconds passed
        "plait-zmq-6-a1b2c3": JobState.UNKNOWN,  # the node stopped reporting
    }


@pytest.fixture
def cluster() -> Iterator[FakeCluster]:
    fake = FakeCluster()
    yield fake
    fake.close()


def test_submit_status_and_cancel_are_the_apis_pod_calls(cluster: FakeCluster, tmp_path: Path) -> None:
    provider = pl.KubernetesProvider(image="i", namespace="science", kubeconfig=cluster.kubeconfig(tmp_path / "kc"))
    job = provider.submit(["true"], "plait-zmq-0", env={"A": "1"})
    method, path, body = cluster.requests[-1]
    assert (method, path) == ("POST", "/api/v1/namespaces/science/pods")
    assert body == provider.manifest(["true"], "plait-zmq-0", env={"A": "1"}) and body["metadata"]["name"] == job
    other = pl.KubernetesProvider(image="i", namespace="science", kubeconfig=cluster.kubeconfig(tmp_path / "kc"))
    theirs = other.submit(["true"], "plait-zmq-0")
    assert provider.status([job]) == {job: JobState.PENDING}
    method, path, _ = cluster.requests[-1]
    selector = parse_qs(urlparse(path).query)["labelSelector"][0]
    assert method == "GET" and selector == f"app.kubernetes.io/managed-by=plait,plait.dev/provider={job[-6:]}"
    provider.cancel([job])
    method, path, _ = cluster.requests[-1]
    assert (method, urlparse(path).path) == ("DELETE", f"/api/v1/namespaces/science/pods/{job}")
    assert provider.status([job]) == {job: JobState.CANCELLED}, "a Pod gone from the cluster will not run"
    provider.cancel([job])  # already gone: not an error
    assert set(cluster.pods) == {theirs}, "another provider's Pod is not touched"


def test_a_refused_pod_raises_with_the_apis_reason(cluster: FakeCluster, tmp_path: Path) -> None:
    cluster.refuse["POST pods"] = json.loads((RECORDED / "forbidden.json").read_text())
    provider = pl.KubernetesProvider(image="i", namespace="science", kubeconfig=cluster.kubeconfig(tmp_path / "kc"))
    refused = r"create Pod plait-zmq-0-\w+ in namespace 'science': 403 pods is forbidden"
    with pytest.raises(SchedulerError, match=refused):
        provider.submit(["true"], "plait-zmq-0")


def test_an_unreachable_cluster_raises(cluster: FakeCluster, tmp_path: Path) -> None:
    kubeconfig = cluster.kubeconfig(tmp_path / "kc")
    cluster.close()
    provider = pl.KubernetesProvider(image="i", kubeconfig=kubeconfig, request_timeout=2)
    with pytest.raises(SchedulerError, match="cannot reach the cluster"):
        provider.status(["plait-zmq-0-abc"])


def test_submit_creates_the_secret_then_the_pod_and_cancel_deletes_both(cluster: FakeCluster, tmp_path: Path) -> None:
    provider = pl.KubernetesProvider(image="i", namespace="science", kubeconfig=cluster.kubeconfig(tmp_path / "kc"))
    command = [*POOL, "--key-file", str(key_file(tmp_path))]
    job = provider.submit(command, "plait-zmq-0")
    secret = provider.secret_name("plait-zmq-0")
    assert [(m, p) for m, p, _ in cluster.requests] == [
        ("POST", "/api/v1/namespaces/science/secrets"),  # first: the kubelet mounts it when it starts the Pod
        ("POST", "/api/v1/namespaces/science/pods"),
    ]
    assert cluster.requests[0][2] == provider.secret_manifest(command, "plait-zmq-0")
    assert set(cluster.secrets) == {secret} and set(cluster.pods) == {job}
    provider.cancel([job])
    assert [(m, urlparse(p).path) for m, p, _ in cluster.requests[-2:]] == [
        ("DELETE", f"/api/v1/namespaces/science/pods/{job}"),
        ("DELETE", f"/api/v1/namespaces/science/secrets/{secret}"),
    ]
    assert not cluster.secrets and not cluster.pods
    provider.cancel([job])  # both already gone: not an error


def test_a_refused_pod_leaves_no_secret(cluster: FakeCluster, tmp_path: Path) -> None:
    cluster.refuse["POST pods"] = json.loads((RECORDED / "forbidden.json").read_text())
    provider = pl.KubernetesProvider(image="i", namespace="science", kubeconfig=cluster.kubeconfig(tmp_path / "kc"))
    with pytest.raises(SchedulerError, match="403 pods is forbidden"):
        provider.submit([*POOL, "--key-file", str(key_file(tmp_path))], "plait-zmq-0")
    secrets = [(m, urlparse(p).path.rsplit("/", 1)[-1]) for m, p, _ in cluster.requests if "/secrets" in p]
    assert secrets == [("POST", "secrets"), ("DELETE", provider.secret_name("plait-zmq-0"))]
    assert not cluster.secrets and not cluster.pods


def test_a_secret_the_cluster_will_not_delete_is_logged_and_the_pods_still_go(
    cluster: FakeCluster, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cluster.refuse["DELETE secrets"] = json.loads((RECORDED / "forbidden.json").read_text())
    provider = pl.KubernetesProvider(image="i", namespace="science", kubeconfig=cluster.kubeconfig(tmp_path / "kc"))
    command = [*POOL, "--key-file", str(key_file(tmp_path))]
    jobs = [provider.submit(command, "plait-zmq-0"), provider.submit(command, "plait-zmq-1")]
    provider.cancel(jobs)
    assert not cluster.pods, "every Pod was deleted"
    assert caplog.text.count("it stays until deleted by hand") == 2
    assert f"delete Secret {jobs[0]}-keys in namespace 'science': 403" in caplog.text


def test_an_unreadable_key_file_is_named_and_nothing_is_created(cluster: FakeCluster, tmp_path: Path) -> None:
    provider = pl.KubernetesProvider(image="i", namespace="science", kubeconfig=cluster.kubeconfig(tmp_path / "kc"))
    missing = tmp_path / "gone.keys"
    with pytest.raises(SchedulerError, match=f"cannot read key file {re.escape(str(missing))} for"):
        provider.submit([*POOL, "--key-file", str(missing)], "plait-zmq-0")
    assert not cluster.requests


def test_an_ended_pods_secret_is_deleted_when_status_sees_it(tmp_path: Path) -> None:
    cluster = FakeCluster(run=True)
    try:
        provider = pl.KubernetesProvider(image="i", python=None, kubeconfig=cluster.kubeconfig(tmp_path / "kc"))
        job = provider.submit(["true", "--key-file", str(key_file(tmp_path))], "plait-zmq-0")
        assert cluster.secrets
        cluster.processes[job].wait(timeout=10)
        assert provider.status([job]) == {job: JobState.COMPLETED}
        assert not cluster.secrets and set(cluster.pods) == {job}, "the Pod stays for its logs; its keys do not"
    finally:
        cluster.close()


@pytest.mark.timeout(60)
def test_a_pool_started_from_the_manifest_runs_tasks_encrypted(tmp_path: Path) -> None:
    cluster = FakeCluster(run=True)
    try:
        provider = pl.KubernetesProvider(image="i", python=None, kubeconfig=cluster.kubeconfig(tmp_path / "kc"))
        # Encrypted, as a cluster's Pods are not on loopback: the pool reads its keys from the mounted Secret.
        executor = pl.ZMQExecutor(provider=provider, encrypted=True, **FAST)  # type: ignore[arg-type]
        with pl.Runtime([executor]) as rt:
            assert rt.run(pl.gather(*[inc(i) for i in range(5)])) == [1, 2, 3, 4, 5]
            [pod] = cluster.pods.values()
            assert str(executor.key_file) not in json.dumps(pod), "the Pod names its mount, not the driver's file"
            [mounted] = cluster.mounts.values()
            assert (mounted / "pool.keys").stat().st_mode & 0o777 == 0o400
        assert cluster.processes and all(p.poll() is not None for p in cluster.processes.values()), "pools exited"
        assert not cluster.secrets, "the run's keys left the namespace with it"
    finally:
        cluster.close()
