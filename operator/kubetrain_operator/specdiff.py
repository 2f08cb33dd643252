"""Which spec edits a started job honours, and which it refuses.

A job runs with the spec it started with, frozen in its ConfigMap. An edit is compared with that
frozen spec field by field:

- `runPolicy` is honoured at once (deadlines, backoffLimit, suspend, TTL, cleanPodPolicy);
- `distributed.workers`, `ranksPerPod`, `resourcesPerWorker`, `pod`, `metrics` and `scheduling`
  are honoured when no pods run (before the start, or while suspended, which is how Kueue changes
  node selectors and tolerations), and refused while pods run;
- everything else (model, dataset, training, backend, checkpoint) is refused once the job has
  started: its checkpoints belong to the model and data it started with.

A refused edit changes nothing that runs; the SpecChangeRefused condition names the fields.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

Json = dict[str, Any]

LIVE_FIELDS = ("runPolicy",)
WHEN_STOPPED_FIELDS = (
    "distributed.workers",
    "distributed.ranksPerPod",
    "distributed.resourcesPerWorker",
    "pod",
    "metrics",
    "scheduling",
)


@dataclass(frozen=True)
class SpecOutcome:
    effective: Json  # the spec to run with
    refused: tuple[str, ...]  # dotted paths under `spec`, sorted

    @property
    def message(self) -> str:
        if not self.refused:
            return ""
        fields = ", ".join(f"spec.{path}" for path in self.refused)
        return (
            f"refused while the job runs: {fields}; the job keeps running with the values it"
            " started with. Suspend the job to change workers, resources, pod, metrics or"
            " scheduling settings; delete and re-create it to change the model, data, training or"
            " backend."
        )


def changed_paths(old: Json, new: Json, prefix: str = "") -> list[str]:
    """Dotted paths of the leaves (or lists) that differ between two JSON objects."""
    paths: list[str] = []
    for key in sorted(set(old) | set(new)):
        path = f"{prefix}{key}"
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            paths += changed_paths(a, b, f"{path}.")
        elif a != b:
            paths.append(path)
    return paths


def _under(path: str, roots: tuple[str, ...]) -> bool:
    return any(path == root or path.startswith(f"{root}.") for root in roots)


def _copy_path(into: Json, source: Json, path: str) -> None:
    *parents, leaf = path.split(".")
    dst, src = into, source
    for part in parents:
        dst = dst.setdefault(part, {})
        src = src.get(part) or {}
    if leaf in src:
        dst[leaf] = copy.deepcopy(src[leaf])
    else:
        dst.pop(leaf, None)


def resolve_spec(frozen: Json | None, current: Json, *, pods_exist: bool) -> SpecOutcome:
    """The spec to run with, given the frozen one (None before the job starts) and the edit."""
    if frozen is None:
        return SpecOutcome(copy.deepcopy(current), ())
    effective = copy.deepcopy(frozen)
    refused: list[str] = []
    for path in changed_paths(frozen, current):
        if _under(path, LIVE_FIELDS) or (not pods_exist and _under(path, WHEN_STOPPED_FIELDS)):
            _copy_path(effective, current, path)
        else:
            refused.append(path)
    return SpecOutcome(effective, tuple(refused))
