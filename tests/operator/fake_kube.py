"""An in-memory stand-in for `kubetrain_operator.kube.Kube`, for planning tests only.

It keeps objects by (kind, namespace, name) and records every write, so a test can say "the
second pass wrote nothing". Anything about the real API server's behaviour (validation, garbage
collection, watches) is tested against the real one in tests/operator/kube/.
"""

from __future__ import annotations

import copy
import itertools

from kubetrain_operator.kube import ApiError, MissingApi
from kubetrain_operator.kubeobj import Obj


def merge(into: Obj, patch: Obj) -> None:
    for key, value in patch.items():
        if value is None:
            into.pop(key, None)
        elif isinstance(value, dict) and isinstance(into.get(key), dict):
            merge(into[key], value)
        else:
            into[key] = copy.deepcopy(value)


class FakeKube:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], Obj] = {}
        self.writes: list[tuple[str, str, str]] = []  # (verb, kind, name)
        self.create_calls: list[tuple[str, str]] = []  # (kind, name), also those that found it
        self.reads: list[tuple[str, str]] = []  # (kind, name or selector)
        self.refuse_pods: str | None = None  # make pod creation fail with 422
        self.missing_apis: set[str] = set()  # apiVersions whose CRD is not installed
        self.unlisted_pods: set[str] = set()  # pods a stale list does not show yet
        self._uids = itertools.count(1)

    # helpers for tests
    def put(self, obj: Obj) -> None:
        meta = obj["metadata"]
        meta.setdefault("uid", f"uid-{next(self._uids)}")
        self.objects[(obj["kind"], meta["namespace"], meta["name"])] = copy.deepcopy(obj)

    def of_kind(self, kind: str) -> list[Obj]:
        return [o for (k, _, _), o in sorted(self.objects.items()) if k == kind]

    def events(self) -> list[tuple[str, str]]:
        return [(o["type"], o["reason"]) for o in self.of_kind("Event")]

    # the Kube interface
    def get_job(self, *, namespace: str, name: str) -> Obj | None:
        self.reads.append(("TrainingJob", name))
        found = self.objects.get(("TrainingJob", namespace, name))
        return copy.deepcopy(found) if found else None

    def patch_job_status(
        self, *, namespace: str, name: str, patch: Obj, uid: str | None = None,
        has_status: bool = True,
    ) -> Obj | None:  # fmt: skip
        job = self.objects.get(("TrainingJob", namespace, name))
        if job is None or (uid is not None and job["metadata"]["uid"] != uid):
            return None
        self.writes.append(("patch", "TrainingJob/status", name))
        merge(job.setdefault("status", {}), patch)
        return copy.deepcopy(job)

    def annotate_job(
        self, *, namespace: str, name: str, uid: str, key: str, value: str, has_any: bool
    ) -> Obj | None:
        job = self.objects.get(("TrainingJob", namespace, name))
        if job is None or job["metadata"]["uid"] != uid:
            return None
        self.writes.append(("patch", "TrainingJob/metadata", name))
        job["metadata"].setdefault("annotations", {})[key] = value
        return copy.deepcopy(job)

    def delete_job(self, *, namespace: str, name: str, uid: str) -> None:
        self.writes.append(("delete", "TrainingJob", name))
        self.objects.pop(("TrainingJob", namespace, name), None)

    def list_pods(self, *, namespace: str, selector: str) -> list[Obj]:
        self.reads.append(("Pod", selector))
        key, _, value = selector.partition("=")
        return [
            copy.deepcopy(p)
            for p in self.of_kind("Pod")
            if p["metadata"]["namespace"] == namespace
            and p["metadata"]["name"] not in self.unlisted_pods
            and p["metadata"].get("labels", {}).get(key) == value
        ]

    def get_config_map(self, *, namespace: str, name: str) -> Obj | None:
        found = self.objects.get(("ConfigMap", namespace, name))
        return copy.deepcopy(found) if found else None

    def patch_config_map(self, *, namespace: str, name: str, patch: Obj) -> Obj | None:
        self.writes.append(("patch", "ConfigMap", name))
        cm = self.objects[("ConfigMap", namespace, name)]
        merge(cm, patch)
        return copy.deepcopy(cm)

    def create(self, obj: Obj) -> bool:
        meta = obj["metadata"]
        if "generateName" in meta:
            meta = {**meta, "name": f"{meta['generateName']}{next(self._uids)}"}
            obj = {**obj, "metadata": meta}
        key = (obj["kind"], meta["namespace"], meta["name"])
        self.create_calls.append((obj["kind"], meta["name"]))
        if obj["kind"] == "Pod" and self.refuse_pods:
            raise ApiError(422, "Invalid", self.refuse_pods)
        if obj["apiVersion"] in self.missing_apis:
            raise MissingApi(obj["apiVersion"], obj["kind"])
        if key in self.objects:
            return False
        self.writes.append(("create", obj["kind"], meta["name"]))
        self.put(obj)
        return True

    def get(
        self, *, kind: str, namespace: str, name: str, api_version: str | None = None
    ) -> Obj | None:
        self.reads.append((kind, name))
        found = self.objects.get((kind, namespace, name))
        return copy.deepcopy(found) if found else None

    def delete_pod(self, *, namespace: str, name: str, uid: str | None = None) -> None:
        pod = self.objects.get(("Pod", namespace, name))
        if pod is None or (uid is not None and pod["metadata"]["uid"] != uid):
            return
        self.writes.append(("delete", "Pod", name))
        del self.objects[("Pod", namespace, name)]
