"""The head's progress, written into the TrainingJob's status after every epoch.

The head pod's ServiceAccount may patch this job's status and nothing else. Needs no Kubernetes
client: a status patch is one HTTPS request.
"""

from __future__ import annotations

import json
import logging
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from kubetrain.api import GROUP, PLURAL, VERSION
from kubetrain.api.report import EpochReport
from kubetrain.api.status import ProgressStatus
from kubetrain.runner.reports import EpochUpdate, WorkerFailure

log = logging.getLogger("kubetrain.pods")

SA_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


def progress_status(
    report: EpochReport, checkpoint: str | None, eta: float | None
) -> ProgressStatus:
    """The driver's part of the status, from one epoch report (the operator owns the rest)."""
    fields: dict[str, object] = {
        "epoch": report.epoch,
        "total_epochs": report.total_epochs,
        "progress": f"{report.epoch}/{report.total_epochs}",
        "metrics": {f"val_{name}": value for name, value in report.val.items()},
    }
    if report.step is not None:
        fields["step"] = report.step
    if report.world_size is not None:
        fields["world_size"] = report.world_size
    if report.val_loss is not None:
        fields["loss"] = round(report.val_loss, 6)
    if report.metric is not None:
        fields["metric_summary"] = f"{report.metric_name}={report.metric:.4f}"
    if report.samples_per_second is not None:
        fields["samples_per_second"] = round(report.samples_per_second, 1)
    if eta is not None:
        fields["eta_seconds"] = round(eta, 1)
    if checkpoint:
        fields["checkpoint"] = checkpoint
    return ProgressStatus.model_validate(fields)


@dataclass(frozen=True)
class StatusWriter:
    """Merge-patches the job's status subresource with the pod's ServiceAccount token."""

    url: str  # .../namespaces/NS/trainingjobs/NAME/status
    token_file: Path
    context: ssl.SSLContext
    timeout: float = 10.0  # seconds; a slow API server must not stall training

    @classmethod
    def in_cluster(cls, env: Mapping[str, str], *, namespace: str, name: str) -> StatusWriter:
        host, port = env["KUBERNETES_SERVICE_HOST"], env.get("KUBERNETES_SERVICE_PORT", "443")
        if ":" in host:
            host = f"[{host}]"
        url = (
            f"https://{host}:{port}/apis/{GROUP}/{VERSION}/namespaces/{namespace}"
            f"/{PLURAL}/{name}/status"
        )
        context = ssl.create_default_context(cafile=str(SA_DIR / "ca.crt"))
        return cls(url, SA_DIR / "token", context)

    def patch(self, status: ProgressStatus) -> bool:
        """True if the patch landed. Failures are logged: progress is not worth a failed run."""
        request = urllib.request.Request(
            self.url,
            data=json.dumps({"status": status.patch()}).encode(),
            method="PATCH",
            headers={
                "Content-Type": "application/merge-patch+json",
                # Read on every call: projected tokens rotate.
                "Authorization": f"Bearer {self.token_file.read_text().strip()}",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout, context=self.context):
                return True
        except (urllib.error.URLError, OSError) as exc:
            log.warning("cannot patch the job status: %s", exc)
            return False


class StatusSink:
    """A `kubetrain.runner.ProgressSink` that writes progress into the TrainingJob's status."""

    def __init__(self, patch: Callable[[ProgressStatus], object]) -> None:
        self.patch = patch

    def on_epoch(self, update: EpochUpdate, eta_seconds: float | None) -> None:
        status = progress_status(update.report, update.checkpoint, eta_seconds)
        log.info("epoch %s: %s", status.progress, status.metric_summary or "")
        self.patch(status)

    def on_worker_failure(self, failure: WorkerFailure) -> None:
        log.warning("%s", failure.describe())
