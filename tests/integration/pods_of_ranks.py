"""Run in a subprocess by test_ranks_per_pod.py: a Ray cluster of two "worker pods" (Ray nodes
offering the operator's worker resource, as `python -m kubetrain.pods worker` does), on which a
job trains as 2 pods x 2 ranks and then as 4 pods x 1 rank. Prints one JSON line per run: the
val losses per epoch, the world size reported, and how many training ranks each node hosted.

Its own process: the test session's Ray is a one-node cluster, and Ray allows one per process.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import ray
from ray._private import state
from ray.cluster_utils import Cluster

from kubetrain.pods.contract import WORKER_RESOURCE
from kubetrain.runner import LocalCluster, run_job, start_ray
from tests.conftest import named_job
from tests.integration.conftest import RecordingSink


def train(name: str, storage: Path, workers: int, ranks: int) -> dict[str, Any]:
    before = set(state.actors())
    job = named_job(
        name,
        model={"name": "mlp", "inputSize": 784, "hiddenSizes": [32], "numClasses": 10},
        dataset={"source": "digits", "batchSize": 16},
        training={"epochs": 2, "seed": 0, "optimizer": {"name": "sgd", "lr": 0.05}},
        distributed={"workers": workers, "ranksPerPod": ranks,
                     "resourcesPerWorker": {"cpu": "1", "memory": "2Gi"}},
        checkpoint={"storagePath": str(storage)},
        metrics={"enabled": False},
    )  # fmt: skip
    sink = RecordingSink()
    run_job(job, sink, cluster=LocalCluster(address="auto"),
            worker_resources={WORKER_RESOURCE: 1.0})  # fmt: skip
    trainers = [
        a for actor_id, a in state.actors().items()
        if actor_id not in before and a["ActorClassName"].endswith("RayTrainWorker")
    ]  # fmt: skip
    return {
        "val_loss": [r.val["loss"] for r in sink.epochs],
        "world_size": [r.world_size for r in sink.epochs],
        "ranks_per_node": sorted(Counter(a["Address"]["NodeID"] for a in trainers).values()),
    }


def main(storage: Path) -> None:
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    for _ in range(2):  # two worker pods, each offering 2 ranks (ranksPerPod: 2)
        cluster.add_node(num_cpus=2, resources={WORKER_RESOURCE: 2})
    cluster.wait_for_nodes()
    start_ray(LocalCluster(address=cluster.address))
    try:
        for name, workers, ranks in (("two-by-two", 2, 2), ("four-by-one", 4, 1)):
            print(json.dumps({"run": name, **train(name, storage, workers, ranks)}), flush=True)
    finally:
        ray.shutdown()
        cluster.shutdown()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
