"""The whole TrainingJob object: apiVersion, kind, metadata, spec and status."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from kubetrain.api.constants import JOB_NAME_PATTERN, MAX_JOB_NAME
from kubetrain.api.spec import TrainingJobSpec
from kubetrain.api.status import TrainingJobStatus


class ObjectMeta(BaseModel):
    """The parts of metav1.ObjectMeta kubetrain reads; the rest is kept as-is."""

    model_config = ConfigDict(populate_by_name=True, extra="allow")

    name: str = Field(pattern=JOB_NAME_PATTERN, max_length=MAX_JOB_NAME)
    namespace: str = "default"
    uid: str | None = None
    generation: int | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class TrainingJob(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    api_version: Literal["kubetrain.io/v1alpha1"] = Field(
        "kubetrain.io/v1alpha1", alias="apiVersion"
    )
    kind: Literal["TrainingJob"] = "TrainingJob"
    metadata: ObjectMeta
    spec: TrainingJobSpec
    status: TrainingJobStatus | None = None

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def namespace(self) -> str:
        return self.metadata.namespace
