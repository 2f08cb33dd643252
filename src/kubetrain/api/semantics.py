"""The semantic check: every mistake in a spec that is knowable before any data loads.

The spec models (`spec.py`) check each field alone; this module checks how fields fit together
and against what each dataset source is known to yield (`sources.py`). It is pure and returns
every problem at once. `kubetrain validate`, `kubetrain run` (before Ray starts), the operator
(before any pod exists) and the driver in a job's head pod all call it, so a job refused in one
place is refused in all of them, with the same words.

Rules that need the data itself (an image folder's classes, a CSV's columns) are checked once the
data is loaded, before training, by the trainer (`ModelMismatch`), and are not retried.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from kubetrain.api.artifacts import STATIC_QUANTIZABLE
from kubetrain.api.deepspeed import DeepSpeedConfigError
from kubetrain.api.deepspeed import check as check_deepspeed
from kubetrain.api.pod_rules import POD_RULES
from kubetrain.api.problem import Problem
from kubetrain.api.quantities import memory_bytes
from kubetrain.api.sources import (
    MODEL_INPUTS,
    PRETRAINED_MODELS,
    SOURCES,
    SYNTHETIC_TEXT_CLASSES,
    TEXT_MODELS,
    DataKind,
    data_kind,
    image_shape,
)
from kubetrain.api.spec import (
    Backend,
    DatasetSource,
    ExportFormat,
    GangScheduler,
    ModelName,
    Precision,
    Quantization,
    TrainingJobSpec,
)

# A Ray node takes 30% of its pod's free memory for its object store and refuses to start below
# 75 MiB (`ray start` exits 1 on every try); the training process with torch needs ~300 MiB more.
MIN_WORKER_MEMORY = 512 * 2**20
MIN_WORKER_MEMORY_TEXT = "512Mi"

Rule = Callable[[TrainingJobSpec], Iterator[Problem]]


def _model_fits_data(spec: TrainingJobSpec) -> Iterator[Problem]:
    model, source = spec.model.name, spec.dataset.source
    allowed = MODEL_INPUTS.get(model)
    kind = data_kind(spec)
    if allowed is not None and kind not in allowed:
        fitting = sorted(
            s.value for s, facts in SOURCES.items() if facts.kind in (*allowed, DataKind.ANY)
        )
        yield Problem(
            "spec.model.name",
            f"{model.value!r} takes {' or '.join(k.value for k in allowed)}, but dataset source "
            f"{source.value!r} yields {kind.value}; use a source of {', '.join(fitting)}, or a "
            "model that takes " + kind.value,
        )
        return  # the shape rules below assume the model fits the data
    yield from _input_size(spec)
    yield from _classes(spec)


def _input_size(spec: TrainingJobSpec) -> Iterator[Problem]:
    if spec.model.name is not ModelName.MLP or data_kind(spec) is not DataKind.IMAGE:
        return  # a CSV's width is known once it is read; synthetic rows take inputSize
    channels, side = image_shape(spec)
    features = channels * side * side
    if spec.model.input_size != features:
        yield Problem(
            "spec.model.inputSize",
            f"is {spec.model.input_size} but each {spec.dataset.source.value} image has "
            f"{channels}x{side}x{side} = {features} features; set inputSize: {features}"
            + ("" if spec.dataset.image_size else " (or dataset.imageSize to resize the images)"),
        )


def _classes(spec: TrainingJobSpec) -> Iterator[Problem]:
    source = spec.dataset.source
    classes = SOURCES[source].classes
    if source is DatasetSource.SYNTHETIC and spec.model.name in TEXT_MODELS:
        classes = SYNTHETIC_TEXT_CLASSES
    if classes is not None and spec.model.num_classes != classes:
        yield Problem(
            "spec.model.numClasses",
            f"is {spec.model.num_classes} but dataset source {source.value!r} has {classes} "
            f"classes; set numClasses: {classes}",
        )


def _model_options(spec: TrainingJobSpec) -> Iterator[Problem]:
    model = spec.model
    if model.name is ModelName.CUSTOM and not model.entrypoint:
        yield Problem(
            "spec.model.entrypoint",
            "is required when model.name is 'custom' (e.g. 'mypkg.nets:build')",
        )
    if model.entrypoint and model.name is not ModelName.CUSTOM:
        yield Problem(
            "spec.model.entrypoint",
            f"is only used when model.name is 'custom', not {model.name.value!r}; drop it, or "
            "set name: custom",
        )
    if model.pretrained and model.name not in PRETRAINED_MODELS:
        yield Problem(
            "spec.model.pretrained",
            f"{model.name.value!r} has no pretrained weights (bert and mobilenet_v2 do); drop it",
        )


def _freezing(spec: TrainingJobSpec) -> Iterator[Problem]:
    freeze, model = spec.model.freeze, spec.model.name
    field = "spec.model.freeze"
    nothing_to_freeze = model not in PRETRAINED_MODELS and model is not ModelName.CUSTOM
    if nothing_to_freeze and (
        freeze.backbone or freeze.embeddings or freeze.layers or freeze.unfreeze_at_epoch
    ):
        yield Problem(field, f"{model.value!r} has no pretrained parts to freeze; drop freeze")
        return
    if model is ModelName.MOBILENET_V2 and (freeze.layers or freeze.embeddings):
        yield Problem(
            field,
            "mobilenet_v2 freezes its whole backbone (backbone: true); layers and embeddings are "
            "bert's",
        )
    at = freeze.unfreeze_at_epoch
    if at is None:
        return
    epochs = spec.training.epochs
    if at > epochs:
        yield Problem(
            f"{field}.unfreezeAtEpoch",
            f"is {at}, after the last epoch ({epochs}): nothing would ever be unfrozen; set it "
            f"to at most {epochs}, or raise training.epochs",
        )
    elif at == 1:
        yield Problem(
            f"{field}.unfreezeAtEpoch",
            "is 1: everything is unfrozen before the first epoch, so nothing trains frozen; set "
            "it to 2 or later, or drop it",
        )
    nothing_frozen = not (freeze.backbone or freeze.embeddings or freeze.layers)
    if model is not ModelName.CUSTOM and nothing_frozen:
        yield Problem(
            f"{field}.unfreezeAtEpoch",
            "unfreezes, but nothing is frozen (backbone, embeddings or layers); freeze something "
            "or drop it",
        )


def _dataset_options(spec: TrainingJobSpec) -> Iterator[Problem]:
    ds = spec.dataset
    facts = SOURCES[ds.source]
    if facts.needs_path and not ds.path:
        yield Problem("spec.dataset.path", f"is required for source {ds.source.value!r}")
    if ds.path and not facts.reads_path:
        yield Problem(
            "spec.dataset.path",
            f"source {ds.source.value!r} reads no path (it ships with kubetrain or is made up); "
            "drop path",
        )
    images = data_kind(spec) is DataKind.IMAGE
    if ds.image_size is not None and not images:
        yield Problem(
            "spec.dataset.imageSize",
            f"only applies to images, and this job trains on {data_kind(spec).value}; drop it",
        )
    aug = ds.augmentation
    augmenting = aug.rotation or aug.width_shift or aug.height_shift or aug.shear or aug.zoom
    if (augmenting or aug.horizontal_flip) and not images:
        yield Problem(
            "spec.dataset.augmentation",
            f"only applies to images, and this job trains on {data_kind(spec).value}; drop it",
        )


def _hardware(spec: TrainingJobSpec) -> Iterator[Problem]:
    res = spec.distributed.resources_per_worker
    if spec.training.precision is Precision.FP16 and res.gpu == 0:
        yield Problem(
            "spec.training.precision",
            "fp16 needs a GPU (distributed.resourcesPerWorker.gpu > 0); use bf16 or fp32 on CPU",
        )
    ranks = spec.distributed.ranks_per_pod
    if ranks is not None and res.gpu % ranks:
        divisors = [n for n in range(1, res.gpu + 1) if res.gpu % n == 0]
        yield Problem(
            "spec.distributed.ranksPerPod",
            f"{ranks} ranks cannot share {res.gpu} GPUs evenly (resourcesPerWorker.gpu); use "
            f"{_either(divisors)}, or leave it out for one rank per GPU",
        )
    if memory_bytes(res.memory) < MIN_WORKER_MEMORY:
        yield Problem(
            "spec.distributed.resourcesPerWorker.memory",
            f"{res.memory} is too little for a worker: its Ray node takes 30% of the pod's free "
            "memory for an object store of at least 75 MiB, and the training process needs the "
            f"rest; set memory: {MIN_WORKER_MEMORY_TEXT} or more",
        )


def _storage(spec: TrainingJobSpec) -> Iterator[Problem]:
    ckpt = spec.checkpoint
    if ckpt.claim_name and ckpt.storage_path.startswith("s3://"):
        yield Problem(
            "spec.checkpoint.claimName",
            f"mounts a volume at a local storagePath, but storagePath is {ckpt.storage_path!r}: "
            "drop claimName, or use a local path",
        )
    if ckpt.s3_endpoint and not ckpt.storage_path.startswith("s3://"):
        yield Problem(
            "spec.checkpoint.s3Endpoint",
            f"is only used with an s3:// storagePath, not {ckpt.storage_path!r}; drop it",
        )


def _backend(spec: TrainingJobSpec) -> Iterator[Problem]:
    if spec.distributed.backend is not Backend.DEEPSPEED:
        return
    try:
        check_deepspeed(spec)
    except DeepSpeedConfigError as exc:
        field, _, message = str(exc).partition(": ")
        yield Problem(field, message)


def _artifacts(spec: TrainingJobSpec) -> Iterator[Problem]:
    """What the exported model and its compressed variants can be, for this model."""
    model = spec.model.name
    if spec.training.entrypoint and (spec.export or spec.compression):
        field = "spec.export" if spec.export else "spec.compression"
        yield Problem(
            field,
            "needs kubetrain's own training loop, and training.entrypoint replaces it (your loop "
            "saves its own model); drop it, or drop training.entrypoint",
        )
    if spec.export is not None:
        chosen = spec.export.format
        if chosen is ExportFormat.HUGGINGFACE and model is not ModelName.BERT:
            yield Problem(
                "spec.export.format",
                f"huggingface (save_pretrained) is for bert, not {model.value!r}; use "
                "torchscript or auto",
            )
        if chosen is ExportFormat.TORCHSCRIPT and model is ModelName.BERT:
            yield Problem(
                "spec.export.format",
                "bert exports with save_pretrained (model and tokenizer), which plain "
                "transformers loads; use huggingface or auto",
            )
    if spec.compression is None:
        return
    modes = spec.compression.quantization
    field = "spec.compression.quantization"
    if len(set(modes)) < len(modes):
        yield Problem(field, "lists a mode twice; list dynamic and static at most once each")
    if Quantization.STATIC in modes and model not in STATIC_QUANTIZABLE:
        allowed = " and ".join(sorted(m.value for m in STATIC_QUANTIZABLE))
        yield Problem(
            field,
            f"static int8 needs a model whose every layer has an int8 kernel ({allowed}); "
            f"{model.value!r} cannot take it: use dynamic",
        )


def _shared_storage(spec: TrainingJobSpec) -> Iterator[Problem]:
    """On a cluster, Ray Train writes checkpoints in the worker pods and tracks them in the head
    pod: a local storagePath must be a volume they all mount."""
    ckpt = spec.checkpoint
    if not ckpt.storage_path.startswith("s3://") and not ckpt.claim_name:
        yield Problem(
            "spec.checkpoint.claimName",
            f"storagePath {ckpt.storage_path!r} is a local directory, and the pods of a job "
            "share none (Ray Train writes checkpoints in the worker pods and tracks them in the "
            "head pod): set claimName to a PersistentVolumeClaim every pod can mount "
            "(ReadWriteMany when they span nodes), or storagePath to s3://bucket/prefix",
        )


def _scheduling(spec: TrainingJobSpec) -> Iterator[Problem]:
    """Each gang scheduler's own settings need that scheduler (as the CRD's rules say)."""
    scheduling = spec.scheduling
    if scheduling.queue is not None and scheduling.gang is not GangScheduler.VOLCANO:
        yield Problem(
            "spec.scheduling.queue", "is a Volcano queue: set gang: volcano, or drop queue"
        )
    timeout = scheduling.schedule_timeout_seconds
    if timeout is not None and scheduling.gang is not GangScheduler.COSCHEDULING:
        yield Problem(
            "spec.scheduling.scheduleTimeoutSeconds",
            "is the coscheduling plugin's: set gang: coscheduling, or drop it",
        )


RULES: tuple[Rule, ...] = (
    _model_fits_data,
    _model_options,
    _freezing,
    _dataset_options,
    _hardware,
    _storage,
    _backend,
    _artifacts,
    *POD_RULES,
    _scheduling,
)


CLUSTER_RULES: tuple[Rule, ...] = (_shared_storage,)


def check_spec(spec: TrainingJobSpec, *, on_cluster: bool = False) -> list[Problem]:
    """Every cross-field problem in `spec`, in the order of the spec's sections; [] if none.
    `on_cluster`: also what only matters in pods (a local run ignores claimName)."""
    rules = RULES + CLUSTER_RULES if on_cluster else RULES
    found = [problem for rule in rules for problem in rule(spec)]
    return list(dict.fromkeys(found))  # a DeepSpeed job's fp16 on CPU is caught twice


def _either(numbers: list[int]) -> str:
    """'1, 2 or 4'."""
    words = [str(n) for n in numbers]
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"
