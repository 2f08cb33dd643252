"""kubetrain's API: the TrainingJob spec and status, their loading, and the generated CRD.

This layer is pure: no ML framework, no cluster client, no I/O beyond reading a YAML file.
"""

from kubetrain.api.constants import API_VERSION, GROUP, KIND, PLURAL, VERSION
from kubetrain.api.crd import build_crd, render_crd_yaml
from kubetrain.api.job import ObjectMeta, TrainingJob
from kubetrain.api.loading import InvalidTrainingJob, check_job, load_job, parse_job
from kubetrain.api.spec import (
    AggregationStrategy,
    Backend,
    DatasetSource,
    GangScheduler,
    MetricName,
    ModelName,
    OptimizerName,
    Precision,
    ScheduleName,
    TrainingJobSpec,
)
from kubetrain.api.status import (
    Condition,
    ConditionType,
    Phase,
    Reason,
    TrainingJobStatus,
    derive_phase,
)

__all__ = [
    "API_VERSION",
    "GROUP",
    "KIND",
    "PLURAL",
    "VERSION",
    "AggregationStrategy",
    "Backend",
    "Condition",
    "ConditionType",
    "DatasetSource",
    "GangScheduler",
    "InvalidTrainingJob",
    "MetricName",
    "ModelName",
    "ObjectMeta",
    "OptimizerName",
    "Phase",
    "Precision",
    "Reason",
    "ScheduleName",
    "TrainingJob",
    "TrainingJobSpec",
    "TrainingJobStatus",
    "build_crd",
    "check_job",
    "derive_phase",
    "load_job",
    "parse_job",
    "render_crd_yaml",
]
