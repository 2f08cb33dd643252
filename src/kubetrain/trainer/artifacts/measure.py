"""What the report says of each model: size on disk, parameters, CPU latency, metrics."""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from kubetrain.trainer.evaluation import scores, tally

Batch = tuple[Any, torch.Tensor]
_NOT_WEIGHTS = ("scale", "zero_point")  # a quantized layer's own bookkeeping


def parameters(model: nn.Module) -> int:
    """Weights and biases of the float model (quantization changes their type, not count)."""
    return sum(p.numel() for p in model.parameters())


def nonzero(model: nn.Module) -> int:
    """Weights and biases that are not zero. A quantized model keeps its weights packed in its
    state_dict: they are counted there (an int8 zero is a zero)."""
    own = list(model.parameters())
    if own:
        return sum(int(torch.count_nonzero(p.detach())) for p in own)
    return sum(int(torch.count_nonzero(t)) for t in _weights(model.state_dict()))


def _weights(state: Mapping[str, Any]) -> Iterator[torch.Tensor]:
    for key, value in state.items():
        if key.endswith(_NOT_WEIGHTS):
            continue
        yield from _tensors(value)


def _tensors(value: Any) -> Iterator[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        if value.is_quantized:
            yield value.int_repr()
        elif value.is_floating_point() and value.numel() > 1:
            yield value
    elif isinstance(value, tuple | list):
        for item in value:
            yield from _tensors(item)


def file_bytes(path: Path) -> int:
    return path.stat().st_size


def evaluate(model: nn.Module, batches: Iterable[Batch], num_classes: int) -> dict[str, float]:
    """The job's validation loss and metrics for `model` on CPU, over all of `batches`."""
    model.eval()
    confusion, loss_sum = tally(model, batches, num_classes)
    return scores(confusion, loss_sum)


def latency_ms(model: nn.Module, batches: list[Any], rounds: int = 3) -> float:
    """Median milliseconds for one batch of inputs on one CPU thread (the same for every model,
    and steady on a busy machine), after `rounds` passes over `batches`, the first unmeasured."""
    model.eval()
    times = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.no_grad():
            for measured in (False, *([True] * rounds)):
                for inputs in batches:
                    started = time.perf_counter()
                    model(inputs)
                    if measured:
                        times.append((time.perf_counter() - started) * 1000.0)
    finally:
        torch.set_num_threads(threads)
    return statistics.median(times)
