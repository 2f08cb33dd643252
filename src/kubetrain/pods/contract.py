"""What the operator's manifests and the in-pod program agree on: paths, flags and exit codes.

Pure: the operator (render) and the pod (`kubetrain.pods`) both import it, so a renamed flag or
path cannot leave one side behind. Imports nothing but the standard library.
"""

from __future__ import annotations

MODULE = "kubetrain.pods"  # run as `python -m kubetrain.pods head|worker ...`

# The resolved TrainingJob, as JSON, in the job's ConfigMap under CONFIG_KEY, mounted at CONFIG_DIR.
CONFIG_KEY = "trainingjob.json"
CONFIG_DIR = "/etc/kubetrain"
JOB_FILE = f"{CONFIG_DIR}/{CONFIG_KEY}"

# The head creates this file when training starts; its readiness probe looks for it, and the
# operator sets Running once the head is Ready.
TRAINING_MARKER = "/tmp/kubetrain/training"  # inside the container

# A worker pod's Ray node offers one of this custom Ray resource per training rank, and each Ray
# Train worker asks for one: each pod gets exactly its ranks (spec.distributed.ranksPerPod).
WORKER_RESOURCE = "kubetrain_worker"

# The head's exit codes, read by the operator.
EXIT_FAILED = 1  # training failed after Ray Train's own retries: a restart would fail the same
# The job cannot run as written, or failed as it would again: the operator fails it with reason
# InvalidSpec and does not restart it.
EXIT_INVALID = 2

HEAD = "head"
WORKER = "worker"


def head_args(
    *, gcs_port: int, dashboard_port: int | None, metrics_port: int, storage_path: str | None
) -> list[str]:
    """The head's arguments after `python -m kubetrain.pods`.

    `dashboard_port`: None runs no dashboard. `storage_path`: where the job's checkpoint claim
    is mounted in the pod, if it has one.
    """
    args = [
        HEAD,
        "--job-file", JOB_FILE,
        "--gcs-port", str(gcs_port),
        "--metrics-port", str(metrics_port),
    ]  # fmt: skip
    if dashboard_port is not None:
        args += ["--dashboard-port", str(dashboard_port)]
    if storage_path is not None:
        args += ["--storage-path", storage_path]
    return args


def worker_args(*, head_address: str, num_cpus: int, num_gpus: int, ranks: int) -> list[str]:
    """A worker pod's arguments after `python -m kubetrain.pods`. `ranks`: the training ranks
    this pod's Ray node takes."""
    return [
        WORKER,
        "--head-address", head_address,
        "--num-cpus", str(num_cpus),
        "--num-gpus", str(num_gpus),
        "--ranks", str(ranks),
    ]  # fmt: skip
