"""The real control plane the `kube` tests share (a pytest plugin: tests/conftest.py loads it).

The cluster comes from `e2e/cluster.sh up --control-plane-only`, in its own directory and on its
own ports so that it never disturbs a full cluster another session runs. There are no nodes:
pods stay Pending unless a test plays the kubelet.

Fixtures: `cluster` (kubeconfig + kubectl, session) and `kube` (our client, session). The
Kubernetes client is imported only when a kube test runs: other tests start no faster with it.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from tests.conftest import ROOT

if TYPE_CHECKING:
    from kubetrain_operator.kube import Kube

SCRIPT = ROOT / "e2e" / "cluster.sh"

# Our own cluster, beside the default one (see e2e/README.md: other dir and ports).
CLUSTER_ENV = {
    "KUBETRAIN_CLUSTER_DIR": os.environ.get(
        "KUBETRAIN_OPERATOR_TEST_CLUSTER_DIR", "/tmp/kubetrain-operator-cp"
    ),
    "KUBETRAIN_API_PORT": os.environ.get("KUBETRAIN_OPERATOR_TEST_API_PORT", "16443"),
    "KUBETRAIN_ETCD_PORT": os.environ.get("KUBETRAIN_OPERATOR_TEST_ETCD_PORT", "12379"),
    "KUBETRAIN_ETCD_PEER_PORT": os.environ.get("KUBETRAIN_OPERATOR_TEST_ETCD_PEER_PORT", "12380"),
}


def wait_for(what: str, check: Callable[[], Any], timeout: float = 20.0, every: float = 0.1) -> Any:
    """Polls `check` until it returns something truthy, and returns that; fails with `what`
    after `timeout` seconds. API errors count as "not yet"."""
    from kubetrain_operator.kube import ApiError

    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        with contextlib.suppress(ApiError):
            last = check()
            if last:
                return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Cluster:
    kubeconfig: str
    kubectl: str

    def run_kubectl(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.kubectl, "--kubeconfig", self.kubeconfig, *args],
            input=stdin, capture_output=True, text=True, timeout=60,
        )  # fmt: skip


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    if not SCRIPT.exists():
        pytest.skip("e2e/cluster.sh does not exist yet: no control plane to test against")
    env = {**os.environ, **CLUSTER_ENV}
    was_up = subprocess.run([str(SCRIPT), "status"], env=env, capture_output=True).returncode == 0
    up = subprocess.run(
        [str(SCRIPT), "up", "--control-plane-only"],
        env=env, capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    if up.returncode != 0:
        pytest.fail(f"e2e/cluster.sh up --control-plane-only failed:\n{up.stderr[-3000:]}")
    kubeconfig = up.stdout.strip().splitlines()[-1]
    kubectl = str(Path(CLUSTER_ENV["KUBETRAIN_CLUSTER_DIR"]) / "bin" / "kubectl")
    if not Path(kubectl).exists():
        kubectl = shutil.which("kubectl") or str(
            Path.home() / ".cache/kubetrain/k8s-v1.20.2/bin/kubectl"
        )
    yield Cluster(kubeconfig, kubectl)
    if not was_up and os.environ.get("KUBETRAIN_KEEP_CLUSTER") != "1":
        subprocess.run([str(SCRIPT), "down"], env=env, capture_output=True, timeout=300)


@pytest.fixture(scope="session")
def kube(cluster: Cluster) -> Kube:
    from kubetrain_operator.kube import Kube, api_client

    return Kube(api_client(kubeconfig=cluster.kubeconfig, pool_size=8))


def make_namespace(kube: Kube, prefix: str) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    kube._call("POST", "/api/v1/namespaces", body={"metadata": {"name": name}})
    # Pods need the namespace's default ServiceAccount (the admission plugin checks it).
    wait_for(
        f"ServiceAccount {name}/default",
        lambda: kube._call("GET", f"/api/v1/namespaces/{name}/serviceaccounts/default"),
    )
    return name


def service_account_token(kube: Kube, ns: str, account: str) -> str:
    """The ServiceAccount's token, from the Secret the token controller makes (before 1.24)."""
    sa = wait_for(
        f"a token for {account}",
        lambda: (a := kube._call("GET", f"/api/v1/namespaces/{ns}/serviceaccounts/{account}"))
        and a.get("secrets") and a,
    )  # fmt: skip
    secret = kube._call("GET", f"/api/v1/namespaces/{ns}/secrets/{sa['secrets'][0]['name']}")
    assert secret is not None
    return base64.b64decode(secret["data"]["token"]).decode()


def service_account_kubeconfig(kube: Kube, ns: str, account: str, path: Path) -> Path:
    """A kubeconfig that acts as the ServiceAccount, as a pod running under it would."""
    cfg = kube.api.configuration
    user = {"token": service_account_token(kube, ns, account)}
    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": "sa",
        "clusters": [{"name": "c", "cluster": {
            "server": cfg.host, "certificate-authority": cfg.ssl_ca_cert}}],
        "users": [{"name": account, "user": user}],
        "contexts": [{"name": "sa", "context": {"cluster": "c", "user": account}}],
    }  # fmt: skip
    path.write_text(yaml.safe_dump(config))
    return path
