"""What can go wrong talking to a cluster, each said in one line the user can act on.

Every exception here is a `ClusterError`, whose `str()` is that line. `error_for` turns an API
server's answer (a status code and its `Status` body) into one; `describe_connection_error` says
in a few words why the cluster could not be reached. Both are pure: no Kubernetes client here.
"""

from __future__ import annotations

import json
import re
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kubetrain.api.constants import CRD_NAME

if TYPE_CHECKING:
    from kubetrain.api import TrainingJob
    from kubetrain.client.views import Failure


class ClusterError(RuntimeError):
    """A cluster verb could not be done; `str()` says why in one line."""


class ConfigError(ClusterError):
    """No usable kubeconfig or context."""


class Unreachable(ClusterError):
    """The API server did not answer (refused, timed out, TLS failed)."""


class Unauthorized(ClusterError):
    """401: the API server does not accept the credentials of the kubeconfig's user."""


class Forbidden(ClusterError):
    """403: the user may not do this. Names the verb, the resource and the namespace."""

    def __init__(
        self, message: str, *, user: str | None, verb: str, resource: str, namespace: str | None
    ) -> None:
        super().__init__(message)
        self.user = user
        self.verb = verb
        self.resource = resource
        self.namespace = namespace


class CrdNotInstalled(ClusterError):
    """The cluster serves no TrainingJobs."""


class NotFound(ClusterError):
    """The object (a job, a pod, a namespace) does not exist."""


class JobNotFound(NotFound):
    pass


class PodNotFound(NotFound):
    pass


class JobExists(ClusterError):
    """A job of that name exists already; `existing` is it, when it could be read."""

    def __init__(self, message: str, existing: TrainingJob | None = None) -> None:
        super().__init__(message)
        self.existing = existing


class Rejected(ClusterError):
    """422: the API server refused the object as invalid (its schema, not ours, said no)."""


class LogUnavailable(ClusterError):
    """The pod has no log to read yet (not scheduled, its container not started)."""


class WaitTimeout(ClusterError):
    """The job did not get where it was awaited in time; `job` is how it was last seen."""

    def __init__(self, message: str, job: TrainingJob) -> None:
        super().__init__(message)
        self.job = job


class JobFailed(ClusterError):
    """The job awaited to succeed failed; `failure` says why and where, when the status says."""

    def __init__(self, message: str, job: TrainingJob, failure: Failure | None) -> None:
        super().__init__(message)
        self.job = job
        self.failure = failure


class ApiError(ClusterError):
    """Any other answer that is not a success."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"the API server answered {status} {reason}: {message}")
        self.status = status
        self.reason = reason


# --------------------------------------------------------------------------- API answers


@dataclass(frozen=True)
class Request:
    """What was asked, in RBAC's words, so that an error can say it back."""

    verb: str  # get, list, watch, create, delete, patch
    resource: str  # RBAC's resource: "trainingjobs", "pods", "pods/log"
    group: str = ""  # "" for the core API
    namespace: str | None = None  # None: cluster-wide (list -A)
    name: str | None = None

    @property
    def qualified(self) -> str:
        """`trainingjobs.kubetrain.io`, or `pods` for the core group."""
        return f"{self.resource}.{self.group}" if self.group else self.resource


# `User "alice" cannot create resource "trainingjobs" in API group "kubetrain.io" in the
# namespace "team-b"`: what RBAC's authorizer says, since Kubernetes 1.14.
_FORBIDDEN = re.compile(
    r'User "(?P<user>[^"]*)" cannot (?P<verb>[\w-]+) resource "(?P<resource>[^"]+)"'
    r'(?: in API group "(?P<group>[^"]*)")?'
    r'(?: in the namespace "(?P<namespace>[^"]+)")?'
)


def status_body(body: bytes | str | Mapping[str, Any] | None) -> dict[str, Any]:
    """The API server's `Status` object in an error's body; {"message": text} if it is not one."""
    if body is None:
        return {}
    if isinstance(body, Mapping):
        return dict(body)
    text = body.decode(errors="replace") if isinstance(body, bytes) else body
    try:
        found = json.loads(text)
    except ValueError:
        return {"message": text.strip()[:500]}
    return found if isinstance(found, dict) else {"message": text.strip()[:500]}


def _where(namespace: str | None) -> str:
    return f' in namespace "{namespace}"' if namespace else " in any namespace"


def error_for(
    status: int, body: bytes | str | Mapping[str, Any] | None, request: Request
) -> ClusterError:
    """The exception that says, in one line, why the API server refused `request`."""
    found = status_body(body)
    message = str(found.get("message") or "").strip()
    reason = str(found.get("reason") or "")
    details = found.get("details") if isinstance(found.get("details"), dict) else {}
    assert isinstance(details, dict)
    if status == 401:
        return Unauthorized(
            "the cluster does not accept your credentials (401 Unauthorized): log in again, or"
            " check the user of your kubeconfig context"
        )
    if status == 403:
        return _forbidden(message, request)
    if status == 404:
        return _not_found(details, request)
    if status == 409 and reason == "AlreadyExists":
        what = request.name or details.get("name") or "?"
        return JobExists(f'trainingjob "{what}" already exists{_where(request.namespace)}')
    if status == 422:
        return Rejected(f"the cluster refused the TrainingJob: {message}")
    if status == 400 and request.resource == "pods/log":
        return LogUnavailable(f"no log from pod {request.name} yet: {message}")
    return ApiError(status, reason or "Error", message or "(no message)")


def _forbidden(message: str, request: Request) -> Forbidden:
    parsed = _FORBIDDEN.search(message)
    user = parsed["user"] if parsed else None
    verb = parsed["verb"] if parsed else request.verb
    resource = parsed["resource"] if parsed else request.resource
    group = parsed["group"] if parsed and parsed["group"] is not None else request.group
    namespace = parsed["namespace"] if parsed else request.namespace
    qualified = f"{resource}.{group}" if group else resource
    who = f'user "{user}"' if user else "you"
    return Forbidden(
        f"forbidden: {who} may not {verb} {qualified}{_where(namespace)}"
        " (ask your cluster admin for a Role that allows it)",
        user=user,
        verb=verb,
        resource=qualified,
        namespace=namespace,
    )


def _not_found(details: Mapping[str, Any], request: Request) -> ClusterError:
    kind, name = details.get("kind"), details.get("name")
    if name is None:
        # The path itself is unknown: no object was looked up, the resource is not served.
        if request.resource.split("/")[0] == "trainingjobs":
            return CrdNotInstalled(
                f"the cluster has no TrainingJob CRD ({CRD_NAME}): install kubetrain's"
                " chart (helm install kubetrain charts/kubetrain) or kubectl apply -f crds/"
            )
        return NotFound(f"the cluster does not serve {request.qualified}")
    if kind == "namespaces":
        return NotFound(f'namespace "{name}" does not exist')
    if kind == "trainingjobs":
        return JobNotFound(f'trainingjob "{name}" not found{_where(request.namespace)}')
    if kind == "pods":
        return PodNotFound(f'pod "{name}" not found{_where(request.namespace)}')
    return NotFound(f'{kind} "{name}" not found{_where(request.namespace)}')


# --------------------------------------------------------------------------- no answer


def _chain(exc: BaseException) -> list[BaseException]:
    """`exc` and what caused it: urllib3 keeps the cause in `.reason` or its arguments, Python
    in __cause__ and __context__."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop(0)
        if current is None or any(current is s for s in seen):
            continue
        seen.append(current)
        reason = getattr(current, "reason", None)
        todo += [
            reason if isinstance(reason, BaseException) else None,
            *(arg for arg in current.args if isinstance(arg, BaseException)),
            current.__cause__,
            current.__context__,
        ]
    return seen


def describe_connection_error(exc: BaseException) -> str:
    """Why a request got no answer, in a few words: "connection refused", "timed out", ..."""
    chain = _chain(exc)
    for e in chain:
        if isinstance(e, ssl.SSLCertVerificationError):
            return f"its TLS certificate is not trusted ({e.verify_message})"
    for e in chain:
        if isinstance(e, ConnectionRefusedError):
            return "connection refused"
        if isinstance(e, socket.gaierror):
            return f"the host name does not resolve ({e.strerror})"
        if isinstance(e, TimeoutError) or "Timeout" in type(e).__name__:
            return "timed out"
        if isinstance(e, ssl.SSLError):
            return f"TLS failed ({e.reason or e})"
    for e in chain:
        if isinstance(e, OSError) and e.strerror:
            return e.strerror[0].lower() + e.strerror[1:]
    last = str(exc).strip().splitlines()
    return last[-1][:200] if last else type(exc).__name__
