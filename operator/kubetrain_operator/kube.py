"""A thin, synchronous Kubernetes client over raw JSON dicts.

The official client's typed models cost a validation and a conversion per call and are never
needed here: the operator reads dicts through typed views (`observe.PodView`) and writes dicts
built by `render`. So every call goes through one `_call`, which speaks JSON, takes keyword-only
arguments and documents its edge cases: a 404 returns None, a 409 on create returns False.

Thread-safe: one `Kube` is shared by the reconcile threads (urllib3's pool is thread-safe).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from kubernetes import client as k8s
from kubernetes import config as k8s_config

from kubetrain.api import GROUP, PLURAL, VERSION
from kubetrain_operator.kubeobj import Obj

log = logging.getLogger(__name__)

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"

# Where each kind we create lives, relative to its namespace.
_COLLECTIONS: dict[str, tuple[str, str]] = {
    "Pod": ("/api/v1", "pods"),
    "ConfigMap": ("/api/v1", "configmaps"),
    "Service": ("/api/v1", "services"),
    "ServiceAccount": ("/api/v1", "serviceaccounts"),
    "Secret": ("/api/v1", "secrets"),
    "NetworkPolicy": ("/apis/networking.k8s.io/v1", "networkpolicies"),
    "Event": ("/api/v1", "events"),
    "Role": ("/apis/rbac.authorization.k8s.io/v1", "roles"),
    "RoleBinding": ("/apis/rbac.authorization.k8s.io/v1", "rolebindings"),
    "TrainingJob": (f"/apis/{GROUP}/{VERSION}", PLURAL),
}


class MissingApi(RuntimeError):
    """The API server serves no such kind: the CRD of another project's resource (a gang
    scheduler's PodGroup) is not installed."""

    def __init__(self, api_version: str, kind: str) -> None:
        super().__init__(f"the API server does not serve {kind} {api_version}")
        self.api_version = api_version
        self.kind = kind


class ApiError(RuntimeError):
    """A non-2xx answer other than the ones a method documents as normal."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        self.status = status
        self.reason = reason
        super().__init__(f"{status} {reason}: {message}")
        self.message = message


@dataclass(frozen=True)
class Timeouts:
    connect: float = 5.0  # seconds; an API server that does not accept in 5 s is down
    read: float = 30.0  # seconds; generous for a LIST of many pods on a busy server


def api_client(
    *, kubeconfig: str | None = None, in_cluster: bool = False, pool_size: int = 16
) -> k8s.ApiClient:
    """An ApiClient from a kubeconfig file (None: the default) or the pod's ServiceAccount."""
    cfg = k8s.Configuration()
    if in_cluster:
        k8s_config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
    else:
        k8s_config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=kubeconfig, client_configuration=cfg
        )
    # One connection per reconcile thread; the default (5 per CPU) starves 16 threads on 2 CPUs.
    cfg.connection_pool_maxsize = pool_size
    return k8s.ApiClient(cfg)


def _path(
    kind: str,
    namespace: str,
    name: str | None = None,
    sub: str | None = None,
    *,
    api_version: str | None = None,
) -> str:
    """The path of a kind we create; a kind of no group of ours (a PodGroup) by its
    `api_version`, at the plural Kubernetes derives from the kind."""
    if kind in _COLLECTIONS:
        prefix, plural = _COLLECTIONS[kind]
    elif api_version is not None:
        prefix, plural = f"/apis/{api_version}", f"{kind.lower()}s"
    else:
        raise KeyError(f"{kind}: give its api_version")
    path = f"{prefix}/namespaces/{quote(namespace)}/{plural}"
    if name is not None:
        path += f"/{quote(name)}"
    if sub is not None:
        path += f"/{sub}"
    return path


def guarded_status_patch(uid: str, patch: Obj, *, has_status: bool) -> list[Obj]:
    """A JSON patch (RFC 6902) that does what the merge patch `{"status": patch}` does to the
    top-level keys of a status, if and only if the object's uid is `uid`.

    None removes a key, as in a merge patch: the caller read it as present (a remove of an absent
    key fails the patch). Without a status, the whole status is added.
    """
    ops: list[Obj] = [{"op": "test", "path": "/metadata/uid", "value": uid}]
    if not has_status:
        whole = {k: v for k, v in patch.items() if v is not None}
        return [*ops, {"op": "add", "path": "/status", "value": whole}]
    for key, value in patch.items():
        pointer = "/status/" + key.replace("~", "~0").replace("/", "~1")
        if value is None:
            ops.append({"op": "remove", "path": pointer})
        else:
            ops.append({"op": "add", "path": pointer, "value": value})
    return ops


class Kube:
    def __init__(self, api: k8s.ApiClient, *, timeouts: Timeouts | None = None) -> None:
        self.api = api
        self.timeouts = timeouts or Timeouts()

    # ------------------------------------------------------------------ transport

    def _call(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: object | None = None,
        content_type: str = "application/json",
        decode: bool = True,
    ) -> Obj | None:
        """One request. Returns the decoded body ({} if not `decode`); None on 404; raises
        ApiError otherwise."""
        if query:
            path = f"{path}?{urlencode(query)}"
        headers = {"Accept": "application/json", "Content-Type": content_type}
        params = self.api.param_serialize(
            method, path, header_params=headers, body=body, auth_settings=["BearerToken"]
        )
        response = self.api.call_api(
            *params, _request_timeout=(self.timeouts.connect, self.timeouts.read)
        )
        data: bytes = response.read()  # type: ignore[no-untyped-call]
        if response.status == 404:
            return None
        if not decode and 200 <= response.status < 300:
            return {}
        decoded: Obj = json.loads(data) if data else {}
        if not 200 <= response.status < 300:
            raise ApiError(response.status, str(decoded.get("reason", response.reason)),
                           str(decoded.get("message", data[:500])))  # fmt: skip
        return decoded

    # ------------------------------------------------------------------ TrainingJobs

    def get_job(self, *, namespace: str, name: str) -> Obj | None:
        """The TrainingJob, or None if it does not exist (any more)."""
        return self.get(kind="TrainingJob", namespace=namespace, name=name)

    def patch_job_status(
        self, *, namespace: str, name: str, patch: Obj, uid: str | None = None,
        has_status: bool = True,
    ) -> Obj | None:  # fmt: skip
        """Patches `status` with `patch`, merge-patch style: each top-level key is replaced, None
        removes it. No resourceVersion: disjoint writers never conflict.

        With `uid`, only the job with that uid: a job deleted and applied again under the same
        name is another job (its own loop writes its status), and for this write it is gone. Then
        the patch is a JSON patch that tests the uid first; `has_status` says whether the job
        had a status when it was read (the JSON patch adds `/status` whole if not).

        Returns the updated job, or None if the job is gone.
        """
        path = _path("TrainingJob", namespace, name, "status")
        if uid is None:
            return self._call("PATCH", path, body={"status": patch}, content_type=MERGE_PATCH)
        try:
            return self._call(
                "PATCH", path, body=guarded_status_patch(uid, patch, has_status=has_status),
                content_type=JSON_PATCH,
            )  # fmt: skip
        except ApiError as exc:
            if exc.status != 422:
                raise
            # A failed test and a bad patch both answer 422: the job's uid tells them apart.
            found = self.get_job(namespace=namespace, name=name)
            if found is None or found["metadata"].get("uid") != uid:
                return None
            raise

    def annotate_job(
        self, *, namespace: str, name: str, uid: str, key: str, value: str, has_any: bool
    ) -> Obj | None:
        """Sets one annotation on the job with `uid` (a JSON patch testing the uid first);
        `has_any`: whether the job had annotations when read. None if the job is gone."""
        ops: list[Obj] = [{"op": "test", "path": "/metadata/uid", "value": uid}]
        if has_any:
            pointer = "/metadata/annotations/" + key.replace("~", "~0").replace("/", "~1")
            ops.append({"op": "add", "path": pointer, "value": value})
        else:
            ops.append({"op": "add", "path": "/metadata/annotations", "value": {key: value}})
        try:
            return self._call(
                "PATCH", _path("TrainingJob", namespace, name), body=ops,
                content_type=JSON_PATCH,
            )  # fmt: skip
        except ApiError as exc:
            if exc.status == 422:  # the test failed: replaced by a job of the same name
                found = self.get_job(namespace=namespace, name=name)
                if found is None or found["metadata"].get("uid") != uid:
                    return None
            raise

    def delete_job(self, *, namespace: str, name: str, uid: str) -> None:
        """Deletes the job if it is still the one with `uid`; its objects go by garbage collection.

        A job already gone (404) or replaced by a new one with the same name (409) is left alone.
        """
        body = {"preconditions": {"uid": uid}, "propagationPolicy": "Background"}
        try:
            self._call("DELETE", _path("TrainingJob", namespace, name), body=body)
        except ApiError as exc:
            if exc.status != 409:
                raise

    # ------------------------------------------------------------------ pods and owned objects

    def list_pods(self, *, namespace: str, selector: str) -> list[Obj]:
        """Pods matching a label selector, from the API server's watch cache.

        `resourceVersion=0` reads the cache our watches are served from, so the list is at least
        as new as the pod event that woke the pass. It may miss a write of our own made a few
        milliseconds before; every write tolerates that (a create that finds the pod is a no-op,
        a delete names the uid). Without it the API server reads every pod of the namespace from
        etcd and decodes them to filter by label: with 100 jobs (300 pods) in one namespace that
        costs ~20 ms of API server and etcd CPU per pass, against ~1-2 ms from the cache.
        """
        query = {"labelSelector": selector, "resourceVersion": "0"}
        found = self._call("GET", _path("Pod", namespace), query=query)
        return list((found or {}).get("items") or [])

    def get_config_map(self, *, namespace: str, name: str) -> Obj | None:
        return self.get(kind="ConfigMap", namespace=namespace, name=name)

    def patch_config_map(self, *, namespace: str, name: str, patch: Obj) -> Obj | None:
        return self._call(
            "PATCH", _path("ConfigMap", namespace, name), body=patch, content_type=MERGE_PATCH
        )

    def create(self, obj: Obj) -> bool:
        """Creates `obj` in its namespace. True if created, False if it already existed (409).
        Raises MissingApi for a kind of another project (a PodGroup) that is not served (404)."""
        meta = obj["metadata"]
        kind = obj["kind"]
        path = _path(kind, meta["namespace"], api_version=obj["apiVersion"])
        try:
            # The answer echoes the whole object back, and nothing reads it: not worth decoding.
            created = self._call("POST", path, body=obj, decode=False)
        except ApiError as exc:
            if exc.status == 409 and exc.reason == "AlreadyExists":
                return False
            raise
        if created is None and kind not in _COLLECTIONS:
            raise MissingApi(obj["apiVersion"], kind)
        return True

    def get(
        self, *, kind: str, namespace: str, name: str, api_version: str | None = None
    ) -> Obj | None:
        """One object of a kind we create, or None if there is none."""
        return self._call("GET", _path(kind, namespace, name, api_version=api_version))

    def delete_pod(self, *, namespace: str, name: str, uid: str | None = None) -> None:
        """Deletes a pod; with `uid`, only that very pod, never a successor with the same name.

        Missing (404) or replaced (409 on the uid precondition) pods are fine: the goal is met.
        """
        body: Obj = {"propagationPolicy": "Background"}
        if uid is not None:
            body["preconditions"] = {"uid": uid}
        try:
            self._call("DELETE", _path("Pod", namespace, name), body=body)
        except ApiError as exc:
            if exc.status != 409:
                raise
