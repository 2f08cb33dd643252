"""Writing a model where a user loads it without kubetrain: its state_dict (`model.pt`) and a
loadable form, TorchScript or Hugging Face's save_pretrained."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from kubetrain.api.artifacts import HUGGINGFACE_DIR, STATE_DICT_FILE, TORCHSCRIPT_FILE
from kubetrain.api.spec import ExportFormat

log = logging.getLogger(__name__)


def write_state_dict(directory: Path, model: nn.Module) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / STATE_DICT_FILE
    torch.save(model.state_dict(), path)
    return path


def write_loadable(
    directory: Path, model: nn.Module, form: ExportFormat, example: Any, tokenizer: str | None
) -> str | None:
    """Writes `model` in `form` under `directory`; returns the name written, or None where the
    model cannot take that form (it keeps its model.pt)."""
    if form is ExportFormat.HUGGINGFACE:
        inner = getattr(model, "model", None)
        if not hasattr(inner, "save_pretrained"):
            return None  # a quantized transformer: its int8 layers are not Hugging Face's
        target = directory / HUGGINGFACE_DIR
        inner.save_pretrained(target)  # type: ignore[union-attr]
        if tokenizer is not None:
            from transformers import AutoTokenizer

            AutoTokenizer.from_pretrained(tokenizer).save_pretrained(target)
        return HUGGINGFACE_DIR
    try:
        with warnings.catch_warnings(), torch.no_grad():
            # torch.jit warns that torch.export succeeds it; TorchScript is what loads anywhere.
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            traced = torch.jit.trace(model.eval(), example)  # type: ignore[no-untyped-call]
            torch.jit.save(traced, str(directory / TORCHSCRIPT_FILE))
    except Exception as exc:  # a custom model may not trace; its state_dict is still there
        log.warning("export: %s does not trace to TorchScript (%s)", type(model).__name__, exc)
        return None
    return TORCHSCRIPT_FILE
