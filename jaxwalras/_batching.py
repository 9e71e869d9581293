"""Running jitted kernels over large batches: bucketed shapes, padded chunks, pipelining.

Every batched entry point of the library goes through these helpers, so that compiled
code depends on a few bucketed shapes (one compilation per bucket) instead of one shape
per call, and so that host work on one chunk overlaps the device work on the next
(JAX dispatch is asynchronous).  The model is OTT-JAX's ``batched_vmap``; here the
chunking happens on the host because the chunks feed host-side exact steps.
"""
from __future__ import annotations

from typing import Any, Callable, Iterator

import jax
import numpy as np

__all__ = ["padded_size", "chunk_plan", "pad_index", "map_chunks"]


def padded_size(n: int, *, base: int = 2, floor: int = 1, cap: int | None = None) -> int:
    """The smallest ``floor * base**k >= n`` (``k >= 0``), at most ``max(cap, 1)``."""
    size = int(floor)
    while size < n:
        size *= base
    return size if cap is None else min(size, max(int(cap), 1))


def chunk_plan(n: int, size: int, *, base: int = 2, floor: int = 1,
               split_rest: bool = False) -> list[tuple[int, int, int]]:
    """Split ``range(n)`` into chunks ``(lo, hi, padded)`` for a kernel of batch ``size``.

    Full chunks have ``padded == size``; the rest is padded to the bucket
    :func:`padded_size` ``(rest, base, floor, cap=size)``.  With ``split_rest`` a rest that
    fits in two buckets of the next smaller size goes there instead (e.g. 100 rows with
    ``base=4``: two calls of 64 rather than one of 256), which pads less.
    """
    size = max(int(size), 1)
    out = [(lo, lo + size, size) for lo in range(0, n - n % size, size)]
    lo = len(out) * size
    rest = n - lo
    if rest:
        bucket = padded_size(rest, base=base, floor=floor, cap=size)
        smaller = bucket // base
        if split_rest and smaller >= floor and rest <= 2 * smaller and base > 2:
            if rest > smaller:
                out += [(lo, lo + smaller, smaller), (lo + smaller, n, smaller)]
            else:
                out.append((lo, n, smaller))
        else:
            out.append((lo, n, bucket))
    return out


def pad_index(rows: np.ndarray, size: int) -> np.ndarray:
    """``rows`` padded to length ``size`` by repeating its first entry (padding rows
    recompute a real market; their results are dropped)."""
    rows = np.asarray(rows)
    if rows.size >= size:
        return rows
    return np.concatenate([rows, np.full(size - rows.size, rows[0], rows.dtype)])


def map_chunks(fn: Callable[[np.ndarray], Any], n: int, size: int, *, base: int = 2,
               floor: int = 1, split_rest: bool = False, pipeline: bool = True
               ) -> Iterator[tuple[int, int, Any]]:
    """Call ``fn(idx)`` on padded chunks of ``range(n)`` and yield ``(lo, hi, out)``.

    ``idx`` is the chunk's row indices padded as in :func:`chunk_plan` (int32), so ``fn``
    sees a few distinct batch sizes only; ``out`` is ``fn``'s result moved to the host
    (numpy leaves) and sliced to the ``hi - lo`` real rows.  With ``pipeline`` the next
    chunk is dispatched before the current one is fetched, so the caller's host work on
    a chunk overlaps the device work on the next.
    """
    plan = chunk_plan(n, size, base=base, floor=floor, split_rest=split_rest)

    def launch(k: int) -> Any:
        lo, hi, padded = plan[k]
        return fn(pad_index(np.arange(lo, hi, dtype=np.int32), padded))

    pending = launch(0) if plan else None
    for k, (lo, hi, _) in enumerate(plan):
        nxt = launch(k + 1) if (pipeline and k + 1 < len(plan)) else None
        out = jax.tree_util.tree_map(lambda z: np.asarray(z)[:hi - lo],
                                     jax.device_get(pending))
        yield lo, hi, out
        pending = nxt if pipeline else (launch(k + 1) if k + 1 < len(plan) else None)
