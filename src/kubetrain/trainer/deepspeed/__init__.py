"""The DeepSpeed backend: engine and checkpoints. Its config and checks are pure, in
`kubetrain.api.deepspeed`, re-exported here for the engine's callers."""

from kubetrain.api.deepspeed import (
    Conflict,
    DeepSpeedConfigError,
    build_config,
    check,
    check_raw,
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
