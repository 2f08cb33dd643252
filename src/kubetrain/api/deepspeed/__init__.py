"""The DeepSpeed config a job asks for, and the checks on it: pure, no DeepSpeed import.

They live in the API layer because the semantic check (`kubetrain.api.semantics`) refuses a
DeepSpeed job whose raw config contradicts its spec before any pod or worker exists.
"""

from kubetrain.api.deepspeed.checks import check, check_raw
from kubetrain.api.deepspeed.config import (
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
