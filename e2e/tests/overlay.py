"""The size overlay: the only change the end-to-end suite makes to a shipped example.

test_examples.py applies every file in examples/ to the local cluster (one node, 2 CPUs, no GPU)
and runs it to Succeeded. The examples are written for real clusters (4 workers, 8 CPUs and a
GPU each, 100 epochs); `size_overlay` makes a copy of each document small enough to run there in
about a minute, and changes nothing else:

- `spec.training.epochs` → 1 (`EPOCHS`): the path (data, model, checkpoints, status) is what
  is tested, not the accuracy. An example that unfreezes its backbone later
  (`spec.model.freeze.unfreezeAtEpoch`) gets 2 epochs and unfreezes at the second: one frozen
  epoch, one fine-tuning (kubetrain refuses an unfreeze epoch past the last one).
- `spec.dataset.maxSamples` → at most 128 (`MAX_SAMPLES`) training samples; validation keeps
  its whole split.
- `spec.dataset.maxLength` → at most 32 tokens (`MAX_LENGTH`), text sources only: BERT's cost
  grows with it.
- `spec.distributed.workers` → at most 2 (`MAX_WORKERS`): still distributed (gloo all-reduce,
  sharded data).
- `spec.distributed.resourcesPerWorker.cpu` → `WORKER_CPU` (500m, `$KUBETRAIN_E2E_WORKER_CPU`):
  two workers and the head fit on 2 CPUs (Ray still gives each worker 1 CPU).
- `spec.distributed.resourcesPerWorker.memory` → `WORKER_MEMORY` (4Gi): enough for every
  example at this size (MobileNetV2 fine-tuning at 224x224 needs more than 2Gi).
- `spec.distributed.resourcesPerWorker.gpu` → 0 (removed): no GPU here.
- `spec.pod.tolerations` → without the `nvidia.com/gpu` toleration, which is there for GPU
  nodes only.
- `spec.pod.image` → the CPU trainer image where a GPU example names the CUDA one (`...-cuda`).

Everything else stays as written: the model, the data source and its path, the optimizer and
schedule, precision, freezing, early stopping, the backend, checkpoint paths and their claims,
run policies (an example created suspended stays so until the test unsuspends it), and the other
documents in the file (the PersistentVolumeClaims). The examples' downloads go to the in-cluster
mirror through the chart's `mirrors` values (the operator passes them to every pod), not through
the overlay: the jobs' specs carry no mirror setting, as on an air-gapped cluster.
"""

from __future__ import annotations

import copy
import os
from typing import Any

Obj = dict[str, Any]

EPOCHS = 1
MAX_SAMPLES = 128
MAX_LENGTH = 32
MAX_WORKERS = 2
WORKER_CPU = os.environ.get("KUBETRAIN_E2E_WORKER_CPU", "500m")
WORKER_MEMORY = "4Gi"
CPU_IMAGE = os.environ.get("KUBETRAIN_E2E_TRAINER_IMAGE", "kubetrain/trainer:0.1.0-cpu")
GPU_RESOURCE = "nvidia.com/gpu"
TEXT_SOURCES = {"imdb", "text_samples", "csv"}


def size_overlay(doc: Obj) -> Obj:
    """A copy of one document of an example, sized for the e2e cluster (the table above); a
    document that is not a TrainingJob (a PersistentVolumeClaim) comes back unchanged."""
    doc = copy.deepcopy(doc)
    if doc.get("kind") != "TrainingJob":
        return doc
    spec = doc["spec"]
    training = spec.setdefault("training", {})
    training["epochs"] = EPOCHS
    freeze = spec["model"].get("freeze") or {}
    if freeze.get("unfreezeAtEpoch"):
        training["epochs"] = max(EPOCHS, 2)
        freeze["unfreezeAtEpoch"] = min(freeze["unfreezeAtEpoch"], training["epochs"])
    dataset = spec["dataset"]
    dataset["maxSamples"] = min(dataset.get("maxSamples") or MAX_SAMPLES, MAX_SAMPLES)
    if dataset.get("source") in TEXT_SOURCES:
        dataset["maxLength"] = min(dataset.get("maxLength") or MAX_LENGTH, MAX_LENGTH)
    distributed = spec.setdefault("distributed", {})
    distributed["workers"] = min(distributed.get("workers") or MAX_WORKERS, MAX_WORKERS)
    resources = distributed.setdefault("resourcesPerWorker", {})
    gpu = int(resources.get("gpu") or 0)
    resources |= {"cpu": WORKER_CPU, "memory": WORKER_MEMORY}
    resources.pop("gpu", None)
    pod = spec.get("pod") or {}
    if "tolerations" in pod:
        pod["tolerations"] = [t for t in pod["tolerations"] if t.get("key") != GPU_RESOURCE]
        if not pod["tolerations"]:
            del pod["tolerations"]
    if gpu and str(pod.get("image", "")).endswith("-cuda"):
        pod["image"] = CPU_IMAGE
    return doc
