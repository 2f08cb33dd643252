"""Checks that refuse a DeepSpeed job before any worker starts, each naming the field.

`check(spec)` returns the raw config's overrides (for the driver to show) or raises
DeepSpeedConfigError. Pure: no DeepSpeed import.
"""

from __future__ import annotations

import difflib
from typing import Any

from kubetrain.api.deepspeed.config import (
    AUTO,
    KNOWN_SECTIONS,
    RAW_FIELD,
    Conflict,
    DeepSpeedConfigError,
    effective,
)
from kubetrain.api.quantities import is_number
from kubetrain.api.spec import AggregationStrategy, TrainingJobSpec

_OBJECT_SECTIONS = frozenset({
    "activation_checkpointing", "aio", "amp", "autotuning", "bf16", "checkpoint", "comms_logger",
    "compile", "compression_training", "csv_monitor", "comet", "curriculum_learning",
    "data_efficiency", "data_types", "elasticity", "flops_profiler", "fp16", "hybrid_engine",
    "optimizer", "pipeline", "scheduler", "sparse_attention", "tensorboard", "torch_autocast",
    "wandb", "zero_optimization",
})  # fmt: skip
_POSITIVE_INTS = frozenset({
    "train_batch_size", "train_micro_batch_size_per_gpu", "gradient_accumulation_steps",
    "steps_per_print",
})  # fmt: skip
_NUMBERS = frozenset({"gradient_clipping", "gradient_predivide_factor"})
_BOOLS = frozenset({
    "dataloader_drop_last", "disable_allgather", "dump_state", "memory_breakdown",
    "prescale_gradients", "sparse_gradients", "wall_clock_breakdown",
    "zero_allow_untested_optimizer", "zero_force_ds_cpu_optimizer",
})  # fmt: skip
_OFFLOAD_DEVICES = ("none", "cpu", "nvme")


def _fail(path: str, problem: str) -> DeepSpeedConfigError:
    return DeepSpeedConfigError(f"{RAW_FIELD}{'.' + path if path else ''}: {problem}")


def _kind(value: object) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_raw(raw: object) -> None:
    """The raw config's shape: an object of known sections, each of the right type."""
    if not isinstance(raw, dict):
        raise _fail("", f"must be an object (a mapping of DeepSpeed sections), got {_kind(raw)}")
    for key, value in raw.items():
        if key not in KNOWN_SECTIONS:
            near = difflib.get_close_matches(str(key), KNOWN_SECTIONS, n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise _fail(str(key), f"unknown DeepSpeed config section{hint}")
        if value == AUTO:
            continue
        if key in _OBJECT_SECTIONS and not isinstance(value, dict):
            raise _fail(key, f"must be an object, got {_kind(value)}")
        if key in _POSITIVE_INTS and not (_is_int(value) and value >= 1):
            raise _fail(key, f"must be a positive integer, got {value!r}")
        if key in _NUMBERS and not (is_number(value) and value >= 0):
            raise _fail(key, f"must be a number >= 0, got {value!r}")
        if key in _BOOLS and not isinstance(value, bool):
            raise _fail(key, f"must be true or false, got {value!r}")
    for key in ("optimizer", "scheduler"):
        if isinstance(raw.get(key), dict):
            _check_typed_section(key, raw[key])
    for key in ("fp16", "bf16"):
        section = raw.get(key)
        enabled = section.get("enabled", False) if isinstance(section, dict) else False
        if enabled != AUTO and not isinstance(enabled, bool):
            raise _fail(f"{key}.enabled", f"must be true or false, got {enabled!r}")
    if isinstance(raw.get("zero_optimization"), dict):
        _check_zero(raw["zero_optimization"])


def _check_typed_section(key: str, section: dict[str, Any]) -> None:
    kind = section.get("type")
    if kind is not None and kind != AUTO and not isinstance(kind, str):
        raise _fail(f"{key}.type", f"must be a class name (a string), got {_kind(kind)}")
    params = section.get("params")
    if params is not None and params != AUTO and not isinstance(params, dict):
        raise _fail(f"{key}.params", f"must be an object, got {_kind(params)}")


def _check_zero(zero: dict[str, Any]) -> None:
    stage = zero.get("stage")
    if stage is not None and stage != AUTO and not (_is_int(stage) and 0 <= stage <= 3):
        raise _fail("zero_optimization.stage", f"{stage!r} is not a ZeRO stage; use 0, 1, 2 or 3")
    for key in ("offload_optimizer", "offload_param"):
        section = zero.get(key)
        if section is None or section == AUTO:
            continue
        if not isinstance(section, dict):
            raise _fail(f"zero_optimization.{key}", f"must be an object, got {_kind(section)}")
        device = section.get("device", "none")
        if device not in _OFFLOAD_DEVICES:
            raise _fail(
                f"zero_optimization.{key}.device", f"{device!r} is not one of {_OFFLOAD_DEVICES}"
            )


def _check_effective(spec: TrainingJobSpec, config: dict[str, Any]) -> None:
    """The merged config against the spec and the hardware it asks for."""
    raw = spec.distributed.deepspeed.config or {}
    on_gpu = spec.distributed.resources_per_worker.gpu > 0
    fp16 = bool(config["fp16"].get("enabled"))
    if fp16 and not on_gpu:
        where = f"{RAW_FIELD}.fp16.enabled" if "fp16" in raw else "spec.training.precision"
        raise DeepSpeedConfigError(
            f"{where}: fp16 needs a GPU (distributed.resourcesPerWorker.gpu > 0); use bf16 or "
            "fp32 on CPU"
        )
    if fp16 and config["bf16"].get("enabled"):
        raise _fail("bf16.enabled", "bf16 and fp16 cannot both be enabled")
    # The batch geometry shapes the data loader for both backends, so the spec owns it.
    owned = {
        "train_micro_batch_size_per_gpu": ("spec.dataset.batchSize", spec.dataset.batch_size),
        "gradient_accumulation_steps": (
            "spec.training.gradientAccumulationSteps",
            spec.training.gradient_accumulation_steps,
        ),
    }
    for key, (field, value) in owned.items():
        if key in raw and raw[key] not in (AUTO, value):
            raise _fail(key, f"{raw[key]} contradicts {field} ({value}); set it there instead")
    total = raw.get("train_batch_size")
    want = (
        spec.dataset.batch_size
        * spec.training.gradient_accumulation_steps
        * spec.distributed.world_size
    )
    if total not in (None, AUTO, want):
        raise _fail(
            "train_batch_size",
            f"{total} != batchSize x gradientAccumulationSteps x workers x ranksPerPod ({want});"
            " leave it out",
        )
    zero = config["zero_optimization"]
    stage = zero.get("stage", 0)
    if zero.get("offload_optimizer", {}).get("device", "none") != "none" and stage == 0:
        where = "spec.distributed.deepspeed.offload"
        if "offload_optimizer" in raw.get("zero_optimization", {}):
            where = f"{RAW_FIELD}.zero_optimization.offload_optimizer"
        raise DeepSpeedConfigError(f"{where}: offloading optimizer state needs ZeRO stage 1-3")
    if zero.get("offload_param", {}).get("device", "none") != "none" and stage != 3:
        raise _fail("zero_optimization.offload_param", "offloading parameters needs ZeRO stage 3")
    reg = spec.training.regularization
    if stage == 3 and (reg.l1 or reg.l2):
        raise DeepSpeedConfigError(
            "spec.training.regularization: l1/l2 penalties read whole weights, which ZeRO-3 "
            "partitions across workers; use zeroStage <= 2, or optimizer.weightDecay"
        )


def check(spec: TrainingJobSpec) -> list[Conflict]:
    """Refuse what a DeepSpeed job cannot run; return the raw config's overrides."""
    if spec.model.freeze.unfreeze_at_epoch is not None:
        raise DeepSpeedConfigError(
            "spec.model.freeze.unfreezeAtEpoch: DeepSpeed fixes the trained parameters when it "
            "starts; unfreezing mid-run needs backend ddp"
        )
    if spec.distributed.aggregation.strategy is not AggregationStrategy.ALLREDUCE:
        raise DeepSpeedConfigError(
            "spec.distributed.aggregation.strategy: "
            f"{spec.distributed.aggregation.strategy.value} is a DDP strategy; DeepSpeed "
            "averages gradients itself (use allreduce, or backend ddp)"
        )
    raw = spec.distributed.deepspeed.config
    if raw is not None:
        check_raw(raw)
    config, conflicts = effective(spec)
    _check_effective(spec, config)
    return conflicts
