"""The Ray Train trainer for a TrainingJob: workers, resources, storage, callbacks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import ray.train
from ray.train.torch import TorchConfig

from kubetrain.api.job import TrainingJob
from kubetrain.api.quantities import cpu_cores
from kubetrain.runner._ray.lean_trainer import LeanTorchTrainer
from kubetrain.runner.abort import ControllerAnnouncer
from kubetrain.runner.callbacks import PreemptionReporter, ProgressCallback
from kubetrain.runner.channel import ProgressChannel
from kubetrain.trainer.storage import Storage
from kubetrain.trainer.train_func import train_loop_per_worker, worker_config


def build_trainer(
    job: TrainingJob,
    storage: Storage,
    channel: ProgressChannel,
    *,
    metrics_port_per_rank: bool,
    worker_resources: Mapping[str, float] | None = None,
    local_cluster: bool,
) -> LeanTorchTrainer:
    spec = job.spec
    dist = spec.distributed
    res = dist.resources_per_worker
    use_gpu = res.gpu > 0
    # A worker pod's resources are shared by its ranks (Ray Train workers): Ray places
    # ranks_in_pod of them on each pod's Ray node, one GPU (or several) each.
    ranks = dist.ranks_in_pod
    per_worker: dict[str, float] = {"CPU": cpu_cores(res.cpu) / ranks, **(worker_resources or {})}
    if use_gpu:
        per_worker["GPU"] = res.gpu / ranks
    config = worker_config(
        spec,
        job=job.name,
        namespace=job.namespace,
        metrics_port=spec.metrics.port if spec.metrics.enabled else None,
        metrics_port_per_rank=metrics_port_per_rank,
    )
    # One list, pickled at once: the controller's callbacks share one copy of the channel,
    # which numbers what they put. (Ray Train types them as Tune's callbacks: Any.)
    callbacks: list[Any] = [
        ProgressCallback(channel),
        PreemptionReporter(channel),
        ControllerAnnouncer(channel),
    ]
    return LeanTorchTrainer(
        train_loop_per_worker,
        local_cluster=local_cluster,
        train_loop_config=config,
        # gloo on CPU, NCCL on GPU.
        torch_config=TorchConfig(backend="nccl" if use_gpu else "gloo"),
        scaling_config=ray.train.ScalingConfig(
            num_workers=dist.world_size, use_gpu=use_gpu, resources_per_worker=per_worker
        ),
        run_config=ray.train.RunConfig(
            name=job.name,
            storage_path=storage.path,
            storage_filesystem=storage.filesystem,
            failure_config=ray.train.FailureConfig(max_failures=dist.max_failures),
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=spec.checkpoint.keep),
            callbacks=callbacks,
        ),
    )
