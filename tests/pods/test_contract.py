"""The contract between what the operator renders and what the pods run."""

from __future__ import annotations

import subprocess
import sys

from kubetrain.pods import contract
from kubetrain.pods.__main__ import parser
from kubetrain_operator.config import PodSettings
from kubetrain_operator.render import head_pod, worker_pod
from tests.operator.helpers import api_job

SETTINGS = PodSettings()


def _program_args(pod: dict[str, object]) -> list[str]:
    command = pod["spec"]["containers"][0]["command"]  # type: ignore[index]
    assert command[1:3] == ["-m", contract.MODULE], command
    return list(command[3:])


def test_the_pod_program_understands_the_head_command_the_operator_renders() -> None:
    job = api_job(checkpoint={"storagePath": "runs", "claimName": "ckpt"})
    args = parser().parse_args(_program_args(head_pod(job, attempt=0, settings=SETTINGS)))
    ports = SETTINGS.ports
    assert (args.role, args.job_file) == (contract.HEAD, contract.JOB_FILE)
    assert (args.gcs_port, args.metrics_port) == (ports.gcs, ports.metrics)
    assert args.dashboard_port is None  # no dashboard unless the spec asks
    assert args.storage_path == "/kubetrain/runs"  # where the claim is mounted


def test_the_pod_program_understands_the_worker_command_the_operator_renders() -> None:
    job = api_job(distributed={"workers": 2, "resourcesPerWorker": {"cpu": "1500m", "gpu": 1}})
    args = parser().parse_args(_program_args(worker_pod(job, 1, attempt=0, settings=SETTINGS)))
    assert (args.role, args.num_cpus, args.num_gpus) == (contract.WORKER, 2, 1)
    assert args.head_address == f"t-head.ml.svc:{SETTINGS.ports.gcs}"


def test_the_job_file_is_where_the_config_map_is_mounted() -> None:
    head = head_pod(api_job(), attempt=0, settings=SETTINGS)
    mounts = head["spec"]["containers"][0]["volumeMounts"]
    assert {"name": "config", "mountPath": contract.CONFIG_DIR, "readOnly": True} in mounts
    assert f"{contract.CONFIG_DIR}/{contract.CONFIG_KEY}" == contract.JOB_FILE


def test_importing_the_contract_and_the_operator_loads_no_ml_framework() -> None:
    code = (
        "import sys, kubetrain_operator.render, kubetrain.pods.contract; "
        "bad = [m for m in ('torch', 'ray', 'kubetrain.runner', 'kubetrain.trainer') "
        "if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def test_the_pod_program_imports_neither_kopf_nor_a_kubernetes_client() -> None:
    code = (
        "import sys, kubetrain.pods.__main__, kubetrain.pods.status_sink; "
        "bad = [m for m in ('kopf', 'kubernetes') if m in sys.modules]; "
        "sys.exit(1 if bad else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_a_dashboard_the_spec_asks_for_reaches_the_head_program() -> None:
    job = api_job(distributed={"rayDashboard": True})
    args = parser().parse_args(_program_args(head_pod(job, attempt=0, settings=SETTINGS)))
    assert args.dashboard_port == SETTINGS.ports.dashboard
