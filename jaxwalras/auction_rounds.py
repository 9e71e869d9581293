"""Device side of the ascending auction's rounds, batched over markets.

The round kernel (:func:`advance`) raises every running market's overdemanded set by its
step, applies the singleton jumps and computes the greedy bundles and the arc structure of
the next network N(p), for a padded chunk of markets gathered on the device; the host then
solves one union max flow (:mod:`jaxwalras.flows`).  :func:`device_auction` runs the whole
auction on the device with cuts by subset enumeration (:mod:`jaxwalras.kernels.cuts`).
Chunks are padded to powers of 4 (:mod:`jaxwalras._batching`), so few shapes compile.

Reference: K. Eickhoff, S. T. McCormick, B. Peis, N. Rieken and L. Vargas Koch, "A flow-based
ascending auction to compute buyer-optimal Walrasian prices", Networks 84(2), 2024.
"""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from jaxwalras._batching import chunk_plan, pad_index, padded_size
from jaxwalras.kernels import cuts as _cuts
from jaxwalras.kernels import greedy as _greedy
from jaxwalras.multiunit import MAX_VALUE
from jaxwalras.multiunit import _bundles_flat as _bundles

__all__ = ["advance", "device_auction", "launch_advance", "collect_advance",
           "gather_bundles", "padded_args", "long_steps", "to_host", "DEVICE_MAX_OBJECTS"]


def _batched_long_step(v, d, s, p, X):
    cap = jnp.asarray(2 * MAX_VALUE, p.dtype)
    return jax.vmap(_greedy.long_step, in_axes=(0, 0, 0, 0, 0, None))(v, d, s, p, X, cap)


def _batched_jumps(v, d, s, p):
    return jax.vmap(_greedy.singleton_jumps)(v, d, s, p)


def _network_arcs(b, s):
    """Arc structure of the networks N(p) for :func:`jaxwalras.flows.network_from_arcs`:
    buyer-node -> object arcs ``(B, 2n, m)``, their ranks among the arcs into the same
    object, and the source arc capacities ``(B, 2n)``."""
    n = b.r.shape[1]
    s_pos = (s > 0)[:, None, :]
    bm = jnp.concatenate([b.strict & s_pos, b.marginal & s_pos & (b.r > 0)[:, :, None]],
                         axis=1)
    rank_t = jnp.int8 if 2 * n <= 127 else jnp.int32
    col_rank = (jnp.cumsum(bm, axis=1, dtype=jnp.int32) - 1).astype(rank_t)
    sF = jnp.sum(jnp.where(b.strict, s[:, None, :], 0), axis=2)
    return bm, col_rank, jnp.concatenate([sF, b.r], axis=1)


@partial(jax.jit, static_argnames=("step", "jumps"))
def advance(v, d, s, idx, p, X, step: str, jumps: bool):
    """Round kernel for the markets ``idx`` (rows of the full ``v, d, s``, gathered on the
    device): raise every market's set X by its step (then, with ``jumps``, the singleton
    jumps). Returns new prices, steps, the bundle arrays the host keeps
    ``(strict, marginal, r, case_a)`` and the arc structure of N(p_new)."""
    v, d, s = v[idx], d[idx], s[idx]
    if step == "unit":
        k = jnp.ones(p.shape[0], p.dtype)
    else:
        k = _batched_long_step(v, d, s, p, X)
    k = jnp.where(jnp.any(X, axis=1), k, 0)
    p_new = p + k[:, None] * X.astype(p.dtype)
    if jumps:
        p_new = _batched_jumps(v, d, s, p_new)
    b = _bundles(v, d, s, p_new)
    return p_new, k, (b.strict, b.marginal, b.r, b.case_a), _network_arcs(b, s)


long_steps = jax.jit(_batched_long_step)


#: Markets per device call of the host-flow auction (chunks bound memory and the number
#: of compiled shapes: 16, 64 and 256 on CPU).
CPU_CHUNK = 256


ACCEL_CHUNK = 4096


#: ``backend="auto"`` uses the all-device auction (subset-enumeration cuts) on
#: accelerators up to this many objects, and host max flows otherwise.
DEVICE_MAX_OBJECTS = 12


@partial(jax.jit, static_argnames=("step", "jumps"))
def device_auction(v, d, s, p0, step: str, max_rounds, jumps: bool = False):
    """The whole ascending auction on the device for a batch (left-most cuts by subset
    enumeration, :mod:`jaxwalras.kernels.cuts`). Returns prices, raises, still-running.
    ``max_rounds`` is traced (one compilation for every budget)."""
    m = v.shape[-1]
    table = _cuts.subset_table(m)
    cuts = jax.vmap(_cuts.leftmost_cut, in_axes=(0, 0, 0, 0, None))

    def cond(state):
        _, _, running, rounds = state
        return jnp.any(running) & (rounds < max_rounds)

    def body(state):
        p, raises, running, rounds = state
        b = _bundles(v, d, s, p)
        X, over = cuts(b.strict, b.marginal, b.r, s, table)
        running = running & over
        k = jnp.ones_like(raises) if step == "unit" else _batched_long_step(v, d, s, p, X)
        p = p + jnp.where(running, k, 0)[:, None] * X.astype(p.dtype)
        if jumps:
            p = jnp.where(running[:, None], _batched_jumps(v, d, s, p), p)
        return p, raises + running.astype(raises.dtype), running, rounds + 1

    B = v.shape[0]
    if jumps:
        p0 = _batched_jumps(v, d, s, p0)
    init = (p0, jnp.zeros(B, jnp.int32), jnp.ones(B, bool), jnp.asarray(0, jnp.int32))
    p, raises, running, rounds = jax.lax.while_loop(cond, body, init)
    # a market still marked running after the last round may in fact be competitive
    b = _bundles(v, d, s, p)
    _, over = cuts(b.strict, b.marginal, b.r, s, table)
    return p, raises, running & over, rounds, b


def _bucket(count: int) -> int:
    """Padded batch size for ``count`` active markets: powers of 4 from 16, so the number of
    distinct kernel shapes (compilations) stays at most ~log4(chunk)."""
    return padded_size(count, base=4, floor=16)


def to_host(b) -> tuple[np.ndarray, ...]:
    strict, marginal, r, mu, util, case_a = jax.device_get(tuple(b))
    return (np.array(strict), np.array(marginal), np.array(r, np.int64), np.array(case_a))


def _pad_rows(rows: np.ndarray) -> np.ndarray:
    return pad_index(rows, _bucket(len(rows)))


def padded_args(v, d, s, prices, rows, X):
    """Kernel arguments for the markets ``rows``, padded to a bucketed batch size."""
    idx = _pad_rows(rows)
    Xp = np.zeros((len(idx), X.shape[1]), bool)
    Xp[:len(rows)] = X
    jidx = jnp.asarray(idx)
    return v[jidx], d[jidx], s[jidx], jnp.asarray(prices[idx], jnp.int32), jnp.asarray(Xp)


def _chunk_size() -> int:
    """Markets per device call: small chunks on CPU (few compiled shapes, cache-sized
    arrays), large ones on accelerators."""
    return CPU_CHUNK if jax.default_backend() == "cpu" else ACCEL_CHUNK


def launch_advance(v, d, s, prices, rows, X, step, jumps=False) -> list:
    """Dispatch the round kernel for the markets ``rows`` (asynchronously), in chunks
    padded to bucketed sizes; :func:`collect_advance` fetches the results."""
    m = prices.shape[1]
    out = []
    for lo, hi, size in chunk_plan(len(rows), _chunk_size(), base=4, floor=16,
                                   split_rest=True):
        idx = pad_index(rows[lo:hi], size)
        Xp = np.zeros((size, m), bool)
        Xp[:hi - lo] = X[lo:hi]
        res = advance(v, d, s, idx.astype(np.int32), prices[idx].astype(np.int32), Xp,
                       step, jumps)
        out.append((hi - lo, res))
    return out


def collect_advance(launched: list):
    """Host copies of :func:`launch_advance`'s results: new prices, steps, bundles
    ``(strict, marginal, r, case_a)`` and the arc structure, concatenated over the chunks."""
    ps, ks, bs, arcs = [], [], [], []
    for nr, res in launched:
        p_new, k, b, net = jax.device_get(res)
        ps.append(np.asarray(p_new[:nr], np.int64))
        ks.append(np.asarray(k[:nr], np.int64))
        bs.append((b[0][:nr], b[1][:nr], np.asarray(b[2][:nr], np.int64), b[3][:nr]))
        arcs.append(tuple(x[:nr] for x in net))
    # (concatenate also copies: the host arrays are written to later)
    cat = lambda parts: tuple(np.concatenate(c) for c in zip(*parts))  # noqa: E731
    return np.concatenate(ps), np.concatenate(ks), cat(bs), cat(arcs)


def gather_bundles(v, d, s, prices, rows):
    idx = _pad_rows(rows)
    jidx = jnp.asarray(idx)
    b = _bundles(v[jidx], d[jidx], s[jidx], jnp.asarray(prices[idx], jnp.int32))
    return tuple(h[:len(rows)] for h in to_host(b))
