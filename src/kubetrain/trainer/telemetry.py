"""Prometheus metrics every training worker serves over HTTP, labelled by job, namespace, rank."""

from __future__ import annotations

import logging
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

log = logging.getLogger(__name__)

_LABELS = ("job", "namespace", "rank")


class WorkerMetrics:
    """One registry per worker, so several workers in one process never collide."""

    def __init__(self, job: str, namespace: str, rank: int, metric_name: str) -> None:
        self.registry = CollectorRegistry()
        self._labels = {"job": job, "namespace": namespace, "rank": str(rank)}
        self._server: Any = None
        r = self.registry

        def gauge(name: str, doc: str, extra: tuple[str, ...] = ()) -> Gauge:
            return Gauge(name, doc, (*_LABELS, *extra), registry=r)

        self.train_loss = gauge("kubetrain_train_loss", "Training loss of the latest step.")
        self.val_loss = gauge("kubetrain_val_loss", "Validation loss after the latest epoch.")
        self.val_metric = gauge(
            "kubetrain_val_metric", "Validation metric after the latest epoch.", ("metric",)
        )
        self.samples_per_second = gauge(
            "kubetrain_samples_per_second", "Training samples per second on this worker."
        )
        self.step_seconds = Histogram(
            "kubetrain_step_duration_seconds",
            "Wall time of one optimizer step.",
            _LABELS,
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=r,
        )
        self.epoch = gauge("kubetrain_epoch", "Epochs completed.")
        self.step = gauge("kubetrain_step", "Optimizer steps completed.")
        self.samples = Counter(
            "kubetrain_samples", "Training samples processed.", _LABELS, registry=r
        )
        self.world_size = gauge("kubetrain_world_size", "Number of data-parallel workers.")
        self.learning_rate = gauge("kubetrain_learning_rate", "Current learning rate.")
        self.metric_name = metric_name

    def serve(self, port: int, addr: str = "0.0.0.0") -> bool:
        """Start the /metrics endpoint; training goes on without it if the port is taken."""
        try:
            self._server, _ = start_http_server(port, addr=addr, registry=self.registry)
        except OSError as exc:
            log.warning("metrics: cannot listen on %s:%d (%s); continuing without", addr, port, exc)
            return False
        return True

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def record_step(
        self, *, loss: float, seconds: float, samples: int, step: int, lr: float
    ) -> None:
        lb = self._labels
        self.train_loss.labels(**lb).set(loss)
        self.step_seconds.labels(**lb).observe(seconds)
        self.samples.labels(**lb).inc(samples)
        self.step.labels(**lb).set(step)
        self.learning_rate.labels(**lb).set(lr)

    def record_epoch(
        self, *, epoch: int, val: dict[str, float], samples_per_second: float, world_size: int
    ) -> None:
        lb = self._labels
        self.epoch.labels(**lb).set(epoch)
        self.val_loss.labels(**lb).set(val["loss"])
        for name in ("accuracy", "precision", "recall", "f1"):
            self.val_metric.labels(**lb, metric=name).set(val[name])
        self.samples_per_second.labels(**lb).set(samples_per_second)
        self.world_size.labels(**lb).set(world_size)
