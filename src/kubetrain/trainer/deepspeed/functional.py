"""torch's own `nn.functional.linear`, for work done after a ZeRO-3 run in the same process.

ZeRO-3 replaces `torch.nn.functional.linear` process-wide with a Python autograd function of its
own, and leaves it so ("This will persist unless manually reset", DeepSpeed says). A model
traced to TorchScript after training would record that function and fail to export. This module
is imported with kubetrain's trainer, before any DeepSpeed engine exists, so it holds torch's.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch.nn.functional as F

_TORCH_LINEAR = F.linear


@contextlib.contextmanager
def torch_linear() -> Iterator[None]:
    """Within: `F.linear` is torch's own; after: whatever it was before."""
    current = F.linear
    F.linear = _TORCH_LINEAR
    try:
        yield
    finally:
        F.linear = current
