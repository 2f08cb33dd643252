"""The function Ray Train runs in each worker process: restore, train, report, checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ray.train
import ray.train.torch

from kubetrain.api.artifacts import plan as artifact_plan
from kubetrain.api.report import EpochReport
from kubetrain.api.spec import TrainingJobSpec
from kubetrain.trainer.artifacts.worker import export_trained
from kubetrain.trainer.entrypoints import EntrypointError, import_entrypoint
from kubetrain.trainer.failures import WillRecur, recurring_setup_error
from kubetrain.trainer.loop import WorkerIdentity, WorkerLoop
from kubetrain.trainer.say import say


def worker_config(
    spec: TrainingJobSpec,
    *,
    job: str,
    namespace: str,
    metrics_port: int | None,
    metrics_port_per_rank: bool,
) -> dict[str, Any]:
    """The plain-JSON config handed to every worker (specs travel as dicts, not objects)."""
    return {
        "spec": spec.model_dump(mode="json", by_alias=True),
        "job": job,
        "namespace": namespace,
        "metrics_port": metrics_port,
        "metrics_port_per_rank": metrics_port_per_rank,
    }


def train_loop_per_worker(config: dict[str, Any]) -> None:
    spec = TrainingJobSpec.model_validate(config["spec"])
    if spec.training.entrypoint:
        # A user-supplied loop: it gets the same config and calls ray.train.report itself.
        try:
            user_loop = import_entrypoint(
                spec.training.entrypoint, field="spec.training.entrypoint"
            )
        except EntrypointError as exc:
            raise WillRecur(str(exc)) from exc
        user_loop(config)
        return
    ctx = ray.train.get_context()
    who = WorkerIdentity(
        config["job"], config["namespace"], ctx.get_world_rank(), ctx.get_world_size()
    )
    device = ray.train.torch.get_device()
    # Which rank runs where: with several ranks per pod, each has its own local rank and device.
    say(
        f"rank {who.rank} of {who.world_size}: local rank {ctx.get_local_rank()} of "
        f"{ctx.get_local_world_size()} on node {ctx.get_node_rank()}, device {device}"
    )
    try:
        loop = WorkerLoop(spec, who, device)
    except Exception as exc:
        # Data and model are set up by what the user wrote: some mistakes only show here.
        recurring = recurring_setup_error(exc)
        if recurring is None:
            raise
        raise recurring from exc
    restored = ray.train.get_checkpoint()
    if restored is not None:
        with restored.as_directory() as directory:
            loop.restore(Path(directory))
    loop.start()
    port = config.get("metrics_port")
    if port:
        # One machine: a port per rank. A worker pod: a port per rank in the pod.
        per_rank = config.get("metrics_port_per_rank")
        loop.serve_metrics(int(port) + (who.rank if per_rank else ctx.get_local_rank()))

    def report(epoch: EpochReport, directory: Path | None) -> None:
        saved = ray.train.Checkpoint.from_directory(str(directory)) if directory else None
        ray.train.report(epoch.to_metrics(), checkpoint=saved)

    try:
        loop.run(report)
        exported = artifact_plan(spec)
        if exported is not None:
            export_trained(loop, exported)
    finally:
        if loop.prometheus is not None:
            loop.prometheus.close()
