"""Kubernetes resource quantities as the spec accepts them (`ResourcesSpec`'s patterns)."""

from __future__ import annotations

_MEMORY_UNITS = {
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40,
    "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
}  # fmt: skip


def cpu_cores(quantity: str) -> float:
    """`2` or `500m` → 2.0 or 0.5."""
    return float(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)


def memory_bytes(quantity: str) -> int:
    """`2Gi`, `512M` or `1048576` → bytes."""
    for suffix in sorted(_MEMORY_UNITS, key=len, reverse=True):
        if quantity.endswith(suffix):
            return int(float(quantity[: -len(suffix)]) * _MEMORY_UNITS[suffix])
    return int(float(quantity))


def is_number(value: object) -> bool:
    """An int or a float, not a bool (NaN included: a diverged loss is still a loss)."""
    return isinstance(value, int | float) and not isinstance(value, bool)
