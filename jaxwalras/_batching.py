"""Running jitted kernels over large batches: bucketed shapes, padded chunks, devices,
pipelining.

Every batched entry point of the library goes through these helpers, so that compiled
code depends on a few bucketed shapes (one compilation per bucket) and never on the
exact batch size or market size, so that a chunk is split over all selected devices
(:mod:`jaxwalras.devices`), and so that host work on one chunk overlaps the device work
on the next (JAX dispatch is asynchronous). The model is OTT-JAX's ``batched_vmap``;
here the chunking happens on the host because the chunks feed host-side exact steps.

Bucket sets
-----------
* **Markets per device call** (:func:`chunk_plan` with ``base=4, floor=16``, the default of
  the library's entry points): ``16, 64, 256, ...`` up to the entry point's chunk cap
  (:func:`chunk_cap`), times the number of devices. A batch is cut into full chunks of
  the cap and a rest, padded to the next bucket (or split into two of the next smaller
  one when that pads less). Padding rows repeat a real market; their results are
  dropped.
* **Market dimensions** (buyers, objects, queries; :func:`dim_bucket`): ``0, 1, 2, 3, 4,
  6, 8, 12, 16, 24, 32, 48, ...``: powers of two and 1.5 times powers of two, so a
  dimension is padded by less than 50%. Each family pads with entries that change
  nothing (zero-demand buyers and zero-supply objects; buyers who value nothing).
"""
from __future__ import annotations

from typing import Any, Callable, Iterator

import jax
import numpy as np

from .devices import resolve_devices, use_devices

__all__ = ["padded_size", "chunk_plan", "pad_index", "map_chunks", "dim_bucket", "pad_to",
           "chunk_cap", "pad_floor", "batch_buckets", "spread", "as_slice", "BATCH_BASE",
           "BATCH_FLOOR", "CPU_CHUNK_BYTES", "CPU_PAD_BYTES"]

#: markets per device call grow by this factor from one bucket to the next ...
BATCH_BASE = 4
#: ... starting here (per device)
BATCH_FLOOR = 16

#: On CPUs, a chunk's inputs stay within about this many bytes for the families that bound
#: them (a few times a core's L2 cache; see :mod:`jaxwalras.convexified` and
#: :func:`jaxwalras.multiunit_chunks.chunk_limits`) ...
CPU_CHUNK_BYTES = 2 << 20
#: ... and the padding of a small batch (copies of a real market up to the smallest
#: bucket) within about this many bytes of values
CPU_PAD_BYTES = 1 << 19


def padded_size(n: int, *, base: int = 2, floor: int = 1, cap: int | None = None) -> int:
    """The smallest ``floor * base**k >= n`` (``k >= 0``), at most ``max(cap, 1)``."""
    size = int(floor)
    while size < n:
        size *= base
    return size if cap is None else min(size, max(int(cap), 1))


def dim_bucket(n: int) -> int:
    """Bucket of a market dimension: the smallest of ``0, 1, 2, 3, 4, 6, 8, 12, 16, 24,
    ...`` (powers of two and 1.5 times powers of two) that is ``>= n``."""
    n = int(n)
    if n <= 4:
        return max(n, 0)
    p = 1 << (n - 1).bit_length()          # next power of two
    return 3 * p // 4 if 3 * p // 4 >= n else p


def chunk_cap(limit: int, *, base: int = BATCH_BASE, floor: int = BATCH_FLOOR) -> int:
    """The largest bucket ``floor * base**k`` not above ``limit`` (at least ``floor``): the
    chunk cap of an entry point whose memory allows ``limit`` markets per call."""
    size = int(floor)
    while size * base <= limit:
        size *= base
    return size


def pad_floor(per_market: int, budget: int, *, floor: int = BATCH_FLOOR,
              base: int = BATCH_BASE) -> int:
    """The largest of ``floor, floor / base, ..., 1`` whose markets of ``per_market``
    bytes (or elements) fit in ``budget``: the smallest bucket of a batch of large
    markets, so that padding a few of them does not cost many times their work."""
    limit = max(1, budget // max(int(per_market), 1))
    size = int(floor)
    while size > 1 and size > limit:
        size //= base
    return size


def batch_buckets(cap: int, *, base: int = BATCH_BASE, floor: int = BATCH_FLOOR) -> list[int]:
    """All chunk sizes (per device) up to ``cap``: ``[floor, floor*base, ..., cap]``."""
    out = [int(floor)]
    while out[-1] * base <= cap:
        out.append(out[-1] * base)
    return out


def chunk_plan(n: int, size: int, *, base: int = 2, floor: int = 1,
               split_rest: bool = False, multiple: int = 1) -> list[tuple[int, int, int]]:
    """Split ``range(n)`` into chunks ``(lo, hi, padded)`` for a kernel of batch ``size``.

    Full chunks have ``padded == size``; the rest is padded to the bucket
    :func:`padded_size` ``(rest, base, floor, cap=size)``.  With ``split_rest`` a rest that
    fits in two buckets of the next smaller size goes there instead (e.g. 100 rows with
    ``base=4``: two calls of 64 rather than one of 256), which pads less.  With
    ``multiple = k`` (the device count) every size is ``k`` times that: each device gets
    a contiguous block of one bucketed size.
    """
    k = max(int(multiple), 1)
    if k > 1:
        per = chunk_plan(-(-n // k), size, base=base, floor=floor, split_rest=split_rest)
        return [(lo * k, min(hi * k, n), padded * k) for lo, hi, padded in per
                if lo * k < n]
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


def spread(rows: np.ndarray, size: int, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Lay the real ``rows`` out in a padded batch of ``size`` (a multiple of ``k``) split
    into ``k`` equal blocks, one per device: the rows are dealt out in contiguous runs, as
    evenly as possible, each block padded by repeating ``rows[0]``. Returns ``(idx,
    pos)``: the padded row indices and the positions of the real rows in it (in their
    order), so ``out[pos]`` are the results of ``rows``."""
    rows = np.asarray(rows)
    r = rows.size
    if k <= 1 or r == 0:
        return pad_index(rows, size), np.arange(r)
    block = size // k
    per = -(-r // k)
    starts = np.minimum(np.arange(k) * per, r)
    ends = np.minimum(starts + per, r)
    idx = np.full(size, rows[0], rows.dtype)
    pos = np.concatenate([j * block + np.arange(e - s) for j, (s, e) in
                          enumerate(zip(starts, ends))])
    idx[pos] = rows
    return idx, pos


def as_slice(idx: Any) -> slice | np.ndarray:
    """Indices ``idx`` as a slice when they are one contiguous ascending run (indexing
    with it then reads a view, not a copy, and writes through basic indexing); else
    ``idx`` as an array."""
    idx = np.asarray(idx)
    if idx.size and int(idx[-1]) - int(idx[0]) == idx.size - 1 and \
            (idx.size == 1 or bool((np.diff(idx) == 1).all())):
        return slice(int(idx[0]), int(idx[-1]) + 1)
    return idx


def pad_to(x: np.ndarray, shape: tuple[int, ...], value: Any = 0) -> np.ndarray:
    """``x`` padded at the end of every axis to ``shape`` with ``value`` (no copy when the
    shape is already right)."""
    x = np.asarray(x)
    if x.shape == tuple(shape):
        return x
    out = np.full(shape, value, dtype=x.dtype)
    out[tuple(slice(0, k) for k in x.shape)] = x
    return out


def map_chunks(fn: Callable[[np.ndarray], Any], n: int, size: int, *, base: int = 2,
               floor: int = 1, split_rest: bool = False, pipeline: bool = True,
               devices: Any = None) -> Iterator[tuple[int, int, Any]]:
    """Call ``fn(idx)`` on padded chunks of ``range(n)`` and yield ``(lo, hi, out)``.

    ``idx`` is the chunk's row indices padded as in :func:`chunk_plan` (int32; laid out
    over the devices by :func:`spread`), so ``fn`` sees a few distinct batch sizes only;
    ``out`` is ``fn``'s result moved to the host (numpy leaves) at the ``hi - lo`` real
    rows, in order.  With ``pipeline`` the next
    chunk is dispatched before the current one is fetched, so the caller's host work on
    a chunk overlaps the device work on the next.

    ``devices`` (see :func:`jaxwalras.resolve_devices`): every chunk size is a multiple
    of the device count, and ``fn`` runs inside :func:`jaxwalras.use_devices`, so it
    places its arrays with :func:`jaxwalras.devices.put_batch` (leading axis split over
    the devices) and the kernel runs on all of them.
    """
    devs = resolve_devices(devices)
    plan = chunk_plan(n, size, base=base, floor=floor, split_rest=split_rest,
                      multiple=len(devs))

    layouts = [spread(np.arange(lo, hi, dtype=np.int32), padded, len(devs))
               for lo, hi, padded in plan]

    def launch(k: int) -> Any:
        with use_devices(devs):
            return fn(layouts[k][0])

    pending = launch(0) if plan else None
    for k, (lo, hi, _) in enumerate(plan):
        nxt = launch(k + 1) if (pipeline and k + 1 < len(plan)) else None
        pos = layouts[k][1]
        out = jax.tree_util.tree_map(lambda z: np.asarray(z)[pos], jax.device_get(pending))
        yield lo, hi, out
        pending = nxt if pipeline else (launch(k + 1) if k + 1 < len(plan) else None)
