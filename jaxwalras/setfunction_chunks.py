"""Set-function markets gathered into padded chunks for the device kernels.

Each market's table is divided by the market's own scale on the host
(:func:`jaxwalras.setfunction.value_scale`), and every kernel call gathers its markets into
a chunk of a bucketed size (:func:`jaxwalras._batching.chunk_plan`: 16, 64, 256, ...
markets per device, up to a cap set by the kernel's memory per market), laid out over
the devices (:func:`jaxwalras._batching.spread`), with the buyers padded to their bucket
(:func:`jaxwalras._batching.dim_bucket`) by buyers who value nothing. Such a buyer
demands the empty set at any prices, never buys in the bundling dynamics, adds exact
zeros to the Lyapunov function (summed in a fixed order,
:func:`jaxwalras.kernels.setfunc.ordered_sum`) and is skipped by the welfare DP, so the
real rows of every kernel output equal those of the unpadded market.

The items are not padded: a table holds ``2**m`` sets, so one more item would double
the table (and triple the DP's ``3**m`` work). The item count is its own bucket: a sweep
over ``m`` compiles once per ``m``; the numbers of bundle slots ``K`` likewise.
"""
from __future__ import annotations

from typing import Any, Callable

import jax.numpy as jnp
import numpy as np

from ._batching import BATCH_BASE, BATCH_FLOOR, chunk_cap, dim_bucket, map_chunks, pad_floor
from .devices import put_batch, resolve_devices

__all__ = ["Tables", "DEFAULT_BUDGET", "cap_for"]

#: elements of the largest intermediate array one device call may form (per device)
DEFAULT_BUDGET = 2 ** 24


def cap_for(per_market: int, budget: int = DEFAULT_BUDGET) -> tuple[int, int]:
    """``(cap, floor)``: the chunk cap (a bucket) for a kernel that forms ``per_market``
    elements per market, and the smallest bucket (16, or 4 or 1 for huge markets)."""
    limit = max(1, budget // max(int(per_market), 1))
    floor = pad_floor(per_market, budget)
    return chunk_cap(limit, floor=floor), floor


class Tables:
    """A flat batch of value tables ``(B, n, 2**m)`` divided by each market's scale, kept
    on the host in float64 and gathered into padded chunks in the device float dtype."""

    def __init__(self, values: np.ndarray, devices: Any = None, dtype: Any = None):
        vals = np.asarray(values, np.float64)
        self.B, self.n, self.t = vals.shape
        self.m = self.t.bit_length() - 1
        sc = np.abs(vals).max(axis=(-2, -1)) if vals.size else np.zeros(self.B)
        self.scale = np.where(sc > 0, sc, 1.0)
        self.norm = vals / self.scale[:, None, None]
        self.nb = dim_bucket(self.n)
        self.devices = resolve_devices(devices)
        self.dtype = jnp.result_type(float) if dtype is None else dtype

    @property
    def live(self) -> np.ndarray:
        """``(nb,)`` bool: the real buyers."""
        return np.arange(self.nb) < self.n

    def take(self, idx: np.ndarray, norm: np.ndarray | None = None) -> np.ndarray:
        """Rows ``idx`` of the normalised tables (or of ``norm``), buyers padded with
        zero rows, in the device dtype."""
        src = self.norm if norm is None else norm
        out = np.zeros((len(idx), self.nb, self.t), self.dtype)
        out[:, :self.n] = src[idx]
        return out

    def pad_buyers(self, x: np.ndarray, value: Any = 0) -> np.ndarray:
        """``x`` ``(k, n, ...)`` padded on the buyer axis to ``nb``."""
        out = np.full((x.shape[0], self.nb) + x.shape[2:], value, x.dtype)
        out[:, :self.n] = x
        return out

    def put(self, *arrays):
        return tuple(put_batch(a, self.devices) for a in arrays)

    def run(self, fn: Callable[[np.ndarray], Any], count: int, per_market: int,
            cap: int | None = None) -> list:
        """``fn(idx)`` on padded chunks of ``range(count)`` (chunk cap from the kernel's
        ``per_market`` elements, or ``cap``); returns the host results at the real rows,
        one per chunk, in order (pipelined: the next chunk is dispatched first)."""
        c, floor = cap_for(per_market)
        if cap is not None:
            c = min(c, chunk_cap(cap, floor=floor))
        return [out for _, _, out in map_chunks(fn, count, c, base=BATCH_BASE, floor=floor,
                                                split_rest=True, devices=self.devices)]
