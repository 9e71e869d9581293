"""Padded batch sizes: jitted kernels are called on a few bucketed shapes (one compile per
bucket) instead of one shape per call."""
from __future__ import annotations


def padded_size(n: int, *, base: int = 2, floor: int = 1, cap: int | None = None) -> int:
    """The smallest ``floor * base**k >= n`` (``k >= 0``), at most ``max(cap, 1)``."""
    size = int(floor)
    while size < n:
        size *= base
    return size if cap is None else min(size, max(int(cap), 1))
