"""Rules for `spec.pod` and the volumes a job brings: what Kubernetes would refuse at pod
creation (or silently drop), caught before any pod exists.

A pod the API server refuses fails the job only after its objects were made; a label the
operator owns, overridden, would hide the pod from its own job. Each rule names the field.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from kubetrain.api.constants import GROUP, RESERVED_MOUNT_PATHS, RESERVED_VOLUMES
from kubetrain.api.problem import Problem
from kubetrain.api.sources import SOURCES
from kubetrain.api.spec import TrainingJobSpec

PodRule = Callable[[TrainingJobSpec], Iterator[Problem]]

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?)$")
_PREFIX = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_QUANTITY = re.compile(r"^\d+(\.\d+)?(m|k|Ki|Mi|Gi|Ti|Pi|M|G|T|P|E|Ei)?$")
# What the resource fields already say; `extra` would ask twice.
_OWN_RESOURCES = {
    "cpu": "cpu",
    "memory": "memory",
    "nvidia.com/gpu": "gpu",
    "ephemeral-storage": "ephemeralStorage",
}
_MANAGED_BY = "app.kubernetes.io/managed-by"


def _qualified_name(key: str) -> bool:
    """A label or annotation key: an optional DNS-subdomain prefix, '/', a name of 1-63."""
    prefix, _, name = key.rpartition("/")
    return bool(_LABEL_NAME.match(name)) and (not prefix or bool(_PREFIX.match(prefix)))


def _env(spec: TrainingJobSpec) -> Iterator[Problem]:
    for i, var in enumerate(spec.pod.env):
        field = f"spec.pod.env[{i}]"
        if var.value is not None and var.value_from is not None:
            yield Problem(field, f"{var.name} has both value and valueFrom; keep one")
        source = var.value_from
        if source is not None:
            given = [
                s for s in (source.secret_key_ref, source.config_map_key_ref, source.field_ref)
            ]
            if sum(s is not None for s in given) != 1:
                yield Problem(
                    f"{field}.valueFrom",
                    f"{var.name} needs exactly one of secretKeyRef, configMapKeyRef, fieldRef",
                )
    for i, env_from in enumerate(spec.pod.env_from):
        if (env_from.secret_ref is None) == (env_from.config_map_ref is None):
            yield Problem(
                f"spec.pod.envFrom[{i}]", "needs exactly one of secretRef or configMapRef"
            )


def _volumes(spec: TrainingJobSpec) -> Iterator[Problem]:
    names: set[str] = set()
    for i, volume in enumerate(spec.pod.volumes):
        field = f"spec.pod.volumes[{i}]"
        name = volume.get("name")
        if not isinstance(name, str) or not _DNS_LABEL.match(name):
            yield Problem(
                f"{field}.name", "every volume needs a name: lowercase letters, digits and '-'"
            )
            continue
        if name in RESERVED_VOLUMES:
            yield Problem(
                f"{field}.name",
                f"{name!r} is a volume kubetrain gives every pod; choose another name",
            )
        if name in names:
            yield Problem(f"{field}.name", f"{name!r} is named twice in spec.pod.volumes")
        names.add(name)
        sources = sorted(k for k in volume if k != "name")
        if len(sources) != 1:
            yield Problem(
                field,
                f"volume {name!r} needs exactly one source (persistentVolumeClaim, secret,"
                f" configMap, nfs, csi, ...), found {sources or 'none'}",
            )
    paths: set[str] = set()
    for i, mount in enumerate(spec.pod.volume_mounts):
        field = f"spec.pod.volumeMounts[{i}]"
        if mount.name not in names:
            yield Problem(
                f"{field}.name",
                f"{mount.name!r} is not in spec.pod.volumes; add it there or fix the name",
            )
        path = mount.mount_path.rstrip("/") or "/"
        clash = next(
            (p for p in (*RESERVED_MOUNT_PATHS, *_job_mounts(spec)) if _overlaps(path, p)), None
        )
        if clash is not None:
            yield Problem(
                f"{field}.mountPath",
                f"{mount.mount_path!r} overlaps {clash}, where kubetrain mounts a volume of"
                " its own; mount it elsewhere",
            )
        if path in paths:
            yield Problem(f"{field}.mountPath", f"{mount.mount_path!r} is mounted twice")
        paths.add(path)


def _job_mounts(spec: TrainingJobSpec) -> list[str]:
    """The mount points this job's own settings take (its checkpoint claim, its data claim)."""
    mounts = []
    if spec.checkpoint.claim_name and spec.checkpoint.storage_path.startswith("/"):
        mounts.append(spec.checkpoint.storage_path.rstrip("/"))
    data = dataset_mount_path(spec)
    if data is not None:
        mounts.append(data)
    return mounts


def _overlaps(a: str, b: str) -> bool:
    """One path is the other, or inside it."""
    return a == b or a.startswith(b.rstrip("/") + "/") or b.startswith(a.rstrip("/") + "/")


def dataset_mount_path(spec: TrainingJobSpec) -> str | None:
    """Where `dataset.claimName` is mounted: at dataset.path, or at its folder for a file."""
    ds = spec.dataset
    if not ds.claim_name or ds.path is None:
        return None
    path = ds.path.rstrip("/") or "/"
    return path.rsplit("/", 1)[0] or "/" if SOURCES[ds.source].reads_file else path


def _dataset_claim(spec: TrainingJobSpec) -> Iterator[Problem]:
    ds = spec.dataset
    if not ds.claim_name:
        return
    facts = SOURCES[ds.source]
    if not facts.reads_path:
        yield Problem(
            "spec.dataset.claimName",
            f"source {ds.source.value!r} reads no files; remove claimName, or use a source that"
            " reads them (csv, image_folder, mnist, cifar10, imdb)",
        )
    elif ds.path is None or not ds.path.startswith("/"):
        yield Problem(
            "spec.dataset.path",
            "with dataset.claimName, give the absolute path the data has in the pods, e.g."
            " /data/cifar10 (the claim is mounted there)",
        )


def _labels_and_annotations(spec: TrainingJobSpec) -> Iterator[Problem]:
    for key, value in spec.pod.labels.items():
        field = f"spec.pod.labels[{key!r}]"
        if key.startswith(f"{GROUP}/") or key == _MANAGED_BY:
            yield Problem(field, f"{key} is set by kubetrain on every pod; use another key")
        elif not _qualified_name(key):
            yield Problem(field, "not a valid label key ([prefix/]name, name 1-63 characters)")
        elif not _LABEL_VALUE.match(value):
            yield Problem(
                field, f"{value!r} is not a valid label value (63 characters, letters, digits,"
                " '-', '_', '.')",
            )  # fmt: skip
    for key in spec.pod.annotations:
        if not _qualified_name(key):
            yield Problem(
                f"spec.pod.annotations[{key!r}]",
                "not a valid annotation key ([prefix/]name, name 1-63 characters)",
            )


def _extra_resources(spec: TrainingJobSpec) -> Iterator[Problem]:
    for key, value in spec.distributed.resources_per_worker.extra.items():
        field = f"spec.distributed.resourcesPerWorker.extra[{key!r}]"
        if key in _OWN_RESOURCES:
            yield Problem(
                field,
                f"set it with spec.distributed.resourcesPerWorker.{_OWN_RESOURCES[key]} instead",
            )
        elif "/" not in key and not key.startswith("hugepages-"):
            yield Problem(
                field,
                "an extended resource is named <domain>/<name> (e.g. rdma/hca_shared_devices_a),"
                " or hugepages-<size>",
            )
        elif not _QUANTITY.match(value):
            yield Problem(field, f"{value!r} is not a quantity (e.g. 1, 2Gi, 500m)")


def _spread(spec: TrainingJobSpec) -> Iterator[Problem]:
    for i, constraint in enumerate(spec.pod.topology_spread_constraints):
        missing = [
            k for k in ("maxSkew", "topologyKey", "whenUnsatisfiable") if k not in constraint
        ]
        if missing:
            yield Problem(
                f"spec.pod.topologySpreadConstraints[{i}]",
                f"needs {', '.join(missing)} (e.g. maxSkew: 1, topologyKey:"
                " kubernetes.io/hostname, whenUnsatisfiable: ScheduleAnyway)",
            )


POD_RULES: tuple[PodRule, ...] = (
    _dataset_claim,
    _env,
    _volumes,
    _labels_and_annotations,
    _extra_resources,
    _spread,
)
