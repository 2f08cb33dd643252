"""The DeepSpeed backend: config generation and checks (pure), engine and checkpoints."""

from kubetrain.trainer.deepspeed.checks import check, check_raw
from kubetrain.trainer.deepspeed.config import (
    Conflict,
    DeepSpeedConfigError,
    build_config,
    effective,
    merge,
)

__all__ = [
    "Conflict",
    "DeepSpeedConfigError",
    "build_config",
    "check",
    "check_raw",
    "effective",
    "merge",
]
