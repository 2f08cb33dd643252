"""Preflight's local GPU check: a local run that asks for GPUs the machine lacks fails at once."""

from __future__ import annotations

import pytest

from kubetrain.api.spec import TrainingJobSpec
from kubetrain.runner.preflight import PreflightError, check_local_gpus
from tests.conftest import make_job


def _spec(workers: int, gpu: int) -> TrainingJobSpec:
    return make_job(distributed={"workers": workers, "resourcesPerWorker": {"gpu": gpu}}).spec


def test_enough_gpus_pass() -> None:
    check_local_gpus(_spec(2, 1), gpus_here=2.0)
    check_local_gpus(_spec(2, 0), gpus_here=0.0)


def test_too_few_gpus_name_the_count_and_the_fix() -> None:
    with pytest.raises(PreflightError) as err:
        check_local_gpus(_spec(2, 2), gpus_here=3.0)
    assert str(err.value).startswith(
        "spec.distributed.resourcesPerWorker.gpu: 2 worker(s) x 2 GPU need 4 GPU(s), "
        "this machine has 3 (as Ray sees it)"
    )
