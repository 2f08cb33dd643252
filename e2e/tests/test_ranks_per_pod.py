"""Several training ranks in one worker pod (spec.distributed.ranksPerPod), on the cluster.

The same small job trains as 2 worker pods x 2 CPU ranks and as 4 pods x 1 rank, one after the
other (the node has 2 CPUs). Both must report a world of 4, the two ranks of a pod must know
each other as local ranks 0 and 1 (Ray Train groups them by pod IP), and the loss must follow the
same trajectory: data parallelism is the same average whichever pod a rank is in.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from e2e.tests.conftest import (
    Figures,
    checkpoint_host_dir,
    example_job,
    is_local_cluster,
    wait_for_phase,
)
from e2e.tests.kube import Kubectl

# name: (worker pods, ranks per pod, CPU per pod): one CPU of ranks either way.
SHAPES = {"ranks-2x2": (2, 2, "500m"), "ranks-4x1": (4, 1, "250m")}
IDENTITY = re.compile(r"rank (\d+) of (\d+): local rank (\d+) of (\d+) on node (\d+)")


def _history(namespace: str, checkpoint: str) -> list[dict[str, float]]:
    """The per-epoch record in the job's last checkpoint, read off the claim's host directory."""
    (meta,) = checkpoint_host_dir(namespace).rglob(f"{Path(checkpoint).name}/meta.json")
    history: list[dict[str, float]] = json.loads(meta.read_text())["history"]
    return history


def test_two_pods_of_two_ranks_train_as_four_pods_of_one(
    kubectl: Kubectl, namespace: str, checkpoint_claim: str, figures: Figures
) -> None:
    if not is_local_cluster(kubectl):
        pytest.skip("reads the checkpoints off the local cluster's hostPath claim")
    losses: dict[str, list[float]] = {}
    for name, (pods, ranks, cpu) in SHAPES.items():
        job = example_job(name, namespace, claim=checkpoint_claim)
        job["spec"]["training"]["epochs"] = 2
        job["spec"]["distributed"] |= {"workers": pods, "ranksPerPod": ranks}
        job["spec"]["distributed"]["resourcesPerWorker"]["cpu"] = cpu
        # Ray folds log lines that differ only in numbers: every rank's line must show.
        job["spec"]["pod"]["env"] = [{"name": "RAY_DEDUP_LOGS", "value": "0"}]
        kubectl.apply(job)
        status = wait_for_phase(kubectl, name, namespace, {"Succeeded"}, timeout=600)
        assert status["worldSize"] == 4, status
        log = kubectl.run("logs", "-n", namespace, f"{name}-head")
        seen = {tuple(map(int, m.groups())) for m in IDENTITY.finditer(log)}
        # (rank, world, local rank, local world, node): ranks 2r and 2r+1 share pod r.
        assert seen == {(r, 4, r % ranks, ranks, r // ranks) for r in range(4)}, log[-3000:]
        losses[name] = [epoch["val_loss"] for epoch in _history(namespace, status["checkpoint"])]
        figures.record(f"{name}.val_loss", losses[name])
        kubectl.delete("trainingjob", name, namespace=namespace)
    two_by_two, four_by_one = losses.values()
    assert len(two_by_two) == 2 and two_by_two == pytest.approx(four_by_one, rel=1e-4)
