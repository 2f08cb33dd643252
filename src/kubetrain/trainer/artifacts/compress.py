"""Post-training compression of a trained float model: int8 quantization and magnitude pruning.

Each function takes the float model and returns a new one; the original is left as it was. The
quantized models run on CPU (PyTorch's int8 kernels are CPU kernels).
"""

from __future__ import annotations

import contextlib
import copy
import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import prune

from kubetrain.api.spec import TrainingSpec
from kubetrain.trainer.optim import build_optimizer, penalty

Batch = tuple[Any, torch.Tensor]
# Conv and Linear weights are what magnitude pruning removes (biases and norms are few).
PRUNABLE = (nn.Linear, nn.Conv1d, nn.Conv2d)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """torch.ao.quantization warns on every call that it moves to torchao (not installed here)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*reduce_range will be deprecated.*")
        yield


def dynamic_int8(model: nn.Module) -> nn.Module:
    """Weights int8, activations quantized per batch on the fly: Linear and LSTM layers."""
    from torch.ao.quantization import quantize_dynamic

    with _quiet():
        quantized: nn.Module = quantize_dynamic(  # type: ignore[no-untyped-call]
            copy.deepcopy(model).cpu().eval(), {nn.Linear, nn.LSTM}, dtype=torch.qint8
        )
    return quantized


def static_int8(model: nn.Module, calibration: Iterable[Any]) -> nn.Module:
    """Weights and activations int8, with activation ranges observed on `calibration` inputs
    (FX graph mode: the model must trace, and every layer needs an int8 kernel)."""
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    batches = list(calibration)
    with _quiet(), torch.no_grad():
        prepared = prepare_fx(
            copy.deepcopy(model).cpu().eval(), get_default_qconfig_mapping("x86"), (batches[0],)
        )
        for inputs in batches:
            prepared(inputs)
        converted: nn.Module = convert_fx(prepared)
    return converted


def prunable_weights(model: nn.Module) -> list[tuple[nn.Module, str]]:
    return [(m, "weight") for m in model.modules() if isinstance(m, PRUNABLE)]


def magnitude_prune(model: nn.Module, sparsity: float) -> nn.Module:
    """A copy with the `sparsity` fraction of its Linear/Conv weights of smallest magnitude, over
    all those layers together, masked to zero. The masks stay attached (the pruned weights stay
    zero while fine-tuning) until `finalize`."""
    pruned = copy.deepcopy(model)
    prune.global_unstructured(
        prunable_weights(pruned), pruning_method=prune.L1Unstructured, amount=sparsity
    )
    return pruned


def finalize(model: nn.Module) -> nn.Module:
    """Makes the masks permanent: plain weights with zeros, as the original model has them."""
    for module, name in prunable_weights(model):
        if prune.is_pruned(module):
            prune.remove(module, name)  # type: ignore[no-untyped-call]
    return model


def fine_tune(
    model: nn.Module,
    epochs: int,
    batches: Callable[[int], Iterable[Batch]],
    training: TrainingSpec,
    to_device: Callable[[Any], Any],
    device: torch.device,
) -> list[float]:
    """`epochs` passes of plain training (`batches(epoch)` gives each), at the job's optimizer
    and constant learning rate and penalties; returns each epoch's mean training loss."""
    model.to(device).train()
    optimizer = build_optimizer(
        (p for p in model.parameters() if p.requires_grad), training.optimizer
    )
    losses = []
    for epoch in range(1, epochs + 1):
        total, count = 0.0, 0
        for inputs, labels in batches(epoch):
            logits = model(to_device(inputs))
            loss = F.cross_entropy(logits.float(), labels.to(device))
            extra = penalty(model, training.regularization)
            if extra is not None:
                loss = loss + extra
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            if training.gradient_clip_norm is not None:
                nn.utils.clip_grad_norm_(model.parameters(), training.gradient_clip_norm)
            optimizer.step()
            total, count = total + float(loss.detach()), count + 1
        losses.append(total / max(count, 1))
    model.eval()
    return losses
