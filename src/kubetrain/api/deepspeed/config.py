"""The DeepSpeed config a TrainingJob asks for: generated from the spec, merged with a raw one.

Pure functions over dicts (no DeepSpeed import), so the driver can check a job before any worker
starts and tests need no cluster.

What the spec maps onto (DeepSpeed's config-json names):
- dataset.batchSize → train_micro_batch_size_per_gpu; training.gradientAccumulationSteps →
  gradient_accumulation_steps (train_batch_size is left for DeepSpeed to derive from the world
  size, so one spec runs on any number of workers);
- training.optimizer → optimizer, as the torch optimizer DDP uses (DeepSpeed builds torch.optim
  classes by name; Adam/AdamW use torch's on CPU, DeepSpeed's fused kernels on GPU);
- training.gradientClipNorm → gradient_clipping; training.precision → bf16 / fp16;
- distributed.deepspeed.zeroStage → zero_optimization.stage; offload: cpu →
  zero_optimization.offload_optimizer.
The LR schedule (warmup, then step/exponential/cosine decay per epoch) has no exact DeepSpeed
equivalent (its WarmupLR starts at lr 0, not lr/warmup), so the engine hands DeepSpeed the same
schedule DDP uses as a client scheduler; a raw `scheduler` section replaces it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from kubetrain.api.spec import OptimizerName, Precision, ScheduleName, TrainingJobSpec, ZeroOffload

RAW_FIELD = "spec.distributed.deepspeed.config"

# Top-level sections of DeepSpeed's config (docs: config-json, DeepSpeed 0.14-0.19). Anything else
# is a typo or a key meant for another tool, and DeepSpeed would silently ignore it.
KNOWN_SECTIONS = frozenset({
    "activation_checkpointing", "aio", "amp", "autotuning", "bf16", "checkpoint", "comms_logger",
    "communication_data_type", "compile", "compression_training", "csv_monitor", "comet",
    "curriculum_learning", "data_efficiency", "data_types", "dataloader_drop_last",
    "disable_allgather", "dump_state", "elasticity", "flops_profiler", "fp16",
    "gradient_accumulation_steps", "gradient_clipping", "gradient_predivide_factor",
    "hybrid_engine", "memory_breakdown", "optimizer", "pipeline", "prescale_gradients",
    "scheduler", "seq_parallel_communication_data_type", "sparse_attention", "sparse_gradients",
    "steps_per_print", "tensorboard", "torch_autocast", "train_batch_size",
    "train_micro_batch_size_per_gpu", "wall_clock_breakdown", "wandb",
    "zero_allow_untested_optimizer", "zero_force_ds_cpu_optimizer", "zero_optimization",
})  # fmt: skip

# Where each generated value comes from, so a conflict names the spec field it overrides.
SOURCES = {
    "train_micro_batch_size_per_gpu": "spec.dataset.batchSize",
    "gradient_accumulation_steps": "spec.training.gradientAccumulationSteps",
    "optimizer": "spec.training.optimizer",
    "gradient_clipping": "spec.training.gradientClipNorm",
    "bf16": "spec.training.precision",
    "fp16": "spec.training.precision",
    "zero_optimization.stage": "spec.distributed.deepspeed.zeroStage",
    "zero_optimization.offload_optimizer": "spec.distributed.deepspeed.offload",
    "scheduler": "spec.training.lrSchedule",
}

# A raw value of "auto" (Hugging Face's convention) means "what the spec says".
AUTO = "auto"


class DeepSpeedConfigError(ValueError):
    """A raw DeepSpeed config kubetrain cannot run; the message starts with the field path."""


@dataclass(frozen=True)
class Conflict:
    """A value the raw config sets differently from the one generated from the spec."""

    path: str  # dotted, e.g. "zero_optimization.stage"
    generated: Any
    raw: Any

    def __str__(self) -> str:
        source = _source(self.path)
        origin = f" (from {source})" if source else ""
        return f"{RAW_FIELD}.{self.path}: {self.raw!r} overrides {self.generated!r}{origin}"


def _source(path: str) -> str | None:
    while path:
        if path in SOURCES:
            return SOURCES[path]
        path = path.rpartition(".")[0]
    return None


# --------------------------------------------------------------------------- generate


def _optimizer(spec: TrainingJobSpec, on_gpu: bool) -> dict[str, Any]:
    opt = spec.training.optimizer
    lr, wd = opt.lr, opt.weight_decay
    betas = list(opt.betas)
    # On CPU DeepSpeed's own Adam is a C++ build; torch's is the one DDP runs anyway.
    torch_adam = {} if on_gpu else {"torch_adam": True}
    params: dict[str, Any]
    match opt.name:
        case OptimizerName.SGD:
            return {"type": "SGD", "params": {"lr": lr, "weight_decay": wd}}
        case OptimizerName.MOMENTUM:
            params = {"lr": lr, "momentum": opt.momentum, "weight_decay": wd}
            return {"type": "SGD", "params": params}
        case OptimizerName.ADAM:
            # DeepSpeed's "Adam" is AdamW unless adam_w_mode says otherwise.
            params = {"lr": lr, "betas": betas, "weight_decay": wd, "adam_w_mode": False}
            return {"type": "Adam", "params": params | torch_adam}
        case OptimizerName.ADAMW:
            params = {"lr": lr, "betas": betas, "weight_decay": wd}
            return {"type": "AdamW", "params": params | torch_adam}
        case OptimizerName.ADAGRAD:
            return {"type": "Adagrad", "params": {"lr": lr, "weight_decay": wd}}
        case OptimizerName.RMSPROP:
            params = {"lr": lr, "momentum": opt.momentum, "weight_decay": wd}
            return {"type": "RMSprop", "params": params}
    raise AssertionError(opt.name)


def build_config(spec: TrainingJobSpec) -> dict[str, Any]:
    """The DeepSpeed config equivalent to the spec (see the module docstring for the mapping)."""
    train, ds = spec.training, spec.distributed.deepspeed
    on_gpu = spec.distributed.resources_per_worker.gpu > 0
    zero: dict[str, Any] = {"stage": ds.zero_stage}
    if ds.offload is ZeroOffload.CPU:
        zero["offload_optimizer"] = {"device": "cpu"}
    if ds.zero_stage == 3:
        # So every checkpoint also holds a whole model.pt, as DDP's do.
        zero["stage3_gather_16bit_weights_on_model_save"] = True
    return {
        "train_micro_batch_size_per_gpu": spec.dataset.batch_size,
        "gradient_accumulation_steps": train.gradient_accumulation_steps,
        "optimizer": _optimizer(spec, on_gpu),
        "gradient_clipping": train.gradient_clip_norm or 0.0,  # 0 turns clipping off
        "bf16": {"enabled": train.precision is Precision.BF16},
        "fp16": {"enabled": train.precision is Precision.FP16},
        "zero_optimization": zero,
        # ZeRO refuses optimizers DeepSpeed did not test (SGD, RMSprop, torch's Adam) without it.
        "zero_allow_untested_optimizer": True,
        # kubetrain prints its own progress line; DeepSpeed's every-10-steps log is noise.
        "steps_per_print": 2**31 - 1,
    }


# --------------------------------------------------------------------------- merge


def merge(
    generated: dict[str, Any], raw: dict[str, Any], prefix: str = ""
) -> tuple[dict[str, Any], list[Conflict]]:
    """`raw` over `generated`, field by field; every value that raw changes is a Conflict.

    A section whose `type` raw changes (optimizer, scheduler) is taken whole from raw: the
    generated parameters belong to another class.
    """
    merged = copy.deepcopy(generated)
    conflicts: list[Conflict] = []
    for key, value in raw.items():
        path = f"{prefix}{key}"
        if key not in generated:
            merged[key] = copy.deepcopy(value)
            continue
        mine = generated[key]
        if value in (AUTO, mine):
            continue
        if isinstance(mine, dict) and isinstance(value, dict):
            if "type" in value and value["type"] not in (AUTO, mine.get("type")):
                merged[key] = copy.deepcopy(value)
                conflicts.append(Conflict(f"{path}.type", mine.get("type"), value["type"]))
                continue
            merged[key], inner = merge(mine, value, f"{path}.")
            conflicts.extend(inner)
        else:
            merged[key] = copy.deepcopy(value)
            conflicts.append(Conflict(path, mine, value))
    return merged, conflicts


def effective(spec: TrainingJobSpec) -> tuple[dict[str, Any], list[Conflict]]:
    """The config DeepSpeed runs with, and what the job's raw config overrode."""
    raw = spec.distributed.deepspeed.config or {}
    merged, conflicts = merge(build_config(spec), raw)
    schedule = spec.training.lr_schedule
    if "scheduler" in raw and (schedule.name is not ScheduleName.NONE or schedule.warmup_steps):
        # DeepSpeed runs a configured scheduler instead of the client one built from the spec.
        ours = f"{schedule.name.value}, warmup {schedule.warmup_steps} steps"
        conflicts.append(Conflict("scheduler", ours, raw["scheduler"]))
    return merged, conflicts
