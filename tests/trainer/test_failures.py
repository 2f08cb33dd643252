"""Which worker errors would recur on retry (and so end a run at once), and which may heal."""

from __future__ import annotations

import urllib.error

import pytest
import torch.distributed as dist
from ray.train import FailureConfig
from ray.train.v2._internal.exceptions import UserExceptionWithTraceback
from ray.train.v2._internal.execution.failure_handling import FailureDecision
from ray.train.v2.api.exceptions import WorkerGroupError

from kubetrain.runner._ray.lean_trainer import NoRetryOfRecurringErrors
from kubetrain.runner.recurring import recurring_cause
from kubetrain.trainer.entrypoints import EntrypointError
from kubetrain.trainer.failures import WillRecur, recurring_forward_error, recurring_setup_error
from kubetrain.trainer.models import ModelMismatch


@pytest.mark.parametrize(
    "exc",
    [
        ModelMismatch("spec.model.inputSize is 5 but each sample has 3 features"),
        EntrypointError("spec.model.entrypoint: cannot import module 'nope'"),
        FileNotFoundError("spec.dataset.path: '/data/x' does not exist"),
        ValueError("spec.dataset.path: rows.csv has a non-numeric feature"),
        ModuleNotFoundError("No module named 'torchvision'"),
    ],
)
def test_setup_mistakes_will_recur_with_their_message(exc: Exception) -> None:
    recurring = recurring_setup_error(exc)
    assert isinstance(recurring, WillRecur) and str(recurring) == str(exc)


@pytest.mark.parametrize(
    "exc",
    [urllib.error.URLError("name resolution failed"), ConnectionResetError(), MemoryError()],
)
def test_setup_errors_of_the_moment_may_heal(exc: Exception) -> None:
    assert recurring_setup_error(exc) is None


def test_a_shape_error_on_the_first_batch_will_recur_naming_the_field() -> None:
    exc = RuntimeError("mat1 and mat2 shapes cannot be multiplied (64x3 and 4x2)")
    recurring = recurring_forward_error(exc, "spec.model.entrypoint")
    assert recurring is not None
    assert str(recurring).startswith(
        "spec.model.entrypoint: the model failed on its first batch (RuntimeError: mat1 and mat2"
    )


@pytest.mark.parametrize(
    "exc",
    [
        dist.DistBackendError("peer lost"),
        RuntimeError("[../third_party/gloo/gloo/transport/tcp/pair.cc:534] Connection closed"),
        RuntimeError("NCCL error: unhandled system error"),
        KeyError("x"),
    ],
)
def test_collective_errors_on_the_first_batch_may_heal(exc: Exception) -> None:
    assert recurring_forward_error(exc, "spec.model") is None


def _failed(*causes: BaseException) -> WorkerGroupError:
    wrapped = {
        rank: UserExceptionWithTraceback(c, "Traceback ...") for rank, c in enumerate(causes)
    }
    return WorkerGroupError("worker errors", wrapped)  # type: ignore[arg-type]


def test_ray_train_raises_a_recurring_error_at_once_and_retries_the_rest() -> None:
    policy = NoRetryOfRecurringErrors(FailureConfig(max_failures=3))
    recurring = _failed(RuntimeError("peer lost"), WillRecur("spec.model.inputSize is 5"))
    assert policy.make_decision(recurring) is FailureDecision.RAISE
    assert str(recurring_cause(recurring)) == "spec.model.inputSize is 5"
    assert policy.make_decision(_failed(RuntimeError("peer lost"))) is FailureDecision.RETRY


def test_a_file_whose_checksum_does_not_match_is_not_retried() -> None:
    # Its mirror serves the same wrong file on every retry: the mirror must change.
    from kubetrain.trainer.data.downloads import ChecksumMismatch

    error = ChecksumMismatch("train-images-idx3-ubyte.gz: sha256 abc, expected def")
    assert recurring_setup_error(error) is not None
