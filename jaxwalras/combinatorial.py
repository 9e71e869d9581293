"""Solvers for combinatorial markets: demand queries, the optimal allocation and gross
substitutes.

* :func:`item_demand`, :func:`bundle_demand` -- batched device demand queries.
* :func:`optimal_allocation` -- exact welfare maximisation (subset DP on the device).
* :func:`is_gross_substitutes` -- brute-force test of the exchange property.

Item-price equilibria (Walrasian equilibrium, the ascending auction, the best item-price
welfare) are in :mod:`jaxwalras.item_prices`; combinatorial Walrasian equilibria
(bundling) in :mod:`jaxwalras.bundling`.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .typing import ArrayLike, DevicesLike
from . import _validation as _v
from . import setfunction_chunks as _chunks
from .kernels import setfunc as _k
from .setfunction import (MAX_ITEMS, SetFunctionMarket, allocation_welfare, as_market,
                          buyer_scale, check_rtol, set_bits, value_scale)
from .status import Status

__all__ = ["DemandResult", "OptimalAllocationResult", "item_demand", "bundle_demand",
           "optimal_allocation", "is_gross_substitutes"]


# ============================================================================ demand queries
class DemandResult(NamedTuple):
    """Answer of a demand query (a kernel call, not a solver: no status fields).

    Attributes
    ----------
    demand : ndarray of int32, shape (..., n)
        Bitmask of a utility-maximising set (item prices) or slot mask of a utility-maximising
        set of bundles (bundle prices).
    utility : ndarray of float64, shape (..., n)
        Its utility, recomputed on the host in float64 from the original values.
    """
    demand: np.ndarray
    utility: np.ndarray


_item_demand_jit = jax.jit(_k.item_demand)


_bundle_demand_jit = jax.jit(_k.bundle_demand)


def _host_scales(market: SetFunctionMarket) -> np.ndarray:
    """Each market's value scale (:func:`value_scale`; 1 for an all-zero market), batch
    shape, float64: the scale :mod:`jaxwalras.setfunction_chunks` divides by."""
    sc = value_scale(np.asarray(market.values, np.float64))
    return np.where(sc > 0, sc, 1.0)


def _chunked_demand(kernel: Any, market: SetFunctionMarket, shape: tuple[int, ...],
                    rows: list[np.ndarray]) -> np.ndarray:
    """``kernel(values, *rows)`` over the broadcast batch ``shape`` in padded chunks
    (:mod:`jaxwalras.setfunction_chunks`: batch buckets 16, 64, 256, ...; buyers padded
    to their bucket with buyers who value nothing, whose answers are dropped). ``rows``
    are per-query arrays ``shape + (k,)`` (broadcast here). Returns the demands
    ``shape + (n,)`` (int32)."""
    n, t = market.n_buyers, 2 ** market.n_items
    T = _chunks.Tables(np.asarray(market.values, np.float64).reshape(-1, n, t))
    which = np.broadcast_to(np.arange(T.B).reshape(market.batch_shape), shape).reshape(-1)
    flat = [np.broadcast_to(r, shape + r.shape[-1:]).reshape(-1, r.shape[-1]) for r in rows]
    if which.size == 0:
        return np.zeros(shape + (n,), np.int32)

    def call(idx: np.ndarray) -> Any:
        return kernel(*T.put(T.take(which[idx]), *(r[idx] for r in flat)))

    outs = T.run(call, int(which.size), per_market=T.nb * t)
    d = np.concatenate([np.asarray(o[0])[:, :n] for o in outs]).astype(np.int32)
    return d.reshape(shape + (n,))


def _scaled_prices(prices: np.ndarray, scale: np.ndarray, n_lead: int) -> np.ndarray:
    """Prices divided by their market's scale and capped at 2: a set that holds an item (or
    a bundle) priced above 2 has utility below ``1 - 2 < 0 = v(empty)`` on values scaled
    into ``[0, 1]``, so it is never demanded either way; the cap keeps huge prices finite
    in float32 without changing any decision."""
    sc = scale.reshape(scale.shape + (1,) * n_lead)
    return np.minimum(prices / sc, 2.0)


def item_demand(market: SetFunctionMarket, prices: ArrayLike) -> DemandResult:
    """Batched demand query at item prices (device kernel).

    The kernel runs on each market's values and prices divided by the market's largest
    ``|value|``, so the money unit changes no choice; utilities are recomputed on the host
    in float64.  Ties (to the device float dtype's resolution of the market's scale) go to
    the smallest bitmask.

    Parameters
    ----------
    market : SetFunctionMarket
    prices : array_like, shape (..., m)
        Non-negative finite item prices.  Broadcasts against the market's batch shape
        (numpy rules), so ``item_demand(cm[:, None], P)`` with ``P (B, Q, m)`` answers ``Q``
        price vectors for each of ``B`` markets at once.

    Returns
    -------
    DemandResult
        Per buyer, a set maximising ``v_i(S) - sum_{j in S} p_j`` (ties towards the smallest
        bitmask) and that utility.

    Raises
    ------
    TypeError, ValueError
        Not a market; prices negative, non-finite, non-numeric or of the wrong shape.

    Notes
    -----
    Compiled code depends on bucketed shapes only (queries in chunks of 16, 64, 256, ...;
    buyers padded to 0, 1, 2, 3, 4, 6, 8, 12, ... with buyers who value nothing, whose
    answers are dropped): a new batch size compiles nothing (see :func:`jaxwalras.warmup`).
    Examples
    --------
    >>> import jaxwalras as jw
    >>> d = jw.item_demand(jw.examples.shoes(), [4.0, 4.0])
    >>> d.demand.tolist(), d.utility.tolist()
    ([3, 1], [2.0, 2.0])
    """
    market = as_market(market)
    p = _v.as_float_array(prices, "prices", min_ndim=1, nonnegative=True, allow_bool=False)
    _v.check_trailing_shape(p, "prices", (market.n_items,), ("m",))
    shape = _v.broadcast_batch({"market": market.batch_shape, "prices": p.shape[:-1]})
    sc = _host_scales(market)
    pn = _scaled_prices(p, sc, 1)
    ft = np.dtype(jnp.result_type(float))
    d = _chunked_demand(_item_demand_jit, market, shape, [pn.astype(ft)])
    dd = np.asarray(d, np.int64)
    m = market.n_items
    vals = np.broadcast_to(market.values, shape + market.values.shape[-2:])
    cost = set_bits(m)[dd] @ np.broadcast_to(p, shape + (m,))[..., None]
    util = np.take_along_axis(vals, dd[..., None], axis=-1)[..., 0] - cost[..., 0]
    return DemandResult(d, util)


def bundle_demand(market: SetFunctionMarket, bundles: ArrayLike, prices: ArrayLike) -> DemandResult:
    """Batched demand query at bundle prices (device kernel).

    Parameters
    ----------
    market : SetFunctionMarket
    bundles : array_like of int, shape (..., K)
        Disjoint item bitmasks (0 = empty slot, never chosen), ``K <= 16``.
    prices : array_like, shape (..., K)
        One non-negative finite price per bundle.

    Returns
    -------
    DemandResult
        Per buyer, a K-bit mask over slots of a utility-maximising *set of bundles* and its
        utility ``v_i(union) - sum of its prices`` (float64, host).  As in
        :func:`item_demand` the kernel sees values and prices divided by the market's
        scale.

    Raises
    ------
    TypeError, ValueError
        Not a market; bundles that are not disjoint bitmasks of the market's items;
        prices negative, non-finite or of the wrong shape.

    Notes
    -----
    Compiled code depends on bucketed shapes only (queries in chunks of 16, 64, 256, ...;
    buyers padded to 0, 1, 2, 3, 4, 6, 8, 12, ... with buyers who value nothing, whose
    answers are dropped): a new batch size compiles nothing (see :func:`jaxwalras.warmup`).
    Examples
    --------
    >>> import jaxwalras as jw
    >>> d = jw.bundle_demand(jw.examples.shoes(), [3, 0], [10.0, 0.0])
    >>> d.demand.tolist(), d.utility.tolist()
    ([0, 0], [0.0, 0.0])
    """
    market = as_market(market)
    b = _v.as_int_array(bundles, "bundles", min_ndim=1)
    p = _v.as_float_array(prices, "prices", min_ndim=1, nonnegative=True, allow_bool=False)
    if b.shape[-1] != p.shape[-1]:
        raise ValueError(f"bundles and prices need the same number of slots, got "
                         f"{b.shape[-1]} and {p.shape[-1]}")
    if b.shape[-1] > MAX_ITEMS:
        raise ValueError(f"bundles: at most {MAX_ITEMS} slots, got {b.shape[-1]}")
    if b.size and b.max() >= 2 ** market.n_items:
        raise ValueError(f"bundles: bitmasks must be < 2**m = {2 ** market.n_items}")
    if np.any(b.sum(axis=-1) != np.bitwise_or.reduce(b, axis=-1)):
        raise ValueError("bundles: the bundles of a market must be pairwise disjoint")
    shape = _v.broadcast_batch({"market": market.batch_shape, "bundles": b.shape[:-1],
                                "prices": p.shape[:-1]})
    sc = _host_scales(market)
    pn = _scaled_prices(p, sc, 1)
    ft = np.dtype(jnp.result_type(float))
    d = _chunked_demand(_bundle_demand_jit, market, shape, [b.astype(np.int32),
                                                            pn.astype(ft)])
    k = b.shape[-1]
    chosen = set_bits(k)[np.asarray(d, np.int64)]                        # (..., n, K)
    bb = np.broadcast_to(b, shape + (k,))[..., None, :]
    union = (chosen * bb).sum(-1)
    cost = (chosen * np.broadcast_to(p, shape + (k,))[..., None, :]).sum(-1)
    vals = np.broadcast_to(market.values, shape + market.values.shape[-2:])
    util = np.take_along_axis(vals, union[..., None], axis=-1)[..., 0] - cost
    return DemandResult(d, util)


# ============================================================================ optimal allocation
class OptimalAllocationResult(NamedTuple):
    """Result of :func:`optimal_allocation`.

    Attributes
    ----------
    welfare : ndarray, shape (...)
        ``sum_i v_i(X_i)`` in float64.
    allocation : ndarray of int64, shape (..., n)
        Pairwise disjoint bitmasks.
    converged : ndarray of bool, shape (...)
        The DP's allocation is disjoint and its float64 welfare matches the DP value to
        float rounding.
    status : ndarray of int, shape (...)
        ``OK`` or ``NOT_CERTIFIED``.
    iterations : ndarray of int, shape (...)
        DP stages (one per buyer).
    """
    welfare: np.ndarray
    allocation: np.ndarray
    converged: np.ndarray
    status: np.ndarray
    iterations: np.ndarray


@jax.jit
def _dp_jit(values: jax.Array, live: jax.Array) -> tuple[jax.Array, jax.Array]:
    best, choice = _k.welfare_dp(values, live)
    return best, _k.dp_backtrack(choice)


def _optimal_flat(values: np.ndarray, devices: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """DP value (in units of each market's scale) and allocation masks of a flat batch
    ``(B, n, 2**m)``, in padded chunks (:mod:`jaxwalras.setfunction_chunks`): batch
    buckets 16, 64, 256, ... and buyers padded to their bucket by buyers the DP skips."""
    T = _chunks.Tables(values, devices)
    B, n = T.B, T.n
    if B == 0:
        return np.zeros(0), np.zeros((0, n), np.int64)
    live = T.live

    def call(idx: np.ndarray) -> Any:
        return _dp_jit(*T.put(T.take(idx)), live)

    outs = T.run(call, B, per_market=T.nb * 3 ** T.m + T.nb * T.t)
    best = np.concatenate([np.asarray(o[0]) for o in outs])
    alloc = np.concatenate([np.asarray(o[1])[:, :n] for o in outs]).astype(np.int64)
    return best, alloc


def optimal_allocation(market: SetFunctionMarket, *, devices: DevicesLike = None
                       ) -> OptimalAllocationResult:
    """Exact welfare maximisation ``max sum_i v_i(X_i)`` over disjoint ``X_i``.

    Subset dynamic programme on the device, batched over the leading axes:
    ``f_i(S) = max_{T subset S} v_i(T) + f_{i-1}(S \\ T)`` (work ``n 3^m`` per market; the
    ``3^m`` submask pairs are grouped by ``|S|`` into dense gathers), on each market's values
    divided by its largest ``|value|`` (any money unit, any finite values). The welfare of
    the returned allocation is re-evaluated on the host in float64. Under float32 the chosen
    allocation is optimal up to float32 rounding of the values (``~1e-7`` of the market's
    scale).

    Parameters
    ----------
    market : SetFunctionMarket
        Any batch shape.
    devices : int, str, jax.Device or sequence of them, optional
        Devices the DP runs on, the batch split over them
        (:func:`jaxwalras.resolve_devices`). The answer does not depend on them.

    Returns
    -------
    OptimalAllocationResult
        ``converged`` checks that the allocation is disjoint and that its float64 welfare
        equals the DP value up to the device's float rounding (``8 n eps`` of the market's
        scale).

    Raises
    ------
    TypeError
        ``market`` is not a :class:`~jaxwalras.SetFunctionMarket`.

    Notes
    -----
    Compiled code depends on bucketed shapes only (markets in chunks of 16, 64, 256, ...;
    buyers padded to 0, 1, 2, 3, 4, 6, 8, 12, ... with buyers the DP skips): a new batch
    size compiles nothing (see :func:`jaxwalras.warmup`).
    Examples
    --------
    >>> import jaxwalras as jw
    >>> float(jw.optimal_allocation(jw.examples.shoes()).welfare)
    10.0
    """
    market = as_market(market)
    bs, n = market.batch_shape, market.n_buyers
    flat = np.asarray(market.values).reshape((-1, n, 2 ** market.n_items))
    sc = value_scale(flat)
    sc = np.where(sc > 0, sc, 1.0)
    best_f, alloc_f = _optimal_flat(flat, devices)
    alloc = alloc_f.reshape(bs + (n,))
    best = (np.asarray(best_f, np.float64) * sc).reshape(bs)
    welfare = allocation_welfare(market, alloc)
    disjoint = alloc.sum(-1) == np.bitwise_or.reduce(alloc, axis=-1)
    eps = float(jnp.finfo(jnp.result_type(float)).eps)     # the device's float rounding
    tol = 8 * eps * value_scale(market.values) * max(1, market.n_buyers)
    conv = disjoint & (np.abs(welfare - best) <= tol)
    status = np.where(conv, Status.OK, Status.NOT_CERTIFIED).astype(np.int64)
    return OptimalAllocationResult(welfare, alloc, conv, status,
                                   np.full(conv.shape, market.n_buyers, np.int64))


# ============================================================================ gross substitutes
def is_gross_substitutes(market: SetFunctionMarket, *, rtol: float = 1e-9, atol: float = 0.0,
                         tol: float | None = None) -> np.ndarray:
    """Brute-force gross-substitutes test (the M-natural concavity exchange property of
    Fujishige and Yang, 2003).

    For all ``S, T`` and ``a in S \\ T``:
    ``v(S) + v(T) <= max(v(S-a) + v(T+a), max_{b in T \\ S} v(S-a+b) + v(T+a-b))``.
    Work ``m^2 4^m`` per buyer: small ``m`` only.

    Parameters
    ----------
    market : SetFunctionMarket
        At most 8 items.
    rtol : float
        Slack allowed in the inequality relative to the buyer's own scale
        ``max_S v_i(S)`` (float rounding of constructed tables), in ``[0, 1)``.
    atol : float
        Additional absolute slack (money units), ``>= 0``.
    tol : float, optional
        Deprecated name of ``atol``.

    Returns
    -------
    ndarray of bool, shape (..., n)

    Raises
    ------
    TypeError, ValueError
        Not a market, more than 8 items, or a bad ``rtol`` / ``atol``.

    Examples
    --------
    >>> import jaxwalras as jw
    >>> jw.is_gross_substitutes(jw.examples.shoes()).tolist()
    [False, True]
    """
    market = as_market(market)
    if tol is not None:
        _v.warn_deprecated("tol=", "atol=")
        atol = tol
    rtol = check_rtol(rtol, allow_zero=True)
    atol = _v.check_number(atol, "atol", lo=0.0)
    m = market.n_items
    if m > 8:
        raise ValueError(f"market: is_gross_substitutes is a brute force for m <= 8, got {m}")
    v = market.values
    t = 2 ** m
    s = np.arange(t)[:, None]
    tt = np.arange(t)[None, :]
    vst = v[..., :, None] + v[..., None, :]                             # (..., n, S, T)
    slack = (atol + rtol * buyer_scale(v))[..., None, None]
    ok = np.ones(v.shape[:-1], bool)
    for a in range(m):
        ba = 1 << a
        cond = ((s & ba) != 0) & ((tt & ba) == 0)
        best = v[..., (s ^ ba) + 0 * tt] + v[..., (tt | ba) + 0 * s]
        for bj in range(m):
            bb = 1 << bj
            c2 = ((tt & bb) != 0) & ((s & bb) == 0)
            alt = v[..., ((s ^ ba) | bb) + 0 * tt] + v[..., ((tt | ba) ^ bb) + 0 * s]
            best = np.where(c2, np.maximum(best, alt), best)
        viol = cond & (vst > best + slack)
        ok &= ~np.any(viol, axis=(-2, -1))
    return ok
