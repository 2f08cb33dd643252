"""kubetrain's cluster client: TrainingJobs on a cluster from Python and from `kubetrain`'s
cluster verbs (submit, list, status, logs, wait, delete, metrics).

    from kubetrain.api import load_job
    from kubetrain.client import Client, JobFailed

    with Client() as kt:                  # the kubeconfig's current context, as kubectl
        job = kt.submit(load_job("examples/mnist-mlp.yaml"))
        try:
            kt.wait(job.name, timeout=3600, on_update=lambda j: print(j.status))
        except JobFailed as exc:
            print(exc.failure)            # reason, message, pod and container

Needs the `kubernetes` package (`pip install 'kubetrain[cluster]'`). The typed models are
kubetrain's own (`kubetrain.api`); every failure is a `ClusterError` that says why in one line.
"""

from kubetrain.client._transport import Timeouts
from kubetrain.client.client import Client
from kubetrain.client.errors import (
    ApiError,
    ClusterError,
    ConfigError,
    CrdNotInstalled,
    Forbidden,
    JobExists,
    JobFailed,
    JobNotFound,
    LogUnavailable,
    NotFound,
    PodNotFound,
    Rejected,
    Unauthorized,
    Unreachable,
    WaitTimeout,
)
from kubetrain.client.views import Failure, JobStatus, WaitFor

__all__ = [
    "ApiError",
    "Client",
    "ClusterError",
    "ConfigError",
    "CrdNotInstalled",
    "Failure",
    "Forbidden",
    "JobExists",
    "JobFailed",
    "JobNotFound",
    "JobStatus",
    "LogUnavailable",
    "NotFound",
    "PodNotFound",
    "Rejected",
    "Timeouts",
    "Unauthorized",
    "Unreachable",
    "WaitFor",
    "WaitTimeout",
]
