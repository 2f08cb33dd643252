"""One reconcile pass of one TrainingJob: load, decide, act, patch the status.

The pass is idempotent: it reads everything it acts on from the API server, creates only what is
missing (a 409 counts as created) and deletes pods by uid. Running it twice in a row changes
nothing the second time, and an operator restarted mid-job adopts the pods it finds.

Order of writes: for a decision that ends an attempt (restart, failure, suspension) the status is
written first, then pods are deleted, so a crash in between never loses a restart from the
backoffLimit count. For creations the pods come first and the status says so afterwards.
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timezone

from kubetrain.api import (
    ConditionType,
    InvalidTrainingJob,
    TrainingJob,
    TrainingJobSpec,
    TrainingJobStatus,
    check_job,
    derive_phase,
    parse_job,
)
from kubetrain.api.spec import RunPolicySpec
from kubetrain_operator import ledger
from kubetrain_operator.conditions import events_for, next_status, status_patch
from kubetrain_operator.config import OperatorConfig
from kubetrain_operator.decide import Action, Decision, Situation, decide
from kubetrain_operator.kube import ApiError, Kube, MissingApi
from kubetrain_operator.kubeobj import Obj
from kubetrain_operator.metrics import Metrics
from kubetrain_operator.observe import PodView, owned_by
from kubetrain_operator.render import (
    CONFIG_KEY,
    Role,
    config_map,
    config_map_name,
    head_pod,
    pod_selector,
    support_objects,
    worker_pod,
)
from kubetrain_operator.render.events import job_event
from kubetrain_operator.render.gang import missing_gang_message
from kubetrain_operator.specdiff import resolve_spec
from kubetrain_operator.timestamps import parse_time, rfc3339

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class JobKey:
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class Outcome:
    """What the caller needs to schedule the next pass."""

    gone: bool = False  # the job no longer exists (or is being deleted): stop reconciling it
    requeue_after: float | None = None  # seconds; None: wait for an event (or the resync)
    action: Action | None = None


# Seconds between looks while an earlier job's objects of the same names are being collected.
PREDECESSOR_POLL_SECONDS = 1.0


class PredecessorObject(Exception):
    """An object this job would create exists under its name but belongs to another job: an
    earlier TrainingJob of the same name, deleted, whose objects garbage collection has not
    removed yet. Taking it for ours would lose it to the collector moments later."""

    def __init__(self, kind: str, name: str) -> None:
        super().__init__(
            f"waiting for {kind} {name} of an earlier TrainingJob with this name to be deleted"
        )


@dataclass
class _Frozen:
    """The spec the job's pods run with, as stored in its ConfigMap."""

    spec: Obj


def _lenient_spec(raw_spec: object) -> TrainingJobSpec:
    """Just enough of an invalid spec to apply its run policy (cleanup, TTL) when failing it."""
    policy = RunPolicySpec()
    if isinstance(raw_spec, dict):
        with contextlib.suppress(ValueError):
            policy = RunPolicySpec.model_validate(raw_spec.get("runPolicy") or {})
    # Unvalidated on purpose: only run_policy is read on the way to Failed/InvalidSpec.
    return TrainingJobSpec.model_construct(run_policy=policy)  # type: ignore[call-arg]


class Reconciler:
    """Reconciles jobs one pass at a time. Safe to share between threads, one pass per job."""

    def __init__(
        self,
        kube: Kube,
        config: OperatorConfig,
        metrics: Metrics,
        *,
        clock: Clock = utcnow,
    ) -> None:
        self.kube = kube
        self.config = config
        self.metrics = metrics
        self.clock = clock
        # Frozen specs by job uid. Each job is reconciled by one thread at a time, so each entry
        # is only touched by one thread at a time.
        self._frozen: dict[str, _Frozen | None] = {}

    def forget(self, uid: str) -> None:
        self._frozen.pop(uid, None)
        self.metrics.forget(uid)

    # ------------------------------------------------------------------ the pass

    def reconcile(self, key: JobKey, seen: Obj | None = None, *, uid: str | None = None) -> Outcome:
        """One pass. `seen`: the job as a watch event showed it, if the caller has it. `uid`: the
        job this pass is for; a job of the same name with another uid is a successor, and for
        this pass (and its loop) the job is gone.

        A job no operator has touched yet (no status at all) needs nothing read back: it has no
        pods of its own but those a crashed operator made before any status write, and creating
        those again finds them (409). So its first pass goes by `seen` and makes no GET and no
        pod list: when 100 jobs arrive at once those reads sit between each job and its pods.
        Any other pass reads the job and its pods afresh.
        """
        started = time.perf_counter()
        try:
            untouched = seen if seen is not None and not seen.get("status") else None
            return self._reconcile(key, untouched, uid)
        except Exception:
            self.metrics.reconcile_errors.inc()
            raise
        finally:
            self.metrics.reconcile.observe(time.perf_counter() - started)

    def _reconcile(self, key: JobKey, untouched: Obj | None, bound_uid: str | None) -> Outcome:
        raw = untouched or self.kube.get_job(namespace=key.namespace, name=key.name)
        if raw is None or raw["metadata"].get("deletionTimestamp"):
            return Outcome(gone=True)
        if bound_uid is not None and raw["metadata"].get("uid") != bound_uid:
            return Outcome(gone=True)  # deleted and applied again: the successor has its own loop
        meta = raw["metadata"]
        uid: str = meta["uid"]
        # The limits count from the operator's own record, not from what the head pod may write.
        status = ledger.trusted(
            TrainingJobStatus.model_validate(raw.get("status") or {}),
            meta.get("annotations") or {},
        )

        invalid: str | None = None
        job: TrainingJob | None = None
        try:
            # Every field, then how they fit together: a job refused here never gets a pod.
            job = check_job(parse_job(raw, source=f"TrainingJob {key}"), on_cluster=True)
        except InvalidTrainingJob as exc:
            invalid = "; ".join(exc.problems)

        listed = [] if untouched else self.kube.list_pods(
            namespace=key.namespace, selector=pod_selector(key.name)
        )  # fmt: skip
        pods = [view for p in listed if (view := PodView(p)).owned_by(uid)]
        now = self.clock()

        if job is None:
            situation = Situation(
                name=key.name,
                spec=_lenient_spec(raw.get("spec")),
                status=status,
                pods=tuple(pods),
                now=now,
                invalid=invalid,
            )
            return self._carry_out(raw, situation, decide(situation, self.config.policy), None)

        # A job without conditions was never started: it has no ConfigMap to read yet.
        frozen = self._frozen_spec(uid, key) if status.conditions else None
        current = job.spec.model_dump(mode="json", by_alias=True, exclude_none=True)
        pods_exist = any(not p.deleting for p in pods)
        outcome = resolve_spec(frozen.spec if frozen else None, current, pods_exist=pods_exist)
        try:
            effective = TrainingJobSpec.model_validate(outcome.effective)
        except ValueError:
            effective = job.spec  # a frozen spec that no longer parses: run the current one
        situation = Situation(
            name=key.name,
            spec=effective,
            status=status,
            pods=tuple(pods),
            now=now,
            refused=outcome.refused,
            refused_message=outcome.message,
        )
        decision = decide(situation, self.config.policy)
        run_job = job.model_copy(update={"spec": effective})
        return self._carry_out(raw, situation, decision, run_job)

    # ------------------------------------------------------------------ doing

    def _carry_out(self, raw: Obj, s: Situation, d: Decision, job: TrainingJob | None) -> Outcome:
        meta = raw["metadata"]
        key = JobKey(meta["namespace"], meta["name"])
        uid: str = meta["uid"]
        if d.action is Action.DELETE_JOB:
            log.info("%s: deleting the job: %s", key, d.message)
            self.kube.delete_job(namespace=key.namespace, name=key.name, uid=uid)
            return Outcome(gone=True, action=d.action)

        if d.action is Action.CREATE and job is not None:
            try:
                done, workers_created = self._create(job, s, d)
                if d.replaced_workers:
                    # A list served from the watch cache can miss a pod made moments ago; its
                    # create then finds it (409): only the pods really made replace a worker.
                    d = replace(d, replaced_workers=workers_created)
                if not done:
                    # Pods only, this time: the rest and the status come in the next pass,
                    # queued behind other jobs' pods (see _create).
                    log.info("%s: created pods %s", key, ", ".join(
                        k.pod_name(key.name) for k in d.create))  # fmt: skip
                    return Outcome(requeue_after=0.0, action=d.action)
            except PredecessorObject as exc:
                # Nothing to decide until the collector is done; what was made stays ours. The
                # status says why nothing moves (a job with no status looks forgotten).
                log.info("%s: %s", key, exc)
                waiting = s.status.model_copy(
                    update={"message": str(exc), "phase": derive_phase(s.status.conditions)}
                )
                self._write_status(key, uid, raw, s.status, waiting)
                return Outcome(requeue_after=PREDECESSOR_POLL_SECONDS, action=d.action)
            except MissingApi:
                # The gang scheduler is not installed: that will not change by retrying.
                s = replace(s, gang_missing=missing_gang_message(job))
                d = decide(s, self.config.policy)
            except ApiError as exc:
                if exc.status not in (400, 422):
                    raise
                # The API server refuses what the spec renders to: a spec error, not a blip.
                s = replace(s, invalid=f"the API server refused a pod of this job: {exc.message}")
                d = decide(s, self.config.policy)

        if d.action is not Action.NOOP:
            log.info("%s: %s: %s", key, d.action.value, d.message or ", ".join(d.delete))
        new = next_status(s, d, generation=meta.get("generation"), now=s.now)
        if d.action.ends_attempt:
            self._write_status(key, uid, raw, s.status, new)
            self._delete_pods(key, s, d.delete)
        else:
            self._delete_pods(key, s, d.delete)
            self._write_status(key, uid, raw, s.status, new)
        return Outcome(requeue_after=d.requeue_after, action=d.action)

    def _write_status(
        self, key: JobKey, uid: str, raw: Obj, old: TrainingJobStatus, new: TrainingJobStatus
    ) -> None:
        annotations = raw["metadata"].get("annotations") or {}
        if ledger.changed(old, new) or ledger.ANNOTATION not in annotations:
            written = self.kube.annotate_job(
                namespace=key.namespace, name=key.name, uid=uid, key=ledger.ANNOTATION,
                value=ledger.record(new), has_any=bool(annotations),
            )  # fmt: skip
            if written is None:
                return  # deleted meanwhile
        # Against the status as stored, not as trusted: a guarded field the head pod rewrote is
        # put back.
        patch = status_patch(TrainingJobStatus.model_validate(raw.get("status") or {}), new)
        created_at = parse_time(raw["metadata"].get("creationTimestamp"))
        if patch:
            updated = self.kube.patch_job_status(
                namespace=key.namespace, name=key.name, patch=patch, uid=uid,
                has_status=bool(raw.get("status")),
            )  # fmt: skip
            if updated is None:
                return  # deleted meanwhile
            for event in events_for(old, new):
                self._event(key, uid, event.type, event.reason, event.message)
        self.metrics.observe(uid=uid, created_at=created_at, old=old, new=new, now=self.clock())
        self.metrics.observe_model(uid=uid, namespace=key.namespace, job=key.name, status=new)

    def _event(self, key: JobKey, uid: str, kind: str, reason: str, message: str) -> None:
        body = job_event(
            name=key.name, namespace=key.namespace, uid=uid, type=kind, reason=reason,
            message=message, source=self.config.event_source, at=rfc3339(self.clock()),
        )  # fmt: skip
        try:
            self.kube.create(body)
        except ApiError as exc:  # an event is worth a log line, not a failed reconcile
            log.warning("%s: cannot write event %s: %s", key, reason, exc)

    def _delete_pods(self, key: JobKey, s: Situation, names: tuple[str, ...]) -> None:
        uids = {p.name: p.meta.get("uid") for p in s.pods}
        for name in names:
            self.kube.delete_pod(namespace=key.namespace, name=name, uid=uids.get(name))

    def _create(self, job: TrainingJob, s: Situation, d: Decision) -> tuple[bool, int]:
        """Creates what `d` asks for. Returns whether all is done (False if the objects besides
        the pods are still to come) and how many worker pods were new (not found existing).

        Pods first: they are what the user waits for, and when many jobs arrive at once the
        API server is the bottleneck. So a new attempt's first pass creates only its pods (and
        the ServiceAccount the head needs: pod admission checks it) and asks for another pass, which
        queues behind the other jobs' first passes and creates the ConfigMap (the kubelet waits
        for it), the Service and the driver's RBAC. Until the status says Created, every pass
        makes sure of all the objects, so a crash halfway through leaves nothing missing.
        """
        settings = self.config.pods
        attempt = s.status.restarts
        fresh = not any(not p.deleting for p in s.pods)
        unconfirmed = fresh or not any(
            c.type is ConditionType.CREATED and c.status == "True" for c in s.status.conditions
        )
        token = secrets.token_urlsafe(32)  # used only if this pass creates the job's Secret
        support = support_objects(job, settings, ray_token=token) if unconfirmed else []
        if fresh and self._frozen.get(job.metadata.uid or "") is not None:
            # Resuming with accepted edits: the ConfigMap must say what the new pods run
            # before they exist, or a restarted operator would take them for refused edits.
            self._freeze(job)
        if d.create:
            # A gang scheduler places the pods by their PodGroup: it comes before any of them.
            # Without its CRD this raises MissingApi, and the job fails before it has a pod.
            for obj in support:
                if obj["kind"] == "PodGroup":
                    self._make(obj, job)
        if any(k.role is Role.HEAD for k in d.create):
            # The head runs as the driver's ServiceAccount: pod admission wants it first; every
            # pod's container waits for the Ray token Secret. A head that exists proves both
            # did too, so no other pass asks for them again.
            for obj in support:
                if obj["kind"] == "ServiceAccount":
                    self._make(obj, job)
                elif obj["kind"] == "Secret":
                    # Never read back (the operator may create Secrets, not get them): one that
                    # exists already is this job's.
                    self.kube.create(obj)
        workers_created = 0
        for pod_key in d.create:
            if pod_key.role is Role.HEAD:
                self._make(head_pod(job, attempt=attempt, settings=settings), job)
            else:
                pod = worker_pod(job, pod_key.rank or 0, attempt=attempt, settings=settings)
                workers_created += self._make(pod, job)
        if fresh and d.create:
            return False, workers_created
        if unconfirmed:
            # The pods of a new attempt run the spec in force now: freeze it for them.
            self._freeze(job)
            for obj in support:
                if obj["kind"] not in ("ConfigMap", "ServiceAccount", "Secret", "PodGroup"):
                    self._make(obj, job)
        return True, workers_created

    def _make(self, obj: Obj, job: TrainingJob) -> bool:
        """Creates `obj`, owned by `job`. True if created; False if it exists and is the job's.

        Raises PredecessorObject if what exists under that name belongs to another job (one
        read, and only on a 409: a new job pays nothing for it).
        """
        if self.kube.create(obj):
            return True
        meta = obj["metadata"]
        found = self.kube.get(
            kind=obj["kind"], namespace=meta["namespace"], name=meta["name"],
            api_version=obj["apiVersion"],
        )  # fmt: skip
        if not owned_by(found, job.metadata.uid or ""):
            raise PredecessorObject(obj["kind"], meta["name"])  # or gone since: look again
        return False

    # ------------------------------------------------------------------ the frozen spec

    def _frozen_spec(self, uid: str, key: JobKey) -> _Frozen | None:
        if uid not in self._frozen:
            cm = self.kube.get_config_map(namespace=key.namespace, name=config_map_name(key.name))
            self._frozen[uid] = _read_frozen(cm, uid)
        return self._frozen[uid]

    def _freeze(self, job: TrainingJob) -> None:
        """Writes the ConfigMap the driver reads (created, or updated if the spec moved on)."""
        uid = job.metadata.uid or ""
        wanted = config_map(job)
        spec = json.loads(wanted["data"][CONFIG_KEY])["spec"]
        frozen = self._frozen.get(uid)
        if frozen is not None and frozen.spec == spec:
            return
        if not self._make(wanted, job):
            self.kube.patch_config_map(
                namespace=job.namespace,
                name=config_map_name(job.name),
                patch={"metadata": {"annotations": wanted["metadata"]["annotations"]},
                       "data": wanted["data"]},
            )  # fmt: skip
        self._frozen[uid] = _Frozen(spec)


def _read_frozen(cm: Obj | None, uid: str) -> _Frozen | None:
    if cm is None:
        return None
    if not owned_by(cm, uid):
        return None  # a leftover of an earlier job with the same name
    try:
        data = json.loads((cm.get("data") or {})[CONFIG_KEY])
    except (KeyError, ValueError):
        return None
    return _Frozen(data.get("spec") or {})
