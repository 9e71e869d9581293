"""Multi-unit markets gathered into padded chunks for the device kernels.

The flat batch stays on the host (int32 numpy); every kernel call gathers its rows into a
chunk of a bucketed size (:func:`jaxwalras._batching.chunk_plan`: 16, 64 or 256 markets
per device on CPU, down to 4 or 1 there for large markets (:func:`chunk_limits`), up to
4096 on accelerators, laid out over the devices by
:func:`jaxwalras._batching.spread`) and pads buyers and objects to their buckets
(:func:`jaxwalras._batching.dim_bucket`) with zero-demand buyers and zero-supply objects
of value 0. Such buyers and objects take and force no units and get no arc, and a
padding object is never raised (its price stays 0), so the real rows and columns of
every kernel output equal those of the unpadded market; callers slice them out, and
compiled kernels depend on the buckets only.
"""
from __future__ import annotations

from typing import Any

import jax
import numpy as np

from jaxwalras._batching import (BATCH_BASE, BATCH_FLOOR, CPU_CHUNK_BYTES, CPU_PAD_BYTES,
                                 chunk_plan, dim_bucket, pad_floor, spread)
from jaxwalras.devices import put_batch, resolve_devices
from jaxwalras.kernels import greedy as _greedy
from jaxwalras.setfunction_chunks import cap_for

__all__ = ["Padded", "chunked", "gather_bundles", "bundles_flat", "chunk_size",
           "chunk_limits", "CPU_CHUNK", "ACCEL_CHUNK"]

#: Markets per device call, per device, on CPU (chunks bound memory and the number of
#: compiled shapes: 16, 64 and 256) ...
CPU_CHUNK = 256
#: ... and on accelerators (16, 64, ..., 4096)
ACCEL_CHUNK = 4096


@jax.jit
def bundles_flat(v, d, s, p):
    """The greedy bundles of a flat batch of markets (one jitted, vmapped kernel)."""
    return jax.vmap(_greedy.preferred_bundles)(v, d, s, p)


def chunk_size(devices: tuple) -> int:
    """Markets per device call, per device: small chunks on CPU (few compiled shapes,
    cache-sized arrays), large ones on accelerators."""
    return CPU_CHUNK if devices[0].platform == "cpu" else ACCEL_CHUNK


def chunk_limits(nb: int, mb: int, devices: tuple) -> tuple[int, int]:
    """``(cap, floor)``: the largest and the smallest chunk (markets per device call, per
    device) for markets padded to ``nb`` buyers and ``mb`` objects.

    On CPUs both shrink for large markets: the smallest chunk keeps the padding within
    ``jaxwalras._batching.CPU_PAD_BYTES`` of values (4 above 32 KiB per market, e.g. 500
    buyers x 50 objects; 1 above 128 KiB, e.g. 1,000 x 50), and above 128 KiB the
    largest keeps a chunk within ``CPU_CHUNK_BYTES`` (4, or 1 above 512 KiB, e.g.
    2,000 x 100; :func:`jaxwalras.setfunction_chunks.cap_for`).  Two markets of
    1,000 x 50 padded to a chunk of 16 would cost the device eight times their work.
    Elsewhere ``(chunk_size(devices), 16)``."""
    cap = chunk_size(devices)
    if devices[0].platform != "cpu":
        return cap, BATCH_FLOOR
    per = 4 * nb * mb
    floor = pad_floor(per, CPU_PAD_BYTES)
    small_cap, small = cap_for(per, CPU_CHUNK_BYTES)
    if small < BATCH_FLOOR:
        cap = small_cap
    return max(cap, floor), floor


#: :class:`Padded` keeps the whole batch padded (for :meth:`Padded.take`, which then
#: gathers whole rows) when that copy takes at most this many bytes
PADDED_COPY_BYTES = 1 << 26


class Padded:
    """The flat batch of markets on the host (int32 numpy), gathered into padded chunks
    for the kernels: ``n``, ``m`` the market's sizes, ``nb``, ``mb`` their buckets."""

    def __init__(self, v: np.ndarray, d: np.ndarray, s: np.ndarray, devices: Any = None):
        self.v = np.ascontiguousarray(v, np.int32)
        self.d = np.ascontiguousarray(d, np.int32)
        self.s = np.ascontiguousarray(s, np.int32)
        self.B, self.n, self.m = self.v.shape
        self.nb, self.mb = dim_bucket(self.n), dim_bucket(self.m)
        self.devices = resolve_devices(devices)
        self.cap, self.floor = chunk_limits(self.nb, self.mb, self.devices)
        self._padded: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        if 4 * self.B * (self.nb + 1) * (self.mb + 1) <= PADDED_COPY_BYTES:
            self._padded = self._pad(np.arange(self.B))

    def take(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Rows ``idx`` with buyers and objects padded to their buckets."""
        if self._padded is not None:
            v, d, s = self._padded
            return v[idx], d[idx], s[idx]
        return self._pad(idx)

    def _pad(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        k = len(idx)
        v = np.zeros((k, self.nb, self.mb), np.int32)
        d = np.zeros((k, self.nb), np.int32)
        s = np.zeros((k, self.mb), np.int32)
        v[:, :self.n, :self.m] = self.v[idx]
        d[:, :self.n] = self.d[idx]
        s[:, :self.m] = self.s[idx]
        return v, d, s

    def cols(self, x: np.ndarray, idx: np.ndarray, dtype=np.int32) -> np.ndarray:
        """Per-object rows ``x[idx]`` ``(k, m)`` padded to ``(k, mb)`` with zeros."""
        out = np.zeros((len(idx), self.mb), dtype)
        out[:, :self.m] = x[idx]
        return out

    def layouts(self, count: int) -> list[tuple[int, int, int]]:
        """Chunks ``(lo, hi, padded)`` for ``count`` rows (multiples of the device
        count)."""
        return chunk_plan(count, self.cap, base=BATCH_BASE, floor=self.floor,
                          split_rest=True, multiple=len(self.devices))

    def put(self, *arrays):
        """The arrays on the devices (:func:`jaxwalras.devices.put_batch`); on one device
        in one batched transfer."""
        if len(self.devices) == 1:
            return tuple(jax.device_put(arrays, self.devices[0]))
        return tuple(put_batch(a, self.devices) for a in arrays)


def chunked(M: Padded, rows: np.ndarray, call) -> list:
    """``call(v, d, s, idx)`` on padded chunks of ``rows``; results at the real rows."""
    outs = []
    for lo, hi, size in M.layouts(len(rows)):
        idx, pos = spread(rows[lo:hi], size, len(M.devices))
        outs.append((pos, call(*M.take(idx), idx)))
    return [jax.tree_util.tree_map(lambda z: np.asarray(z)[pos], jax.device_get(r))
            for pos, r in outs]


def gather_bundles(M: Padded, prices: np.ndarray, rows: np.ndarray):
    """Greedy bundles ``(strict, marginal, r, case_a)`` of the markets ``rows`` at their
    prices (host copies, unpadded)."""
    if len(rows) == 0:
        z = np.zeros((0, M.n, M.m), bool)
        return z, z, np.zeros((0, M.n), np.int64), np.zeros((0, M.n), bool)
    parts = chunked(M, rows, lambda v, d, s, idx: bundles_flat(
        *M.put(v, d, s, M.cols(prices, idx))))
    n, m = M.n, M.m
    return (np.concatenate([b.strict[:, :n, :m] for b in parts]),
            np.concatenate([b.marginal[:, :n, :m] for b in parts]),
            np.concatenate([np.asarray(b.r[:, :n], np.int64) for b in parts]),
            np.concatenate([b.case_a[:, :n] for b in parts]))


