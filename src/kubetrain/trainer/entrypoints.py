"""Import user code named as `module:function`."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


class EntrypointError(ValueError):
    pass


def import_entrypoint(ref: str, *, field: str) -> Callable[..., Any]:
    module_name, _, attr = ref.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise EntrypointError(
            f"{field}: cannot import module {module_name!r} ({exc}); is it installed or on "
            "PYTHONPATH?"
        ) from exc
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise EntrypointError(f"{field}: {module_name!r} has no callable named {attr!r}")
    return fn  # type: ignore[no-any-return]
