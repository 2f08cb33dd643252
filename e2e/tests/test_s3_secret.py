"""S3 credentials from a Secret: the job checkpoints to an S3-compatible server in the cluster, and
the secret's value shows up in nothing the job owns or logs.

The server is moto's (scripts/setup.sh installs it in .venv/moto) on this machine, bound to the
node's address, with authentication on: it signs nothing it does not know, so a checkpoint in
the bucket proves the pods signed with the Secret's keys. Pods reach it as `s3.<namespace>` (a
Service without selector, its Endpoints the node's address). The keys are made by moto's IAM
(random, known to the test only), stored in a Secret, and given to the pods by
`spec.pod.env[].valueFrom.secretKeyRef`. Then the test reads everything: the TrainingJob (spec
and status), every object it owns (ConfigMap, pods' specs, Services, ServiceAccount, Role and
binding, any Secret), the namespace's Events, every container's log and the operator's log, and
finds neither key in any of them.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from e2e.tests.conftest import (
    Figures,
    Operator,
    dump_job,
    example_job,
    is_local_cluster,
    wait_for_phase,
)
from e2e.tests.kube import REPO, Kubectl, KubectlError, Obj, wait_for
from e2e.tests.overlay import size_overlay

MOTO = REPO / ".venv" / "moto" / "bin"
BUCKET = "kubetrain-e2e-checkpoints"
SECRET = "s3-credentials"
JOB = "s3-secret"
REGION = "us-east-1"

# Run with moto's own Python (boto3 is there): an IAM user allowed s3:*, its access key, and the
# bucket (created with that key, once authentication is on). Prints the key as JSON.
_SETUP = """
import json, sys, boto3
endpoint, bucket = sys.argv[1], sys.argv[2]
iam = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1",
                   aws_access_key_id="setup", aws_secret_access_key="setup")
iam.create_user(UserName="trainer")
iam.put_user_policy(UserName="trainer", PolicyName="s3", PolicyDocument=json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
key = iam.create_access_key(UserName="trainer")["AccessKey"]
boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
             aws_access_key_id=key["AccessKeyId"],
             aws_secret_access_key=key["SecretAccessKey"]).create_bucket(Bucket=bucket)
print(json.dumps({"id": key["AccessKeyId"], "secret": key["SecretAccessKey"]}))
"""
_UNSIGNED_SETUP_CALLS = 3  # the IAM calls above; every later request must be signed


@dataclass(frozen=True)
class S3:
    host_endpoint: str  # from this machine
    pod_endpoint: str  # from the pods: the Service
    key_id: str
    secret: str

    def objects(self) -> list[str]:
        from pyarrow import fs

        s3 = fs.S3FileSystem(endpoint_override=self.host_endpoint, access_key=self.key_id,
                             secret_key=self.secret, region=REGION)  # fmt: skip
        infos = s3.get_file_info(fs.FileSelector(BUCKET, recursive=True))
        return [i.path for i in infos if i.type == fs.FileType.File]


def node_ip(kubectl: Kubectl) -> str:
    node = kubectl.items("nodes")[0]
    return str(next(a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP"))


def free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def s3_namespace(kubectl: Kubectl, operator: Operator) -> Iterator[str]:
    name = f"e2e-s3-secret-{uuid.uuid4().hex[:4]}"
    kubectl.create_namespace(name)
    yield name
    kubectl.run("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture(scope="module")
def s3(
    kubectl: Kubectl, s3_namespace: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[S3]:
    if not is_local_cluster(kubectl):
        pytest.skip("moto runs on this machine, which is the node of the local cluster only")
    if not (MOTO / "moto_server").exists():
        pytest.fail(f"{MOTO / 'moto_server'} is missing: run scripts/setup.sh")
    host = node_ip(kubectl)
    port = free_port(host)
    endpoint = f"http://{host}:{port}"
    log = (tmp_path_factory.mktemp("moto") / "moto.log").open("wb")
    server = subprocess.Popen(
        [str(MOTO / "moto_server"), "-H", host, "-p", str(port)],
        env={**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": str(_UNSIGNED_SETUP_CALLS)},
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:

        def listening() -> bool:
            with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
                return True
            return False

        wait_for("moto's S3 server", listening, timeout=60, every=0.3)
        setup = subprocess.run(
            [str(MOTO / "python"), "-c", _SETUP, endpoint, BUCKET],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert setup.returncode == 0, setup.stderr
        key = json.loads(setup.stdout.strip().splitlines()[-1])
        # The pods' way there: a Service whose Endpoints are the node's address.
        kubectl.create({"apiVersion": "v1", "kind": "Service",
                        "metadata": {"name": "s3", "namespace": s3_namespace},
                        "spec": {"ports": [{"port": 80, "targetPort": port}]}})  # fmt: skip
        kubectl.create(
            {
                "apiVersion": "v1",
                "kind": "Endpoints",
                "metadata": {"name": "s3", "namespace": s3_namespace},
                "subsets": [{"addresses": [{"ip": host}], "ports": [{"port": port}]}],
            }
        )
        yield S3(endpoint, f"http://s3.{s3_namespace}.svc.cluster.local", key["id"], key["secret"])
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def _job(namespace: str, s3: S3) -> Obj:
    """examples/mnist-mlp.yaml, sized, with its checkpoints in the bucket and its keys from the
    Secret; its pods kept after the end (cleanPodPolicy None), for their logs."""
    job = size_overlay(example_job(JOB, namespace))
    job["spec"]["training"]["epochs"] = 2
    job["spec"]["checkpoint"] = {
        "storagePath": f"s3://{BUCKET}/runs",
        "s3Endpoint": s3.pod_endpoint,
        "everyEpochs": 1,
    }
    job["spec"]["pod"]["env"] = [
        *({"name": name, "valueFrom": {"secretKeyRef": {"name": SECRET, "key": name}}}
          for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")),
        {"name": "AWS_REGION", "value": REGION},
    ]  # fmt: skip
    job["spec"].setdefault("runPolicy", {})["cleanPodPolicy"] = "None"
    return job


def _owned(kubectl: Kubectl, namespace: str, uid: str) -> list[Obj]:
    """Every object in the namespace whose owner is `uid`, and what those own (pods of ...)."""
    kinds = ("configmaps", "secrets", "services", "endpoints", "pods", "serviceaccounts",
             "roles.rbac.authorization.k8s.io", "rolebindings.rbac.authorization.k8s.io",
             "persistentvolumeclaims", "poddisruptionbudgets.policy")  # fmt: skip
    objects = [o for kind in kinds for o in kubectl.items(kind, namespace=namespace)]
    owners, found = {uid}, list[Obj]()
    while True:
        new = [
            o
            for o in objects
            if o not in found
            and any(r.get("uid") in owners for r in o["metadata"].get("ownerReferences", []))
        ]
        if not new:
            return found
        found += new
        owners |= {o["metadata"]["uid"] for o in new}


def _mentions(text: str, value: str) -> bool:
    """Whether `text` holds `value`, as it is or base64-encoded (as a Secret's data is)."""
    return value in text or base64.b64encode(value.encode()).decode() in text


def test_job_with_s3_credentials_in_a_secret_checkpoints_to_s3_and_never_shows_the_secret(
    kubectl: Kubectl, operator: Operator, s3_namespace: str, s3: S3, figures: Figures
) -> None:
    namespace = s3_namespace
    kubectl.create({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": SECRET, "namespace": namespace},
        "stringData": {"AWS_ACCESS_KEY_ID": s3.key_id, "AWS_SECRET_ACCESS_KEY": s3.secret},
    })  # fmt: skip
    t0 = time.monotonic()
    kubectl.apply(_job(namespace, s3))
    try:
        status = wait_for_phase(kubectl, JOB, namespace, {"Succeeded"}, timeout=900)
    except AssertionError:
        dump_job(kubectl, JOB, namespace)
        raise
    figures.record("s3_secret.seconds_to_succeeded", round(time.monotonic() - t0, 1))

    # Trained, with its checkpoints in the bucket (signed with the Secret's keys: moto checks).
    assert status["checkpoint"].startswith(f"s3://{BUCKET}/runs/{JOB}/checkpoint_"), status
    objects = s3.objects()
    assert any(f"{BUCKET}/runs/{JOB}/checkpoint_" in k for k in objects), objects

    # Everything the job owns or logs, as text.
    job = kubectl.get("trainingjob", JOB, namespace=namespace)
    assert job is not None
    owned = _owned(kubectl, namespace, job["metadata"]["uid"])
    kinds = sorted({o["kind"] for o in owned})
    pods = [o for o in owned if o["kind"] == "Pod"]
    assert "ConfigMap" in kinds and len(pods) >= 3, kinds  # the head and two workers
    texts: dict[str, str] = {"the TrainingJob": json.dumps(job)}
    texts |= {f"{o['kind']} {o['metadata']['name']}": json.dumps(o) for o in owned}
    texts["the Events"] = kubectl.run("get", "events", "-n", namespace, "-o", "json")
    for pod in pods:
        name = pod["metadata"]["name"]
        texts[f"the log of {name}"] = kubectl.run("logs", "-n", namespace, name, "--all-containers")
    if operator.namespace is not None:
        for pod in kubectl.items("pods", namespace=operator.namespace,
                                 selector=operator.pod_selector()):  # fmt: skip
            texts[f"the operator's log ({pod['metadata']['name']})"] = kubectl.run(
                "logs", "-n", operator.namespace, pod["metadata"]["name"], check=False)  # fmt: skip
    # The pods get the keys by reference only.
    for pod in pods:
        env = [e for c in pod["spec"]["containers"] for e in c.get("env", [])]
        refs = {e["name"]: e.get("valueFrom", {}).get("secretKeyRef") for e in env}
        wanted = {"name": SECRET, "key": "AWS_SECRET_ACCESS_KEY"}
        assert refs.get("AWS_SECRET_ACCESS_KEY") == wanted, (pod["metadata"]["name"], refs)
    values = (("secret key", s3.secret), ("key id", s3.key_id))
    # The search finds them where they are: in the Secret itself (base64, as the API holds it).
    held = kubectl.run("get", "secret", SECRET, "-n", namespace, "-o", "json")
    assert all(_mentions(held, value) for _, value in values)
    leaks = [(what, label) for what, text in texts.items() for label, value in values
             if _mentions(text, value)]  # fmt: skip
    searched = {what: len(text) for what, text in texts.items()}
    figures.record("s3_secret.searched_chars", searched)
    figures.record("s3_secret.found_in", leaks)
    print(f"[e2e] secret searched in {len(texts)} texts ({sum(searched.values())} chars): "
          f"{'found in ' + str(leaks) if leaks else 'found nowhere'}", file=sys.stderr)  # fmt: skip
    assert not leaks, f"the Secret's values appear in: {leaks}"
    with contextlib.suppress(KubectlError):
        kubectl.delete("trainingjob", JOB, namespace=namespace)
