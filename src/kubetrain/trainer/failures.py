"""Errors a retry would meet again: the spec, the user's code or the data must change first.

A worker raises `WillRecur` for them; the runner's failure policy then ends the run at once
instead of restarting the workers from the last checkpoint (`distributed.maxFailures`), and the
job fails as invalid (exit 2 locally, reason InvalidSpec on a cluster) with the one-line cause.
"""

from __future__ import annotations

import torch.distributed as dist

from kubetrain.trainer.data.downloads import ChecksumMismatch
from kubetrain.trainer.entrypoints import EntrypointError
from kubetrain.trainer.models import ModelMismatch

# Raised while a worker sets up (data, model) by what the user wrote, not by the moment. A file
# whose checksum does not match comes back the same from its mirror on every retry.
_SETUP_ERRORS = (
    ModelMismatch,
    EntrypointError,
    FileNotFoundError,
    ModuleNotFoundError,
    ChecksumMismatch,
)
# What a model's forward pass or the loss raises for a shape, dtype or label mistake.
_FORWARD_ERRORS = (RuntimeError, ValueError, TypeError, IndexError)
# Words of errors from the collective layer (a peer lost), which a retry may well heal.
_TRANSIENT_WORDS = ("gloo", "nccl", "connection", "timed out", "timeout")


class WillRecur(RuntimeError):
    """An error that would happen again on retry; its message names the field and the fix."""


def recurring_setup_error(exc: Exception) -> WillRecur | None:
    """`exc`, raised while a worker loads its data or builds its model, as a WillRecur if a
    retry would meet it again: our own field-naming errors (`spec.…: …`) and the kinds above."""
    if isinstance(exc, WillRecur):
        return exc
    if isinstance(exc, _SETUP_ERRORS) or str(exc).startswith("spec."):
        return WillRecur(str(exc))
    return None


def recurring_forward_error(exc: Exception, field: str) -> WillRecur | None:
    """`exc`, raised by the model or the loss on a worker's first batch, as a WillRecur unless it
    came from the collective layer (a lost peer is worth a retry)."""
    if isinstance(exc, dist.DistError) or not isinstance(exc, _FORWARD_ERRORS):
        return None
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if any(word in text.lower() for word in _TRANSIENT_WORDS):
        return None
    return WillRecur(
        f"{field}: the model failed on its first batch ({type(exc).__name__}: {text}); every "
        "retry would fail the same way: make the model fit the data's shape and labels"
    )
