"""One line per refusal: what the API server's answers (its Status bodies, as a v1.20 server
writes them) become, and what a cluster that does not answer becomes."""

from __future__ import annotations

import json
import socket
import ssl

import pytest
import urllib3

from kubetrain.client import (
    ApiError,
    CrdNotInstalled,
    Forbidden,
    JobExists,
    JobNotFound,
    LogUnavailable,
    NotFound,
    PodNotFound,
    Rejected,
    Unauthorized,
)
from kubetrain.client.errors import Request, describe_connection_error, error_for, status_body

CREATE_JOB = Request("create", "trainingjobs", "kubetrain.io", "team-b", "mnist")


def status(code: int, reason: str, message: str, **details: object) -> bytes:
    """A metav1.Status body, as the API server sends with an error."""
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "details": details, "code": code}  # fmt: skip
    return json.dumps(body).encode()


def test_forbidden_names_the_user_verb_resource_and_namespace_from_rbac() -> None:
    body = status(
        403, "Forbidden",
        'trainingjobs.kubetrain.io is forbidden: User "alice" cannot create resource'
        ' "trainingjobs" in API group "kubetrain.io" in the namespace "team-b"',
        group="kubetrain.io", kind="trainingjobs",
    )  # fmt: skip
    err = error_for(403, body, CREATE_JOB)
    assert isinstance(err, Forbidden)
    assert str(err) == (
        'forbidden: user "alice" may not create trainingjobs.kubetrain.io in namespace "team-b"'
        " (ask your cluster admin for a Role that allows it)"
    )
    assert (err.user, err.verb, err.resource, err.namespace) == (
        "alice", "create", "trainingjobs.kubetrain.io", "team-b"
    )  # fmt: skip


def test_forbidden_cluster_wide_and_a_core_subresource() -> None:
    listing = status(
        403, "Forbidden",
        'trainingjobs.kubetrain.io is forbidden: User "alice" cannot list resource "trainingjobs"'
        ' in API group "kubetrain.io" at the cluster scope',
    )  # fmt: skip
    err = error_for(403, listing, Request("list", "trainingjobs", "kubetrain.io"))
    assert 'user "alice" may not list trainingjobs.kubetrain.io in any namespace' in str(err)
    log = status(
        403, "Forbidden",
        'pods "j-head" is forbidden: User "bob" cannot get resource "pods/log" in API group ""'
        ' in the namespace "team-a"',
    )  # fmt: skip
    err = error_for(403, log, Request("get", "pods/log", "", "team-a", "j-head"))
    assert str(err).startswith('forbidden: user "bob" may not get pods/log in namespace "team-a"')


def test_forbidden_that_does_not_parse_says_what_was_asked() -> None:
    err = error_for(403, b"nope", CREATE_JOB)
    assert isinstance(err, Forbidden)
    assert 'you may not create trainingjobs.kubetrain.io in namespace "team-b"' in str(err)


def test_not_found_tells_a_missing_job_pod_and_namespace_from_a_missing_crd() -> None:
    get = Request("get", "trainingjobs", "kubetrain.io", "default", "nope")
    job = status(404, "NotFound", 'trainingjobs.kubetrain.io "nope" not found',
                 name="nope", group="kubetrain.io", kind="trainingjobs")  # fmt: skip
    assert isinstance(error_for(404, job, get), JobNotFound)
    assert str(error_for(404, job, get)) == 'trainingjob "nope" not found in namespace "default"'
    pod = status(404, "NotFound", 'pods "j-head" not found', name="j-head", kind="pods")
    assert isinstance(error_for(404, pod, Request("get", "pods/log", "", "ns", "j-head")),
                      PodNotFound)  # fmt: skip
    ns = status(404, "NotFound", 'namespaces "nope" not found', name="nope", kind="namespaces")
    err = error_for(404, ns, CREATE_JOB)
    assert isinstance(err, NotFound) and str(err) == 'namespace "nope" does not exist'
    # No object was looked up: the API server does not serve the resource at all.
    crd = status(404, "NotFound", "the server could not find the requested resource")
    err = error_for(404, crd, get)
    assert isinstance(err, CrdNotInstalled)
    assert "no TrainingJob CRD (trainingjobs.kubetrain.io)" in str(err)
    assert "helm install" in str(err) and "kubectl apply -f crds/" in str(err)


def test_the_other_answers() -> None:
    unauthorized = error_for(401, status(401, "Unauthorized", "Unauthorized"), CREATE_JOB)
    assert isinstance(unauthorized, Unauthorized) and "credentials" in str(unauthorized)
    exists = error_for(409, status(409, "AlreadyExists", "exists", name="mnist"), CREATE_JOB)
    assert isinstance(exists, JobExists)
    assert str(exists) == 'trainingjob "mnist" already exists in namespace "team-b"'
    invalid = status(422, "Invalid", 'TrainingJob.kubetrain.io "mnist" is invalid: spec.x: ...')
    rejected = error_for(422, invalid, CREATE_JOB)
    assert isinstance(rejected, Rejected) and "spec.x" in str(rejected)
    no_log = status(400, "BadRequest", 'container "worker" in pod "j-worker-0" is waiting to start')
    unavailable = error_for(400, no_log, Request("get", "pods/log", "", "ns", "j-worker-0"))
    assert isinstance(unavailable, LogUnavailable) and "waiting to start" in str(unavailable)
    other = error_for(500, b"<html>oops</html>", CREATE_JOB)
    assert isinstance(other, ApiError)
    assert str(other) == "the API server answered 500 Error: <html>oops</html>"


def test_status_body_takes_bytes_text_mappings_and_junk() -> None:
    assert status_body(None) == {}
    assert status_body(b'{"message": "m"}') == {"message": "m"}
    assert status_body({"message": "m"}) == {"message": "m"}
    assert status_body("[1]") == {"message": "[1]"}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_refused_connection_as_urllib3_reports_it() -> None:
    pool = urllib3.PoolManager(retries=urllib3.Retry(0))
    with pytest.raises(urllib3.exceptions.HTTPError) as caught:
        pool.request("GET", f"http://127.0.0.1:{_closed_port()}/")
    assert describe_connection_error(caught.value) == "connection refused"


def test_timeouts_dns_and_tls_in_a_few_words() -> None:
    timeout = urllib3.exceptions.ConnectTimeoutError(None, "timed out")
    assert describe_connection_error(urllib3.exceptions.MaxRetryError(None, "/", timeout)) == (
        "timed out"
    )
    dns = socket.gaierror(-2, "Name or service not known")
    assert describe_connection_error(dns) == (
        "the host name does not resolve (Name or service not known)"
    )
    cert = ssl.SSLCertVerificationError(1, "certificate verify failed")
    cert.verify_message = "self-signed certificate"
    wrapped = urllib3.exceptions.MaxRetryError(None, "/", urllib3.exceptions.SSLError(cert))
    assert describe_connection_error(wrapped) == (
        "its TLS certificate is not trusted (self-signed certificate)"
    )
