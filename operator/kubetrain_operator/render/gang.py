"""Gang scheduling and queueing: the PodGroup a gang scheduler reads, and what ties the job's pods
to it or to a Kueue pod group. Pure: dicts in, dicts out.

- Volcano (`spec.scheduling.gang: volcano`): a `scheduling.volcano.sh/v1beta1` PodGroup; each pod
  names it in the annotation `scheduling.k8s.io/group-name` and is scheduled by `volcano`.
- Coscheduling (scheduler-plugins): a `scheduling.x-k8s.io/v1alpha1` PodGroup; each pod names it
  in the label `scheduling.x-k8s.io/pod-group` and is scheduled by the chart's second scheduler,
  `scheduler-plugins-scheduler`.
- Kueue's pod integration (Kueue 0.6+): a TrainingJob with the label `kueue.x-k8s.io/queue-name`
  gets, on each pod of an attempt, the label `kueue.x-k8s.io/pod-group-name` and the annotation
  `kueue.x-k8s.io/pod-group-total-count`; Kueue gates the pods and admits the group as one
  Workload. One group per attempt: a whole-job restart deletes every pod and queues anew.

The PodGroup asks for every pod of the job (`minMember`) and the sum of their requests
(`minResources`), so no scheduler starts a part of the job that cannot train alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from kubetrain.api import GangScheduler, TrainingJob
from kubetrain.api.quantities import format_quantity, parse_quantity
from kubetrain_operator.kubeobj import Obj
from kubetrain_operator.render.names import LABEL_KUEUE_QUEUE

VOLCANO_GROUP_ANNOTATION = "scheduling.k8s.io/group-name"
COSCHEDULING_GROUP_LABEL = "scheduling.x-k8s.io/pod-group"
KUEUE_GROUP_LABEL = "kueue.x-k8s.io/pod-group-name"
KUEUE_TOTAL_ANNOTATION = "kueue.x-k8s.io/pod-group-total-count"


@dataclass(frozen=True)
class GangApi:
    """Where a gang scheduler's PodGroup lives, and what the pods need to be its."""

    group: str
    version: str
    scheduler_name: str  # the pods' schedulerName unless spec.pod.schedulerName says otherwise
    install: str  # how to get the PodGroup API, for the error when it is missing

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"

    @property
    def crd_name(self) -> str:
        return f"podgroups.{self.group}"


GANG_APIS: dict[GangScheduler, GangApi] = {
    GangScheduler.VOLCANO: GangApi(
        group="scheduling.volcano.sh",
        version="v1beta1",
        scheduler_name="volcano",
        install="install Volcano (https://volcano.sh)",
    ),
    GangScheduler.COSCHEDULING: GangApi(
        group="scheduling.x-k8s.io",
        version="v1alpha1",
        scheduler_name="scheduler-plugins-scheduler",
        install="install scheduler-plugins with the Coscheduling plugin"
        " (https://scheduler-plugins.sigs.k8s.io)",
    ),
}
POD_GROUP_PLURAL = "podgroups"


def gang_api(job: TrainingJob) -> GangApi | None:
    return GANG_APIS.get(job.spec.scheduling.gang)


def missing_gang_message(job: TrainingJob) -> str:
    """Why a job whose gang scheduler's PodGroup API is not served cannot start, and the fix."""
    api = gang_api(job)
    assert api is not None, "only a job with spec.scheduling.gang creates a PodGroup"
    gang = job.spec.scheduling.gang.value
    return (
        f"spec.scheduling.gang is {gang}, but the API server has no PodGroup {api.api_version}"
        f" (CRD {api.crd_name} is not installed): {api.install}, or remove"
        " spec.scheduling.gang"
    )


def pod_count(job: TrainingJob) -> int:
    """Every pod of an attempt: the head and one per worker."""
    return 1 + job.spec.distributed.workers


def pod_group_name(job: str) -> str:
    return job


def kueue_group_name(job: str, attempt: int | str) -> str:
    """One Kueue pod group per attempt (at most 52 + 1 + 10 characters: a label value)."""
    return f"{job}-{attempt}"


def scheduler_name(job: TrainingJob) -> str | None:
    """The pods' schedulerName: the user's, else the gang scheduler's, else the default."""
    api = gang_api(job)
    return job.spec.pod.scheduler_name or (api.scheduler_name if api else None)


def pod_marks(job: TrainingJob, attempt: int | str) -> tuple[dict[str, str], dict[str, str]]:
    """The labels and annotations that put a pod of `attempt` in its gang and its Kueue group."""
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}
    gang = job.spec.scheduling.gang
    if gang is GangScheduler.VOLCANO:
        annotations[VOLCANO_GROUP_ANNOTATION] = pod_group_name(job.name)
    elif gang is GangScheduler.COSCHEDULING:
        labels[COSCHEDULING_GROUP_LABEL] = pod_group_name(job.name)
    if LABEL_KUEUE_QUEUE in job.metadata.labels:
        labels[KUEUE_GROUP_LABEL] = kueue_group_name(job.name, attempt)
        annotations[KUEUE_TOTAL_ANNOTATION] = str(pod_count(job))
    return labels, annotations


def pod_group(job: TrainingJob, metadata: Obj, pods: list[tuple[Obj, int]]) -> Obj | None:
    """The gang scheduler's PodGroup (None without one). `metadata`: the job's usual metadata for
    an owned object; `pods`: each pod shape of an attempt with how many pods have it."""
    api = gang_api(job)
    if api is None:
        return None
    scheduling = job.spec.scheduling
    spec: Obj = {
        "minMember": sum(count for _, count in pods),
        "minResources": total_requests(pods),
    }
    if job.spec.scheduling.gang is GangScheduler.VOLCANO:
        if scheduling.queue:
            spec["queue"] = scheduling.queue
        if job.spec.pod.priority_class_name:
            spec["priorityClassName"] = job.spec.pod.priority_class_name
    elif scheduling.schedule_timeout_seconds is not None:
        spec["scheduleTimeoutSeconds"] = scheduling.schedule_timeout_seconds
    return {"apiVersion": api.api_version, "kind": "PodGroup", "metadata": metadata, "spec": spec}


def total_requests(pods: list[tuple[Obj, int]]) -> dict[str, str]:
    """What `count` pods of each shape ask for together, resource by resource."""
    totals: dict[str, Fraction] = {}
    for pod, count in pods:
        for container in pod["spec"]["containers"]:
            for name, quantity in (container.get("resources") or {}).get("requests", {}).items():
                totals[name] = totals.get(name, Fraction(0)) + parse_quantity(quantity) * count
    return {name: format_quantity(total) for name, total in sorted(totals.items())}
