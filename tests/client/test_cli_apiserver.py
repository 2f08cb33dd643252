"""Each cluster verb of `kubetrain` against a real API server (tests/apiserver.py).

No operator and no kubelet run there: the tests write the job's status through its status
subresource as the operator and the head would (Running at epoch 3/10, then Failed with a reason
naming the pod and container), and a pod's status as the kubelet would. Pod logs cannot be read
there (a pod on no node has an empty log), so `logs -f` is shown to follow the pod's replacement
by what it says on stderr; its lines across a real replacement are e2e/tests/test_cli.py's.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubetrain import cli
from kubetrain.api.status import fault_message
from kubetrain.client import Client, Forbidden
from tests.apiserver import USER, ApiServer, wait_until
from tests.client.jobs import condition, running
from tests.conftest import job_dict

pytestmark = [pytest.mark.apiserver, pytest.mark.slow]

JOBS = "/apis/kubetrain.io/v1alpha1"


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def namespace(apiserver: ApiServer, name: str | None = None) -> str:
    name = name or unique("ns")
    apiserver.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    return name


def job_file(tmp_path: Path, name: str, **spec: Any) -> Path:
    """A TrainingJob YAML that is valid on a cluster (its checkpoints on s3://)."""
    data = job_dict(**({"checkpoint": {"storagePath": "s3://bucket/runs"}} | spec))
    data["metadata"] = {"name": name}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


class Kt:
    """`kubetrain ...` in this process, against the fixture's API server: (exit code, out, err)."""

    def __init__(self, kubeconfig: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.kubeconfig, self.capsys = kubeconfig, capsys

    def __call__(self, *args: str) -> tuple[int, str, str]:
        code = cli.main([*args, "--kubeconfig", str(self.kubeconfig)])
        out, err = self.capsys.readouterr()
        return code, out, err


@pytest.fixture
def kt(apiserver: ApiServer, capsys: pytest.CaptureFixture[str]) -> Kt:
    return Kt(apiserver.kubeconfig, capsys)


def set_status(apiserver: ApiServer, ns: str, name: str, status: dict[str, Any]) -> None:
    """What the operator and the head write, through the status subresource."""
    apiserver.request("PATCH", f"{JOBS}/namespaces/{ns}/trainingjobs/{name}/status",
                      {"status": status})  # fmt: skip


def failed_status(name: str) -> dict[str, Any]:
    message = fault_message(f"{name}-worker-1", "worker", "OOMKilled (exit code 137)")
    status = running(epoch=3, total=10)
    status["phase"] = "Failed"
    status["message"] = message
    status["conditions"] = [
        *status["conditions"],
        condition("Failed", reason="OOMKilled", message=message, at=now()),
    ]
    return status


@contextlib.contextmanager
def later(seconds: float, action: Callable[[], object]) -> Iterator[None]:
    """Does `action` in `seconds` s (as the operator would), while the block waits for it."""
    thread = threading.Thread(target=lambda: (time.sleep(seconds), action()), daemon=True)
    thread.start()
    yield
    thread.join(timeout=30)


# --------------------------------------------------------------------------- submit


def test_submit_creates_the_job_and_a_second_submit_says_what_exists(
    apiserver: ApiServer, kt: Kt, tmp_path: Path
) -> None:
    name, ns = unique("sub"), namespace(apiserver)
    path = job_file(tmp_path, name)
    code, out, err = kt("submit", str(path), "-n", ns)
    assert (code, err) == (0, "")
    assert out == f'trainingjob "{name}" created in namespace "{ns}"\n'
    stored = apiserver.request("GET", f"{JOBS}/namespaces/{ns}/trainingjobs/{name}")
    assert stored is not None and stored["spec"]["model"]["name"] == "mlp"
    assert "status" not in stored or not stored["status"]

    set_status(apiserver, ns, name, running(epoch=3, total=10))
    code, out, err = kt("submit", str(path), "-n", ns)
    assert code == cli.EXIT_CLUSTER
    assert err.startswith(
        f'kubetrain: trainingjob "{name}" already exists in namespace "{ns}" (Running, epoch'
        " 3/10, created "
    )
    assert f"ago): delete it first (kubetrain delete {name})" in err
    assert len(err.splitlines()) == 1


def test_an_invalid_spec_exits_2_naming_the_field_and_creates_nothing(
    apiserver: ApiServer, kt: Kt, tmp_path: Path
) -> None:
    ns = namespace(apiserver)
    bad = job_file(tmp_path, unique("bad"), model={"inputSize": 100})
    code, out, err = kt("submit", str(bad), "-n", ns)
    assert code == cli.EXIT_INVALID and out == ""
    assert "spec.model.inputSize: is 100 but each digits image has 1x28x28 = 784 features" in err
    # Only wrong on a cluster: a local storagePath that no other pod would see.
    local = job_file(tmp_path, unique("local"), checkpoint={"storagePath": "./runs"})
    code, _, err = kt("submit", str(local), "-n", ns)
    assert code == cli.EXIT_INVALID and "spec.checkpoint.claimName" in err
    listed = apiserver.request("GET", f"{JOBS}/namespaces/{ns}/trainingjobs")
    assert listed is not None and listed["items"] == []


def test_a_namespace_in_the_file_and_another_asked_for_is_exit_2(
    apiserver: ApiServer, kt: Kt, tmp_path: Path
) -> None:
    path = job_file(tmp_path, unique("two"))
    data = yaml.safe_load(path.read_text())
    data["metadata"]["namespace"] = "elsewhere"
    path.write_text(yaml.safe_dump(data))
    code, _, err = kt("submit", str(path), "-n", namespace(apiserver))
    assert code == cli.EXIT_INVALID and 'metadata.namespace: is "elsewhere"' in err


# --------------------------------------------------------------------------- list, status


def test_list_a_namespace_and_every_namespace(apiserver: ApiServer, kt: Kt, tmp_path: Path) -> None:
    a, b = namespace(apiserver), namespace(apiserver)
    first, second = unique("la"), unique("lb")
    assert kt("submit", str(job_file(tmp_path, first)), "-n", a)[0] == 0
    assert kt("submit", str(job_file(tmp_path, second)), "-n", b)[0] == 0
    set_status(apiserver, a, first, running(epoch=3, total=10, restarts=1))

    code, out, _ = kt("list", "-n", a)
    assert code == 0
    header, *rows = out.splitlines()
    assert header.split() == ["NAME", "PHASE", "EPOCH", "METRIC", "RESTARTS", "AGE"]
    assert [r.split()[:5] for r in rows] == [[first, "Running", "3/10", "accuracy=0.9000", "1"]]

    code, out, _ = kt("list", "-A")
    header, *rows = out.splitlines()
    assert header.split()[:2] == ["NAMESPACE", "NAME"]
    shown = {tuple(r.split()[:3]) for r in rows}
    assert (a, first, "Running") in shown and (b, second, "Pending") in shown

    code, _, err = kt("list", "-n", namespace(apiserver))
    assert code == 0 and "no TrainingJobs in namespace" in err


def test_status_while_running_then_once_failed(
    apiserver: ApiServer, kt: Kt, tmp_path: Path
) -> None:
    name, ns = unique("st"), namespace(apiserver)
    assert kt("submit", str(job_file(tmp_path, name, distributed={"workers": 2})), "-n", ns)[0] == 0
    code, out, _ = kt("status", name, "-n", ns)
    assert code == 0 and "Phase:       Pending" in out.splitlines()
    assert f"Log of pod {name}-head: " in out  # no pod yet: it says why, in one line

    set_status(apiserver, ns, name, running(epoch=3, total=10))
    code, out, _ = kt("status", name, "-n", ns)
    page = out.splitlines()
    assert "Phase:       Running" in page
    assert ("Progress:    epoch 3/10  loss 0.4000  accuracy 0.9000  812 samples/s  ETA 0:00:07"
            in page)  # fmt: skip
    assert "Checkpoint:  /ckpt/t/checkpoint_000002" in page
    assert "Metrics:     val_accuracy=0.9  val_loss=0.4" in page
    assert any(line.split()[:3] == ["Running", "True", "TrainingStarted"] for line in page)

    set_status(apiserver, ns, name, failed_status(name))
    code, out, _ = kt("status", name, "-n", ns)
    page = out.splitlines()
    assert "Phase:       Failed" in page and "Failed:      OOMKilled" in page
    assert f"Failed in:   pod {name}-worker-1, container worker" in page
    assert any(line.split()[:3] == ["Failed", "True", "OOMKilled"] for line in page)
    # The log shown is the pod at fault's (it does not exist here: the line says so).
    assert page[-1].startswith(f'Log of pod {name}-worker-1: pod "{name}-worker-1" not found')

    code, out, _ = kt("metrics", name, "-n", ns, "-o", "json")
    assert code == 0 and '"epoch": 3' in out

    code, _, err = kt("status", unique("none"), "-n", ns)
    assert code == cli.EXIT_CLUSTER and "not found in namespace" in err


# --------------------------------------------------------------------------- wait


def test_wait_on_a_job_that_fails_meanwhile_exits_1_with_the_reason(
    apiserver: ApiServer, kt: Kt, tmp_path: Path
) -> None:
    name, ns = unique("wf"), namespace(apiserver)
    assert kt("submit", str(job_file(tmp_path, name, distributed={"workers": 2})), "-n", ns)[0] == 0
    set_status(apiserver, ns, name, running(epoch=3, total=10))
    t0 = time.monotonic()
    with later(1.0, lambda: set_status(apiserver, ns, name, failed_status(name))):
        code, out, err = kt("wait", name, "-n", ns, "--timeout", "60")
    took = time.monotonic() - t0
    assert code == cli.EXIT_FAILED
    assert err.splitlines() == [
        f'kubetrain: trainingjob "{name}" failed: OOMKilled: pod {name}-worker-1 container'
        " worker: OOMKilled (exit code 137)",
        f"kubetrain: its log: kubetrain logs {name} --rank 1",
    ]
    assert out.splitlines()[0].startswith(f"{name}  Running  epoch 3/10  loss 0.4000")
    assert out.splitlines()[-1].startswith(f"{name}  Failed  epoch 3/10")
    assert took < 10, f"the watch saw the failure {took:.1f} s late"


def test_wait_times_out_with_124_and_succeeds_with_0(
    apiserver: ApiServer, kt: Kt, tmp_path: Path
) -> None:
    name, ns = unique("wt"), namespace(apiserver)
    assert kt("submit", str(job_file(tmp_path, name)), "-n", ns)[0] == 0
    t0 = time.monotonic()
    code, _, err = kt("wait", name, "-n", ns, "--timeout", "1.5")
    assert code == cli.EXIT_TIMEOUT
    assert err == f'kubetrain: trainingjob "{name}" is still Pending after 1.5 s\n'
    assert 1.5 <= time.monotonic() - t0 < 10

    done = running(epoch=10, total=10)
    done["conditions"].append(condition("Succeeded", reason="TrainingCompleted", at=now()))
    with later(1.0, lambda: set_status(apiserver, ns, name, done)):
        code, out, _ = kt("wait", name, "-n", ns)
    assert code == 0 and out.splitlines()[-1] == f'trainingjob "{name}" Succeeded'

    code, _, err = kt("wait", unique("none"), "-n", ns)
    assert code == cli.EXIT_CLUSTER and "not found" in err


def test_wait_for_a_job_deleted_meanwhile_says_so(
    apiserver: ApiServer, kt: Kt, tmp_path: Path
) -> None:
    name, ns = unique("wd"), namespace(apiserver)
    assert kt("submit", str(job_file(tmp_path, name)), "-n", ns)[0] == 0
    with later(1.0, lambda: Client(apiserver.kubeconfig, namespace=ns).delete(name)):
        code, _, err = kt("wait", name, "-n", ns, "--timeout", "30")
    assert code == cli.EXIT_CLUSTER and err == f'kubetrain: trainingjob "{name}" was deleted\n'


# --------------------------------------------------------------------------- delete, logs


def test_delete_then_it_is_gone(apiserver: ApiServer, kt: Kt, tmp_path: Path) -> None:
    name, ns = unique("del"), namespace(apiserver)
    assert kt("submit", str(job_file(tmp_path, name)), "-n", ns)[0] == 0
    code, out, _ = kt("delete", name, "-n", ns)
    assert code == 0 and out == f'trainingjob "{name}" deleted from namespace "{ns}"\n'
    assert apiserver.request("GET", f"{JOBS}/namespaces/{ns}/trainingjobs/{name}") is None
    code, _, err = kt("delete", name, "-n", ns)
    assert code == cli.EXIT_CLUSTER
    assert err == f'kubetrain: trainingjob "{name}" not found in namespace "{ns}"\n'


def _pod(name: str, ns: str, job: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns,
                         "labels": {"kubetrain.io/job-name": job}},
            "spec": {"containers": [{"name": "worker", "image": "kubetrain/trainer"}]}}  # fmt: skip


def _container_state(apiserver: ApiServer, ns: str, pod: str, state: dict[str, Any]) -> None:
    """What the kubelet writes once the container runs (or stopped)."""
    phase = "Running" if "running" in state else "Failed"
    status = {"phase": phase, "containerStatuses": [
        {"name": "worker", "ready": phase == "Running", "restartCount": 0, "state": state,
         "image": "kubetrain/trainer", "imageID": ""}]}  # fmt: skip
    apiserver.request("PATCH", f"/api/v1/namespaces/{ns}/pods/{pod}/status", {"status": status})


def test_logs_without_a_pod_or_of_a_rank_the_job_lacks_are_one_line(
    apiserver: ApiServer, kt: Kt, tmp_path: Path
) -> None:
    name, ns = unique("lg"), namespace(apiserver)
    assert kt("submit", str(job_file(tmp_path, name)), "-n", ns)[0] == 0
    code, _, err = kt("logs", name, "-n", ns)
    assert code == cli.EXIT_CLUSTER
    assert err == (
        f'kubetrain: pod "{name}-head" not found in namespace "{ns}": the job is Pending (its'
        " pods are made once it starts, and may be cleaned up once it ends)\n"
    )
    code, _, err = kt("logs", name, "-n", ns, "--rank", "1")
    assert code == cli.EXIT_CLUSTER and "has 1 worker(s): the rank is 0 to 0" in err
    # A job that is over and whose pods are gone: there is nothing to follow.
    set_status(apiserver, ns, name, failed_status(name))
    assert kt("logs", name, "-n", ns, "-f") == (0, "", "")


def test_logs_follow_notices_the_worker_pod_replaced_and_stops_when_the_job_ends(
    apiserver: ApiServer, kt: Kt, tmp_path: Path
) -> None:
    name, ns = unique("lf"), namespace(apiserver)
    pod = f"{name}-worker-0"
    assert kt("submit", str(job_file(tmp_path, name)), "-n", ns)[0] == 0
    first = apiserver.create(_pod(pod, ns, name))
    _container_state(apiserver, ns, pod, {"running": {"startedAt": now()}})
    replacement: list[str] = []

    def operator_and_kubelet() -> None:
        """The worker pod replaced (same name, new uid), then the job done."""
        apiserver.request("DELETE", f"/api/v1/namespaces/{ns}/pods/{pod}")  # no node: gone at once
        time.sleep(1.0)
        replacement.append(apiserver.create(_pod(pod, ns, name))["metadata"]["uid"])
        time.sleep(0.5)
        _container_state(apiserver, ns, pod, {"running": {"startedAt": now()}})
        time.sleep(1.0)
        done = running(epoch=10, total=10)
        done["conditions"].append(condition("Succeeded", reason="TrainingCompleted", at=now()))
        set_status(apiserver, ns, name, done)
        _container_state(apiserver, ns, pod, {"terminated": {"exitCode": 0, "startedAt": now(),
                                                             "finishedAt": now()}})  # fmt: skip

    t0 = time.monotonic()
    with later(1.0, operator_and_kubelet):
        code, out, err = kt("logs", name, "-n", ns, "-f", "--rank", "0")
    assert code == 0 and out == ""  # a pod on no node has an empty log
    assert time.monotonic() - t0 < 20, "logs -f did not stop soon after the job had ended"
    assert replacement and replacement[0] != first["metadata"]["uid"]
    notes = err.splitlines()
    assert f"kubetrain: waiting for pod {pod} to be created" in notes
    assert (f"kubetrain: pod {pod} was replaced (uid {replacement[0]}); its log from the start:"
            in notes)  # fmt: skip


# --------------------------------------------------------------------------- the cluster says no


def test_a_cluster_without_the_crd_says_how_to_install_it(
    bare_apiserver: ApiServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    kt = Kt(bare_apiserver.kubeconfig, capsys)
    for args in (["list"], ["list", "-A"], ["status", "x"], ["wait", "x"], ["delete", "x"],
                 ["submit", str(job_file(tmp_path, "x"))]):  # fmt: skip
        code, _, err = kt(*args)
        assert code == cli.EXIT_CLUSTER, args
        assert err == (
            "kubetrain: the cluster has no TrainingJob CRD (trainingjobs.kubetrain.io): install"
            " kubetrain's chart (helm install kubetrain charts/kubetrain) or kubectl apply -f"
            " crds/\n"
        ), args


def test_a_user_allowed_one_namespace_is_told_what_they_may_not_do_in_another(
    apiserver: ApiServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    mine, theirs = namespace(apiserver), namespace(apiserver)
    apiserver.create({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "kubetrain-user", "namespace": mine},
        "rules": [{"apiGroups": ["kubetrain.io"], "resources": ["trainingjobs"], "verbs": ["*"]},
                  {"apiGroups": [""], "resources": ["pods", "pods/log"],
                   "verbs": ["get", "list", "watch"]}],
    })  # fmt: skip
    apiserver.create({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "kubetrain-user", "namespace": mine},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                    "name": "kubetrain-user"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": USER}],
    })  # fmt: skip
    user = Client(apiserver.user_kubeconfig, namespace=mine)
    wait_until("the RoleBinding to apply", lambda: user.list() == [], timeout=30)

    kt = Kt(apiserver.user_kubeconfig, capsys)
    name = unique("rb")
    assert kt("submit", str(job_file(tmp_path, name)), "-n", mine)[0] == 0
    assert kt("list", "-n", mine)[1].splitlines()[1].split()[0] == name

    code, _, err = kt("submit", str(job_file(tmp_path, name)), "-n", theirs)
    assert code == cli.EXIT_CLUSTER
    assert err == (
        f'kubetrain: forbidden: user "{USER}" may not create trainingjobs.kubetrain.io in'
        f' namespace "{theirs}" (ask your cluster admin for a Role that allows it)\n'
    )
    code, _, err = kt("list", "-A")
    assert code == cli.EXIT_CLUSTER
    assert f'user "{USER}" may not list trainingjobs.kubetrain.io in any namespace' in err
    with pytest.raises(Forbidden) as caught:
        Client(apiserver.user_kubeconfig, namespace=theirs).get(name)
    assert (caught.value.verb, caught.value.resource, caught.value.namespace) == (
        "get", "trainingjobs.kubetrain.io", theirs
    )  # fmt: skip
