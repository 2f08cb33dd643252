"""The one place the client speaks HTTP to the API server, through the `kubernetes` package.

Like the operator's `Kube`, it sends and reads raw JSON (the typed models are ours, not the
generated client's) through `ApiClient.param_serialize` and `call_api`, which apply the
kubeconfig's server, TLS and credentials. Every failure leaves here as a `ClusterError`: an
answer that is not a success by `errors.error_for`, no answer at all as `Unreachable`.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import urllib3
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from kubetrain.api import GROUP, PLURAL, VERSION
from kubetrain.client.errors import (
    ClusterError,
    ConfigError,
    Request,
    Unreachable,
    describe_connection_error,
    error_for,
)

Obj = dict[str, Any]

JOBS = Request("get", PLURAL, GROUP)  # what a TrainingJob request is, for its errors
PODS = Request("get", "pods")
SA_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


@dataclass(frozen=True)
class Timeouts:
    """Seconds. A watch or a followed log asks for longer reads itself."""

    connect: float = 5.0  # an API server that does not accept in 5 s is not there
    read: float = 30.0  # generous for a LIST of many jobs on a busy server


@dataclass(frozen=True)
class Target:
    """Where the kubeconfig (or the pod's ServiceAccount) points: the API server, the default
    namespace, and an ApiClient that speaks to it with the credentials."""

    api: k8s.ApiClient
    server: str
    namespace: str
    context: str | None


def load_target(kubeconfig: str | os.PathLike[str] | None, context: str | None) -> Target:
    """The kubeconfig's context as kubectl reads it: `kubeconfig` or else $KUBECONFIG (paths
    joined with ":") or ~/.kube/config; `context` or else its current context. With none of
    those, inside a pod, the pod's ServiceAccount."""
    cfg = k8s.Configuration()
    path = None if kubeconfig is None else os.fspath(kubeconfig)
    try:
        k8s_config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=path, context=context, client_configuration=cfg
        )
        contexts, active = k8s_config.list_kube_config_contexts(  # type: ignore[no-untyped-call]
            config_file=path
        )
    except ConfigException as exc:
        if path is not None or context is not None:
            raise ConfigError(f"kubeconfig: {_first_line(exc)}") from None
        try:
            k8s_config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
        except ConfigException:
            raise ConfigError(
                f"no kubeconfig ({_first_line(exc)}): set $KUBECONFIG or pass --kubeconfig"
            ) from None
        namespace = SA_NAMESPACE.read_text().strip() if SA_NAMESPACE.exists() else "default"
        return Target(k8s.ApiClient(cfg), str(cfg.host), namespace, None)
    name = context or (active or {}).get("name")
    chosen = next((c for c in contexts or [] if c.get("name") == name), None) or {}
    namespace = (chosen.get("context") or {}).get("namespace") or "default"
    return Target(k8s.ApiClient(cfg), str(cfg.host), str(namespace), name)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def job_path(namespace: str | None, name: str | None = None, sub: str | None = None) -> str:
    """The TrainingJobs of `namespace` (None: of every namespace), one of them, its `sub`."""
    where = f"/namespaces/{quote(namespace)}" if namespace is not None else ""
    return _within(f"/apis/{GROUP}/{VERSION}{where}/{PLURAL}", name, sub)


def pod_path(namespace: str, name: str | None = None, sub: str | None = None) -> str:
    return _within(f"/api/v1/namespaces/{quote(namespace)}/pods", name, sub)


def _within(collection: str, name: str | None, sub: str | None) -> str:
    """`collection`, or one object of it (`name`), or that object's subresource `sub`."""
    path = collection if name is None else f"{collection}/{quote(name)}"
    return path if sub is None else f"{path}/{sub}"


class Transport:
    """Requests to one API server. Thread-safe (urllib3's pool is)."""

    def __init__(self, target: Target, *, timeouts: Timeouts | None = None) -> None:
        self.target = target
        self.timeouts = timeouts or Timeouts()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.target.api.close()  # type: ignore[no-untyped-call]

    def _unreachable(self, exc: BaseException) -> Unreachable:
        context = f' (context "{self.target.context}")' if self.target.context else ""
        return Unreachable(
            f"cannot reach the cluster at {self.target.server}{context}:"
            f" {describe_connection_error(exc)}"
        )

    def _send(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None,
        body: object | None,
        content_type: str,
        read_timeout: float | None,
    ) -> Any:
        if query:
            path = f"{path}?{urlencode(query)}"
        headers = {"Accept": "application/json, */*", "Content-Type": content_type}
        params = self.target.api.param_serialize(
            method, path, header_params=headers, body=body, auth_settings=["BearerToken"]
        )
        try:
            return self.target.api.call_api(
                *params, _request_timeout=(self.timeouts.connect, read_timeout)
            )
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise self._unreachable(exc) from None
        except ApiException as exc:  # the kubernetes client's own wrapping of a TLS error
            raise self._unreachable(exc) from None

    def call(
        self,
        method: str,
        path: str,
        request: Request,
        *,
        query: Mapping[str, str] | None = None,
        body: object | None = None,
        content_type: str = "application/json",
    ) -> Obj:
        """One request; its decoded JSON answer. Raises a ClusterError for anything else."""
        data = self._body(method, path, request, query=query, body=body, content_type=content_type)
        decoded = json.loads(data) if data else {}
        if not isinstance(decoded, dict):
            raise ClusterError(f"the API server answered {path} with something not an object")
        return decoded

    def text(self, path: str, request: Request, *, query: Mapping[str, str] | None = None) -> str:
        """A GET whose answer is text (a pod's log)."""
        data = self._body("GET", path, request, query=query, body=None,
                          content_type="application/json")  # fmt: skip
        return data.decode(errors="replace")

    def _body(
        self, method: str, path: str, request: Request, *, query: Mapping[str, str] | None,
        body: object, content_type: str,
    ) -> bytes:  # fmt: skip
        """The answer's bytes, once its status says it succeeded; a ClusterError otherwise."""
        response = self._send(
            method, path, query=query, body=body, content_type=content_type,
            read_timeout=self.timeouts.read,
        )  # fmt: skip
        try:
            data: bytes = response.read()
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise self._unreachable(exc) from None
        if not 200 <= response.status < 300:
            raise error_for(response.status, data, request)
        return data

    def lines(
        self,
        path: str,
        request: Request,
        *,
        query: Mapping[str, str],
        read_timeout: float | None,
    ) -> Iterator[str]:
        """A streamed GET (a watch, a followed log), line by line as the server sends them.

        Ends when the server ends it, or when nothing came for `read_timeout` s, or when the
        connection broke: the caller finds out where things are and asks again.
        """
        response = self._send(
            "GET", path, query=query, body=None, content_type="application/json",
            read_timeout=read_timeout,
        )  # fmt: skip
        raw = response.response  # urllib3's, unread (the client asks with preload_content off)
        if not 200 <= response.status < 300:
            raise error_for(response.status, response.read(), request)
        buffer = bytearray()
        read_all = False
        try:
            for chunk in raw.stream(amt=None, decode_content=True):
                buffer.extend(chunk)
                while (end := buffer.find(b"\n")) >= 0:
                    line = bytes(buffer[:end]).decode(errors="replace")
                    del buffer[: end + 1]
                    yield line
            read_all = True
        except (urllib3.exceptions.HTTPError, OSError):
            return  # timed out or broke off: the caller checks and asks again
        finally:
            # A stream left half-read (the caller stopped, or it broke off) cannot go back to
            # the pool: its connection still carries the rest.
            if read_all:
                raw.release_conn()
            else:
                raw.close()
        if buffer:
            yield bytes(buffer).decode(errors="replace")

    def watch(
        self,
        path: str,
        request: Request,
        *,
        field_selector: str,
        resource_version: str,
        timeout: float,
    ) -> Iterator[Obj]:
        """The watch events of `path` after `resource_version`, for at most `timeout` s (the
        server ends the watch then). Each is {"type": ADDED|MODIFIED|DELETED|BOOKMARK|ERROR,
        "object": ...}."""
        seconds = max(1, math.ceil(timeout))
        query = {
            "watch": "true",
            "fieldSelector": field_selector,
            "resourceVersion": resource_version,
            "timeoutSeconds": str(seconds),
            "allowWatchBookmarks": "true",
        }
        for line in self.lines(path, request, query=query, read_timeout=seconds + 10):
            if line.strip():
                event = json.loads(line)
                if isinstance(event, dict):
                    yield event
