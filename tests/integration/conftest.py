"""A real local Ray cluster, shared by the integration tests of one session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from kubetrain.api.report import EpochReport
from kubetrain.runner import EpochUpdate, LocalCluster, WorkerFailure, start_ray

# A GPU test's two cases: on a CUDA GPU (skipped without one), and its CPU twin, which runs
# everywhere so the GPU test's code never rots (scripts/gpu-check.sh runs either).
GPU_AND_ITS_CPU_TWIN = [
    pytest.param(
        "cuda",
        marks=[
            pytest.mark.gpu,
            pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
        ],
    ),
    pytest.param("cpu", marks=pytest.mark.gpu_twin),
]


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[None]:
    import ray

    # 4 logical CPUs on a 2-core machine: two 1-CPU workers plus Ray's own actors.
    start_ray(LocalCluster(num_cpus=4))
    yield
    ray.shutdown()


def actor_ids() -> set[str]:
    """Every actor this session's cluster has run so far, dead or alive."""
    from ray._private import state

    return set(state.actors())


def actor_classes_since(before: set[str], *, alive_only: bool = False) -> set[str]:
    """The class of every actor started since `before` (from `actor_ids`): the session's
    cluster also holds the actors of earlier tests' runs."""
    from ray._private import state

    return {
        a["ActorClassName"].rsplit(".", 1)[-1]
        for actor_id, a in state.actors().items()
        if actor_id not in before and (a["State"] == "ALIVE" or not alive_only)
    }


class RecordingSink:
    """Keeps what a user would have seen, for assertions."""

    def __init__(self) -> None:
        self.epochs: list[EpochReport] = []
        self.failures: list[WorkerFailure] = []

    def on_epoch(self, update: EpochUpdate, eta_seconds: float | None) -> None:
        self.epochs.append(update.report)

    def on_worker_failure(self, failure: WorkerFailure) -> None:
        self.failures.append(failure)


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_port_pair() -> int:
    """A port P with P+1 also free (two workers serve metrics on P + rank)."""
    import socket

    for _ in range(50):
        port = free_port()
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port pair")


def storage(tmp_path: Path) -> str:
    return str(tmp_path / "runs")
