"""Spec mistakes knowable before any data loads, shared by the tests of every entry point that
must refuse them (the semantic check itself, `kubetrain validate`, `kubetrain run`, the operator).

Each is (id, spec patch over tests.conftest.BASE_JOB, the field the message must name, a phrase
of the fix)."""

from __future__ import annotations

from typing import Any

import pytest

MISTAKES: list[tuple[str, dict[str, Any], str, str]] = [
    ("mlp-input-size", {"model": {"name": "mlp", "inputSize": 100}},
     "spec.model.inputSize", "set inputSize: 784"),
    ("mlp-input-size-resized", {"dataset": {"source": "digits", "imageSize": 16}},
     "spec.model.inputSize", "set inputSize: 256"),
    ("mlp-input-size-cifar", {"dataset": {"source": "cifar10"}},
     "spec.model.inputSize", "set inputSize: 3072"),
    ("lstm-on-images", {"model": {"name": "lstm"}},
     "spec.model.name", "'lstm' takes text, but dataset source 'digits' yields images"),
    ("bert-on-csv", {"model": {"name": "bert"}, "dataset": {"source": "csv", "path": "x.csv"}},
     "spec.model.name", "yields tabular rows"),
    ("cnn-on-text", {"model": {"name": "cnn"}, "dataset": {"source": "imdb"}},
     "spec.model.name", "'cnn' takes images"),
    ("classes-digits", {"model": {"numClasses": 5}},
     "spec.model.numClasses", "set numClasses: 10"),
    ("classes-imdb", {"model": {"name": "lstm"}, "dataset": {"source": "imdb"}},
     "spec.model.numClasses", "set numClasses: 2"),
    ("classes-synthetic-text", {"model": {"name": "lstm", "numClasses": 3},
                                "dataset": {"source": "synthetic"}},
     "spec.model.numClasses", "set numClasses: 2"),
    ("unfreeze-after-last-epoch",
     {"model": {"name": "mobilenet_v2", "freeze": {"backbone": True, "unfreezeAtEpoch": 12}},
      "training": {"epochs": 10}},
     "spec.model.freeze.unfreezeAtEpoch", "after the last epoch (10)"),
    ("unfreeze-at-1",
     {"model": {"name": "mobilenet_v2", "freeze": {"backbone": True, "unfreezeAtEpoch": 1}}},
     "spec.model.freeze.unfreezeAtEpoch", "set it to 2 or later"),
    ("unfreeze-nothing-frozen",
     {"model": {"name": "mobilenet_v2", "freeze": {"unfreezeAtEpoch": 2}}},
     "spec.model.freeze.unfreezeAtEpoch", "nothing is frozen"),
    ("freeze-an-mlp", {"model": {"freeze": {"backbone": True}}},
     "spec.model.freeze", "no pretrained parts to freeze"),
    ("freeze-mobilenet-layers", {"model": {"name": "mobilenet_v2", "freeze": {"layers": 2}}},
     "spec.model.freeze", "backbone: true"),
    ("fp16-on-cpu", {"training": {"precision": "fp16"}},
     "spec.training.precision", "use bf16 or fp32 on CPU"),
    ("local-sgd-deepspeed", {"distributed": {"backend": "deepspeed",
                                             "aggregation": {"strategy": "local_sgd"}}},
     "spec.distributed.aggregation.strategy", "use allreduce, or backend ddp"),
    ("deepspeed-raw-batch", {"distributed": {"backend": "deepspeed",
                                             "deepspeed": {"config": {"train_batch_size": 7}}}},
     "spec.distributed.deepspeed.config.train_batch_size", "leave it out"),
    ("deepspeed-unfreeze",
     {"model": {"name": "mobilenet_v2", "freeze": {"backbone": True, "unfreezeAtEpoch": 2}},
      "distributed": {"backend": "deepspeed"}},
     "spec.model.freeze.unfreezeAtEpoch", "needs backend ddp"),
    ("custom-without-entrypoint", {"model": {"name": "custom"}},
     "spec.model.entrypoint", "is required when model.name is 'custom'"),
    ("entrypoint-not-custom", {"model": {"entrypoint": "pkg.mod:build"}},
     "spec.model.entrypoint", "set name: custom"),
    ("pretrained-mlp", {"model": {"pretrained": "imagenet"}},
     "spec.model.pretrained", "drop it"),
    ("folder-without-path", {"dataset": {"source": "image_folder"}},
     "spec.dataset.path", "is required for source 'image_folder'"),
    ("path-for-digits", {"dataset": {"path": "/data/digits"}},
     "spec.dataset.path", "drop path"),
    ("image-size-for-text", {"model": {"name": "lstm", "numClasses": 2},
                             "dataset": {"source": "text_samples", "imageSize": 32}},
     "spec.dataset.imageSize", "only applies to images"),
    ("augment-text", {"model": {"name": "lstm", "numClasses": 2},
                      "dataset": {"source": "text_samples", "augmentation": {"rotation": 10}}},
     "spec.dataset.augmentation", "only applies to images"),
    ("worker-memory-below-a-ray-node", {"distributed": {"resourcesPerWorker": {"memory": "150Mi"}}},
     "spec.distributed.resourcesPerWorker.memory", "set memory: 512Mi or more"),
    ("claim-with-s3", {"checkpoint": {"storagePath": "s3://bucket/runs", "claimName": "ckpt"}},
     "spec.checkpoint.claimName", "drop claimName"),
    ("s3-endpoint-local-path", {"checkpoint": {"s3Endpoint": "http://minio:9000"}},
     "spec.checkpoint.s3Endpoint", "only used with an s3:// storagePath"),
]  # fmt: skip


def mistake_params() -> list[Any]:
    return [pytest.param(patch, field, fix, id=name) for name, patch, field, fix in MISTAKES]
