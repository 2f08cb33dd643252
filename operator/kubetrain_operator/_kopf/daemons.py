"""Job loops without a finalizer on the job.

kopf adds a finalizer to every object it runs a daemon for, so that it can stop the daemon before
the object goes away. For this operator that finalizer buys nothing and costs three things:

- a merge PATCH of every new job, and one more watch event, inside the burst of a job's first
  seconds: with 100 jobs applied at once on 2 cores, apply -> pods p50 went 1.1 s -> 0.65 s without
  it (bench/RESULTS.md, stop 9);
- `kubectl delete tj` hangs for as long as no operator runs (uninstalled, crash-looping, scaled
  to zero), until someone strips the finalizer by hand;
- nothing to clean up needs it: the job's objects carry owner references and go by garbage
  collection, and the operator's own memory of a job is dropped on its DELETED event.

What kopf's finalizer did for the loop, the loop does itself: each loop is bound to the uid of the
job it was started for and ends at the first pass that finds the job gone, being deleted, or
replaced by a new job with the same name (`Reconciler.reconcile`); a DELETED event wakes it for
that pass. Its status writes carry the uid as a precondition, so a pass in flight when its job is
replaced cannot write into the successor. kopf still stops every loop when peering pauses this
replica, and on a job with a deletionTimestamp (foreground deletion).

kopf's daemon decorator always asks for the finalizer (nolar/kopf#896 declines an option), so the
daemons are re-registered without it.
"""

from __future__ import annotations

import dataclasses

import kopf
from kopf._core.intents.handlers import DaemonHandler


def daemons(registry: kopf.OperatorRegistry) -> list[DaemonHandler]:
    """The daemons registered in `registry` (kopf has no public API that lists them)."""
    return [h for h in registry._spawning.get_all_handlers() if isinstance(h, DaemonHandler)]


def release_daemons(registry: kopf.OperatorRegistry) -> list[str]:
    """Makes every daemon in `registry` run without a finalizer; returns their ids.

    Reaches into kopf's registry (no public API sets this); tests/operator/test_nofinalizer.py
    fails if kopf's internals move.
    """
    spawning = registry._spawning
    released: list[str] = []
    for i, handler in enumerate(spawning._handlers):
        if isinstance(handler, DaemonHandler) and handler.requires_finalizer:
            spawning._handlers[i] = dataclasses.replace(handler, requires_finalizer=False)
            released.append(handler.id)
    return released
