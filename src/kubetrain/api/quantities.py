"""Kubernetes resource quantities (`500m`, `2Gi`, `1.5`, `10G`), as the spec and pods write them."""

from __future__ import annotations

from fractions import Fraction

_SUFFIXES: dict[str, Fraction] = {
    "m": Fraction(1, 1000),
    # Kubernetes spells a thousand `k`; the spec's memory pattern also takes `K`.
    "k": Fraction(10**3), "K": Fraction(10**3), "M": Fraction(10**6), "G": Fraction(10**9),
    "T": Fraction(10**12), "P": Fraction(10**15), "E": Fraction(10**18),
    "Ki": Fraction(2**10), "Mi": Fraction(2**20), "Gi": Fraction(2**30), "Ti": Fraction(2**40),
    "Pi": Fraction(2**50), "Ei": Fraction(2**60),
}  # fmt: skip
# The suffixes a whole number is spelled with, as Kubernetes spells them.
_WHOLE = ("Ei", "Pi", "Ti", "Gi", "Mi", "Ki", "E", "P", "T", "G", "M", "k")


def parse_quantity(quantity: str) -> Fraction:
    """A quantity as an exact number: `500m` → 1/2, `2Gi` → 2147483648."""
    for suffix in sorted(_SUFFIXES, key=len, reverse=True):
        if quantity.endswith(suffix):
            return Fraction(quantity[: -len(suffix)]) * _SUFFIXES[suffix]
    return Fraction(quantity)


def format_quantity(value: Fraction) -> str:
    """The shortest exact spelling: `6Gi`, `3`, `10G`, `2500m`."""
    if value.denominator != 1:
        return f"{value * 1000}m" if (value * 1000).denominator == 1 else str(float(value))
    whole = int(value)
    spellings = [str(whole)] + [
        f"{whole // unit}{suffix}"
        for suffix in _WHOLE
        if whole >= (unit := int(_SUFFIXES[suffix])) and whole % unit == 0
    ]
    return min(spellings, key=len)  # the first of the shortest: plain, then binary, then SI


def cpu_cores(quantity: str) -> float:
    """`2` or `500m` → 2.0 or 0.5."""
    return float(parse_quantity(quantity))


def memory_bytes(quantity: str) -> int:
    """`2Gi`, `512M` or `1048576` → bytes."""
    return int(parse_quantity(quantity))


def is_number(value: object) -> bool:
    """An int or a float, not a bool (NaN included: a diverged loss is still a loss)."""
    return isinstance(value, int | float) and not isinstance(value, bool)
