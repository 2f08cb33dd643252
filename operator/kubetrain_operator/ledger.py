"""The operator's own record of what its limits count, where the head pod cannot write it.

The head pod may patch its job's status (progress, every epoch), and Kubernetes cannot limit
that to some fields. Code that runs in the job's pods could then rewrite `restarts` or
`startTime`, and with them `backoffLimit`, `maxWorkerRestarts` and the deadlines. So the operator
keeps the fields its limits read in an annotation on the job (the status subresource cannot
change metadata), takes them from there, never from the status, and puts the status back when
the two differ.

Pure: what to trust, and what to write. The reconciler does the reading and the writing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from kubetrain.api import GROUP, TrainingJobStatus
from kubetrain.api.status import OperatorStatus, field_names

ANNOTATION = f"{GROUP}/operator-ledger"

# The status fields a limit or a deadline is computed from (python names of OperatorStatus).
GUARDED = ("restarts", "worker_restarts", "worker_failure_streak", "start_time")


def record(status: TrainingJobStatus) -> str:
    """The annotation's value for `status`: its guarded fields, as the CRD names them."""
    dumped = status.model_dump(mode="json", by_alias=True, include=set(GUARDED))
    return json.dumps(dumped, sort_keys=True, separators=(",", ":"))


def trusted(status: TrainingJobStatus, annotations: Mapping[str, str]) -> TrainingJobStatus:
    """`status` with its guarded fields as the operator last recorded them.

    A job without a record has had none of them set by the operator (a new job): they are taken
    as unset, whatever the status says.
    """
    kept: dict[str, Any] = {}
    raw = annotations.get(ANNOTATION)
    if raw:
        try:
            kept = json.loads(raw)
        except json.JSONDecodeError:
            kept = {}
    # Fields the record lacks take OperatorStatus's defaults.
    parsed = OperatorStatus.model_validate(
        {k: v for k, v in kept.items() if k in field_names(OperatorStatus)}
    )
    return status.model_copy(update={name: getattr(parsed, name) for name in GUARDED})


def changed(old: TrainingJobStatus, new: TrainingJobStatus) -> bool:
    """Whether the record must be written: a guarded field moved."""
    return record(old) != record(new)
