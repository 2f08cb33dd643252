"""Checks that fail a job before any worker starts, each naming the field and the fix."""

from __future__ import annotations

import importlib.util

from kubetrain.api.spec import Backend, DatasetSource, ModelName, Precision, TrainingJobSpec
from kubetrain.trainer.data import check_dataset_path


class PreflightError(ValueError):
    pass


def _need(module: str, field: str, why: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise PreflightError(f"{field}: {why} needs the Python package {module!r}; install it")


def check(spec: TrainingJobSpec) -> None:
    try:
        check_dataset_path(spec)
    except FileNotFoundError as exc:
        raise PreflightError(str(exc)) from None
    gpus = spec.distributed.resources_per_worker.gpu
    if spec.training.precision is Precision.FP16 and gpus == 0:
        raise PreflightError(
            "spec.training.precision: fp16 needs a GPU (distributed.resourcesPerWorker.gpu > 0); "
            "use bf16 or fp32 on CPU"
        )
    if spec.model.name is ModelName.BERT:
        _need("transformers", "spec.model.name", "bert")
    if spec.dataset.source is DatasetSource.IMDB:
        _need("datasets", "spec.dataset.source", "imdb")
    if spec.distributed.backend is Backend.DEEPSPEED:
        _need("deepspeed", "spec.distributed.backend", "deepspeed")
