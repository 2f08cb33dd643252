"""`Client`: TrainingJobs on a cluster from Python, with the verbs of the `kubetrain` CLI."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Literal

from kubetrain.api import (
    API_VERSION,
    GROUP,
    KIND,
    PLURAL,
    InvalidTrainingJob,
    TrainingJob,
    check_job,
    parse_job,
)
from kubetrain.api.names import Role, head_pod_name, worker_pod_name
from kubetrain.client._transport import (
    Obj,
    Target,
    Timeouts,
    Transport,
    job_path,
    load_target,
    pod_path,
)
from kubetrain.client.errors import (
    ClusterError,
    JobExists,
    JobFailed,
    JobNotFound,
    PodNotFound,
    Request,
    WaitTimeout,
    error_for,
)
from kubetrain.client.follow import LogStamp, PodState, follow_pod
from kubetrain.client.views import (
    Failure,
    JobStatus,
    Verdict,
    WaitFor,
    age,
    created_at,
    metrics_of,
    now_utc,
    phase_of,
    verdict,
)

# The longest one watch request runs before it is made again (the server ends it then).
WATCH_WINDOW = 60.0  # seconds
# How long a followed log may stay silent before the stream is checked and asked for again.
LOG_SILENCE = 300.0  # seconds

JobList = list[TrainingJob]  # `list` is a method's name in Client


def _job_request(verb: str, namespace: str | None, name: str | None = None) -> Request:
    return Request(verb, PLURAL, GROUP, namespace, name)


class Client:
    """TrainingJobs on the cluster of a kubeconfig context, as kubectl would reach it.

    `kubeconfig`: a file (default: $KUBECONFIG, else ~/.kube/config; in a pod without either,
    its ServiceAccount). `context`: default the current one. `namespace`: default the context's
    (else "default"). Every failure is a `kubetrain.client.ClusterError` whose message is one
    line: the cluster cannot be reached, the CRD is not installed, a permission is missing
    (naming the verb and resource), a job does not exist.

        with Client() as kt:
            job = kt.submit(load_job("examples/mnist-mlp.yaml"))
            kt.wait(job.name, timeout=600)
    """

    def __init__(
        self,
        kubeconfig: str | os.PathLike[str] | None = None,
        context: str | None = None,
        namespace: str | None = None,
        *,
        timeouts: Timeouts | None = None,
    ) -> None:
        target: Target = load_target(kubeconfig, context)
        self.namespace = namespace or target.namespace
        self.namespace_given = namespace is not None
        self.server = target.server
        self.context = target.context
        self._t = Transport(target, timeouts=timeouts)

    def close(self) -> None:
        self._t.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ jobs

    def submit(self, job: TrainingJob, *, source: str = "<job>") -> TrainingJob:
        """Creates `job` and returns it as the cluster stored it.

        First the semantic check `kubetrain validate --cluster` runs (InvalidTrainingJob, and
        nothing is created). The namespace is the job's `metadata.namespace` if it names one,
        else the client's; naming two different ones is an InvalidTrainingJob. A job of the same
        name is a JobExists that says what it is (its phase and age).
        """
        check_job(job, source=source, on_cluster=True)
        namespace = self._namespace_for(job, source)
        body: Obj = job.model_dump(
            mode="json", by_alias=True, exclude_unset=True, exclude={"status"}
        )
        body["apiVersion"], body["kind"] = API_VERSION, KIND
        body.setdefault("metadata", {})["namespace"] = namespace
        request = _job_request("create", namespace, job.name)
        try:
            created = self._t.call("POST", job_path(namespace), request, body=body)
        except JobExists:
            raise self._exists(job.name, namespace) from None
        return self._parse(created)

    def _namespace_for(self, job: TrainingJob, source: str) -> str:
        own = job.metadata.namespace if "namespace" in job.metadata.model_fields_set else None
        if own is not None and self.namespace_given and own != self.namespace:
            raise InvalidTrainingJob(
                source,
                [f'metadata.namespace: is "{own}", but the namespace asked for is'
                 f' "{self.namespace}"; drop one of them'],
            )  # fmt: skip
        return own or self.namespace

    def _exists(self, name: str, namespace: str) -> JobExists:
        where = f'trainingjob "{name}" already exists in namespace "{namespace}"'
        fix = f"delete it first (kubetrain delete {name}) or give this one another metadata.name"
        try:
            existing = self._get(name, namespace)
        except ClusterError:
            return JobExists(f"{where}: {fix}")
        progress = ""
        if existing.status is not None and existing.status.epoch is not None:
            total = existing.status.total_epochs or existing.spec.training.epochs
            progress = f", epoch {existing.status.epoch}/{total}"
        created = age(created_at(existing), now_utc())
        return JobExists(
            f"{where} ({phase_of(existing).value}{progress}, created {created} ago): {fix}",
            existing,
        )

    def get(self, name: str) -> TrainingJob:
        """The job (JobNotFound if there is none)."""
        return self._get(name, self.namespace)

    def _get(self, name: str, ns: str) -> TrainingJob:
        return self._parse(self._t.call("GET", job_path(ns, name), _job_request("get", ns, name)))

    def list(self, *, all_namespaces: bool = False) -> JobList:
        """The jobs of the client's namespace (of every namespace), by namespace and name."""
        ns = None if all_namespaces else self.namespace
        found = self._t.call("GET", job_path(ns), _job_request("list", ns))
        jobs = [self._parse(item) for item in found.get("items") or []]
        return sorted(jobs, key=lambda j: (j.namespace, j.name))

    def delete(self, name: str) -> None:
        """Deletes the job; its pods, Service and ConfigMap go by garbage collection."""
        ns = self.namespace
        body = {"propagationPolicy": "Background"}
        self._t.call("DELETE", job_path(ns, name), _job_request("delete", ns, name), body=body)

    def status(self, name: str, *, log_lines: int = 10) -> JobStatus:
        """Where the job is: phase, conditions, failure (pod and container), progress,
        checkpoint, metrics, and the last `log_lines` lines of the log of the pod at fault
        (else the head's), when that log can be read."""
        job = self.get(name)
        if log_lines <= 0:
            return JobStatus.of(job)
        failure = Failure.of(job)
        pod = failure.pod if failure and failure.pod else head_pod_name(name)
        role = Role.HEAD if pod == head_pod_name(name) else Role.WORKER
        try:
            text = self._t.text(
                pod_path(self.namespace, pod, "log"),
                Request("get", "pods/log", "", self.namespace, pod),
                query={"container": role.value, "tailLines": str(log_lines)},
            )
        except ClusterError as exc:
            return JobStatus.of(job, log_pod=pod, log_note=str(exc))
        return JobStatus.of(job, log_pod=pod, log_tail=tuple(text.splitlines()))

    def metrics(self, name: str) -> dict[str, Any]:
        """The job's latest progress as the head wrote it into the status: epoch, step, loss,
        the validation metrics, samples/s, ETA and checkpoint ({} before the first epoch)."""
        return metrics_of(self.get(name))

    # ------------------------------------------------------------------ waiting

    def watch(self, name: str, *, timeout: float | None = None) -> Iterator[TrainingJob]:
        """The job now, then again every time it changes, for `timeout` s (None: until the
        caller stops). JobNotFound if it is deleted meanwhile."""
        deadline = None if timeout is None else time.monotonic() + timeout
        ns = self.namespace
        request = _job_request("watch", ns, name)
        found = self._t.call("GET", job_path(ns, name), _job_request("get", ns, name))
        version = str(found["metadata"].get("resourceVersion", ""))
        yield self._parse(found)
        while True:
            left = WATCH_WINDOW if deadline is None else deadline - time.monotonic()
            if left <= 0:
                return
            events = self._t.watch(
                job_path(ns), request, field_selector=f"metadata.name={name}",
                resource_version=version, timeout=min(left, WATCH_WINDOW),
            )  # fmt: skip
            for event in events:
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    if obj.get("code") != 410:  # 410 Gone: too old a version; read it again
                        raise error_for(int(obj.get("code") or 500), obj, request)
                    found = self._t.call("GET", job_path(ns, name), _job_request("get", ns, name))
                    version = str(found["metadata"].get("resourceVersion", ""))
                    yield self._parse(found)
                    break
                version = str((obj.get("metadata") or {}).get("resourceVersion", version))
                if kind == "DELETED":
                    raise JobNotFound(f'trainingjob "{name}" was deleted')
                if kind in ("ADDED", "MODIFIED"):
                    yield self._parse(obj)

    def wait(
        self,
        name: str,
        *,
        for_: Literal["succeeded", "finished"] | WaitFor = "succeeded",
        timeout: float | None = None,
        on_update: Callable[[TrainingJob], object] | None = None,
    ) -> TrainingJob:
        """Returns the job once it has Succeeded (`for_="finished"`: or Failed).

        Raises JobFailed (with the reason, pod and container) when a job awaited to succeed
        fails, WaitTimeout after `timeout` s (None: no limit), JobNotFound if it is deleted.
        `on_update` sees the job now and after every change (a progress display).
        """
        wait_for = WaitFor(for_)
        last: TrainingJob | None = None
        for job in self.watch(name, timeout=timeout):
            last = job
            if on_update is not None:
                on_update(job)
            found = verdict(phase_of(job), wait_for)
            if found is Verdict.DONE:
                return job
            if found is Verdict.FAILED:
                failure = Failure.of(job)
                why = failure.describe() if failure else "the status gives no reason"
                raise JobFailed(f'trainingjob "{name}" failed: {why}', job, failure)
        assert last is not None
        raise WaitTimeout(
            f'trainingjob "{name}" is still {phase_of(last).value} after {timeout:g} s', last
        )

    # ------------------------------------------------------------------ logs

    def logs(
        self,
        name: str,
        *,
        rank: int | None = None,
        follow: bool = False,
        tail: int | None = None,
        on_note: Callable[[str], None] | None = None,
    ) -> Iterator[str]:
        """The log lines of the job's head pod, or of worker `rank`'s pod.

        `follow`: go on as lines come, across the pod's replacement (a new pod of the same name
        is followed from its start, and `on_note` hears that it was replaced), until the job is
        over. `tail`: only the last lines (not with `follow`).
        """
        job = self.get(name)
        workers = job.spec.distributed.workers
        if rank is not None and not 0 <= rank < workers:
            raise ClusterError(
                f"job {name} has {workers} worker(s): the rank is 0 to {workers - 1}"
            )
        pod = head_pod_name(name) if rank is None else worker_pod_name(name, rank)
        role = Role.HEAD if rank is None else Role.WORKER
        if follow:
            source = _PodLog(self, name, pod, role)
            yield from follow_pod(source, pod, note=on_note or (lambda _: None))
            return
        query = {"container": role.value}
        if tail is not None:
            query["tailLines"] = str(tail)
        request = Request("get", "pods/log", "", self.namespace, pod)
        try:
            text = self._t.text(pod_path(self.namespace, pod, "log"), request, query=query)
        except PodNotFound:
            raise PodNotFound(
                f'pod "{pod}" not found in namespace "{self.namespace}": the job is'
                f" {phase_of(job).value} (its pods are made once it starts, and may be cleaned"
                " up once it ends)"
            ) from None
        yield from text.splitlines()

    # ------------------------------------------------------------------ helpers

    def _parse(self, obj: Obj) -> TrainingJob:
        try:
            return parse_job(obj, source="the cluster")
        except InvalidTrainingJob as exc:
            meta = obj.get("metadata") or {}
            raise ClusterError(
                f"trainingjob {meta.get('namespace')}/{meta.get('name')} on the cluster does not"
                f" parse with this kubetrain ({'; '.join(exc.problems)}): is kubetrain older than"
                " the cluster's CRD?"
            ) from None


class _PodLog:
    """A `follow.LogSource` over the API: the pod by name, its log, its job's end."""

    def __init__(self, client: Client, job: str, pod: str, role: Role) -> None:
        self.client, self.job, self.pod_name, self.role = client, job, pod, role
        self.namespace = client.namespace
        self.t = client._t

    def pod(self) -> tuple[PodState | None, str]:
        found = self.t.call(
            "GET", pod_path(self.namespace), Request("list", "pods", "", self.namespace),
            query={"fieldSelector": f"metadata.name={self.pod_name}"},
        )  # fmt: skip
        version = str((found.get("metadata") or {}).get("resourceVersion", ""))
        items = found.get("items") or []
        return (PodState.of(items[0]) if items else None), version

    def job_over(self) -> bool:
        try:
            return phase_of(self.client.get(self.job)).is_terminal
        except JobNotFound:
            return True

    def stream(self, *, since: LogStamp | None) -> Iterable[str]:
        query = {"container": self.role.value, "follow": "true", "timestamps": "true"}
        if since is not None:
            query["sinceTime"] = since.since_time()
        request = Request("get", "pods/log", "", self.namespace, self.pod_name)
        path = pod_path(self.namespace, self.pod_name, "log")
        return self.t.lines(path, request, query=query, read_timeout=LOG_SILENCE)

    def wait_for_change(self, resource_version: str, timeout: float) -> None:
        request = Request("watch", "pods", "", self.namespace)
        events = self.t.watch(
            pod_path(self.namespace), request, field_selector=f"metadata.name={self.pod_name}",
            resource_version=resource_version, timeout=timeout,
        )  # fmt: skip
        for _event in events:
            return  # any change (or an ERROR: too old a version) is worth a fresh look
