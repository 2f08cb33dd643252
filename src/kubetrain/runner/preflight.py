"""Checks that fail a job before any worker starts, each naming the field and the fix."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from kubetrain.api.constants import DEEPSPEED_CONFIG_DIR, DEEPSPEED_CONFIG_KEY
from kubetrain.api.deepspeed import Conflict, effective
from kubetrain.api.semantics import check_spec
from kubetrain.api.spec import Backend, ModelName, TrainingJobSpec
from kubetrain.trainer.data import check_dataset_path

# Where the operator mounts spec.distributed.deepspeed.configMapRef in the driver's pod; the
# driver inlines it into the spec the workers get.
DEEPSPEED_CONFIG_MOUNT = Path(DEEPSPEED_CONFIG_DIR) / DEEPSPEED_CONFIG_KEY


class PreflightError(ValueError):
    pass


def _need(module: str, field: str, why: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise PreflightError(f"{field}: {why} needs the Python package {module!r}; install it")


def check(spec: TrainingJobSpec) -> list[Conflict]:
    """Raise PreflightError for a job that cannot run; return the DeepSpeed overrides to show.

    The semantic check first (the CLI and the operator ran it already; the driver in a pod has
    only this), then what only this machine can tell: the dataset path, the packages."""
    problems = check_spec(spec)
    if problems:
        raise PreflightError("; ".join(str(p) for p in problems))
    try:
        check_dataset_path(spec)
    except FileNotFoundError as exc:
        raise PreflightError(str(exc)) from None
    if spec.model.name is ModelName.BERT:
        _need("transformers", "spec.model.name", "bert")
    if spec.distributed.backend is not Backend.DEEPSPEED:
        return []
    _need("deepspeed", "spec.distributed.backend", "deepspeed")
    return effective(spec)[1]


def check_local_gpus(spec: TrainingJobSpec, gpus_here: float) -> None:
    """On a local cluster, workers that ask for more GPUs than the machine has would wait for
    them forever (Ray has no autoscaler to ask): fail at once instead, naming the fix. A
    cluster Ray is attached to may grow, so it is not checked."""
    per_worker = spec.distributed.resources_per_worker.gpu
    needed = per_worker * spec.distributed.workers
    if needed <= gpus_here:
        return
    have = f"this machine has {gpus_here:g}" if gpus_here else "this machine has none"
    raise PreflightError(
        f"spec.distributed.resourcesPerWorker.gpu: {spec.distributed.workers} worker(s) x "
        f"{per_worker} GPU need {needed} GPU(s), {have} (as Ray sees it); set gpu: 0 to train "
        "on the CPU, or fewer workers (spec.distributed.workers, or --workers)"
    )


def resolve_deepspeed_config(
    spec: TrainingJobSpec, mount: Path = DEEPSPEED_CONFIG_MOUNT
) -> TrainingJobSpec:
    """The spec with a ConfigMap-held raw DeepSpeed config read into `deepspeed.config`."""
    ds = spec.distributed.deepspeed
    if ds.config_map_ref is None or spec.distributed.backend is not Backend.DEEPSPEED:
        return spec  # backend ddp ignores the deepspeed section, ConfigMap included
    field = "spec.distributed.deepspeed.configMapRef"
    if ds.config is not None:
        raise PreflightError(f"{field}: give the raw config inline or by ConfigMap, not both")
    if not mount.is_file():
        raise PreflightError(
            f"{field}: no {mount}: in a cluster, create ConfigMap {ds.config_map_ref!r} in the "
            f"job's namespace with the config under key {DEEPSPEED_CONFIG_KEY!r} (the operator "
            "mounts it there); for a local run put the config in "
            "spec.distributed.deepspeed.config"
        )
    try:
        raw = json.loads(mount.read_text())
    except json.JSONDecodeError as exc:
        raise PreflightError(f"{field}: {mount} is not JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise PreflightError(f"{field}: {mount} must hold a JSON object, not {type(raw).__name__}")
    ds = ds.model_copy(update={"config": raw, "config_map_ref": None})
    distributed = spec.distributed.model_copy(update={"deepspeed": ds})
    return spec.model_copy(update={"distributed": distributed})
