"""Solvers for combinatorial markets: demand queries, the optimal allocation, item-price
Walrasian equilibria, the ascending item-price auction and gross substitutes.

* :func:`item_demand`, :func:`bundle_demand` -- batched device demand queries.
* :func:`optimal_allocation` -- exact welfare maximisation (subset DP on the device).
* :func:`walrasian_equilibrium` -- exact existence test through the configuration LP
  (Bikhchandani and Mamer, 1997), prices from its dual, verified on the host.
* :func:`ascending_auction` -- the Gul--Stacchetti ascending auction (gross substitutes).
* :func:`best_item_price_welfare` -- best welfare of any item-price equilibrium that need
  not clear the market (small markets), the benchmark bundling beats (Feldman, Gravin and
  Lucier, 2013).
* :func:`is_gross_substitutes` -- brute-force test of the exchange property.

Combinatorial Walrasian equilibria (bundling) are in :mod:`jaxwalras.bundling`.
"""
from __future__ import annotations

import functools
import itertools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from scipy.optimize import linprog

from . import _validation as _v
from .kernels import setfunc as _k
from .setfunction import (MAX_ITEMS, SetFunctionMarket, allocation_welfare, as_market,
                          default_rtol, device_values, set_bits, value_scale)
from .status import Status

__all__ = [
    "DemandResult", "OptimalAllocationResult", "WalrasianResult", "ItemPriceAuctionResult",
    "ItemPriceWelfareResult", "item_demand", "bundle_demand", "optimal_allocation",
    "walrasian_equilibrium", "ascending_auction", "best_item_price_welfare",
    "is_gross_substitutes",
]


# ============================================================================ demand queries
class DemandResult(NamedTuple):
    """Answer of a demand query (a kernel call, not a solver: no status fields).

    Attributes
    ----------
    demand : jax.Array of int32, shape (..., n)
        Bitmask of a utility-maximising set (item prices) or slot mask of a utility-maximising
        set of bundles (bundle prices).
    utility : jax.Array, shape (..., n)
        Its utility.
    """
    demand: jax.Array
    utility: jax.Array


_item_demand_jit = jax.jit(_k.item_demand)


_bundle_demand_jit = jax.jit(_k.bundle_demand)


def item_demand(market: SetFunctionMarket, prices: Any) -> DemandResult:
    """Batched demand query at item prices (device kernel).

    Parameters
    ----------
    market : SetFunctionMarket
    prices : array_like, shape (..., m)
        Broadcasts against the market's batch shape (numpy rules), so
        ``item_demand(cm[:, None], P)`` with ``P (B, Q, m)`` answers ``Q`` price vectors for
        each of ``B`` markets at once.

    Returns
    -------
    DemandResult
        Per buyer, a set maximising ``v_i(S) - sum_{j in S} p_j`` (ties towards the smallest
        bitmask) and that utility.

    Examples
    --------
    >>> import jaxwalras as jw
    >>> d = jw.item_demand(jw.examples.shoes(), [4.0, 4.0])
    >>> d.demand.tolist(), d.utility.tolist()
    ([3, 1], [2.0, 2.0])
    """
    market = as_market(market)
    p = _v.as_float_array(prices, "prices", min_ndim=1)
    _v.check_trailing_shape(p, "prices", (market.n_items,), ("m",))
    _v.broadcast_batch({"market": market.batch_shape, "prices": p.shape[:-1]})
    d, u = _item_demand_jit(device_values(market), jnp.asarray(p, jnp.result_type(float)))
    return DemandResult(d, u)


def bundle_demand(market: SetFunctionMarket, bundles: Any, prices: Any) -> DemandResult:
    """Batched demand query at bundle prices (device kernel).

    Parameters
    ----------
    market : SetFunctionMarket
    bundles : array_like of int, shape (..., K)
        Disjoint item bitmasks (0 = empty slot, never chosen), ``K <= 16``.
    prices : array_like, shape (..., K)
        One price per bundle.

    Returns
    -------
    DemandResult
        Per buyer, a K-bit mask over slots of a utility-maximising *set of bundles* and its
        utility ``v_i(union) - sum of its prices``.

    Examples
    --------
    >>> import jaxwalras as jw
    >>> d = jw.bundle_demand(jw.examples.shoes(), [3, 0], [10.0, 0.0])
    >>> d.demand.tolist(), d.utility.tolist()
    ([0, 0], [0.0, 0.0])
    """
    market = as_market(market)
    b = _v.as_int_array(bundles, "bundles", min_ndim=1)
    p = _v.as_float_array(prices, "prices", min_ndim=1)
    if b.shape[-1] != p.shape[-1]:
        raise ValueError(f"bundles and prices need the same number of slots, got "
                         f"{b.shape[-1]} and {p.shape[-1]}")
    if b.shape[-1] > MAX_ITEMS:
        raise ValueError(f"bundles: at most {MAX_ITEMS} slots, got {b.shape[-1]}")
    if b.size and b.max() >= 2 ** market.n_items:
        raise ValueError(f"bundles: bitmasks must be < 2**m = {2 ** market.n_items}")
    if np.any(b.sum(axis=-1) != np.bitwise_or.reduce(b, axis=-1)):
        raise ValueError("bundles: the bundles of a market must be pairwise disjoint")
    _v.broadcast_batch({"market": market.batch_shape, "bundles": b.shape[:-1],
                        "prices": p.shape[:-1]})
    d, u = _bundle_demand_jit(device_values(market), jnp.asarray(b, jnp.int32),
                              jnp.asarray(p, jnp.result_type(float)))
    return DemandResult(d, u)


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
def _dp_jit(values: jax.Array) -> tuple[jax.Array, jax.Array]:
    best, choice = _k.welfare_dp(values)
    return best, _k.dp_backtrack(choice)


def optimal_allocation(market: SetFunctionMarket) -> OptimalAllocationResult:
    """Exact welfare maximisation ``max sum_i v_i(X_i)`` over disjoint ``X_i``.

    Subset dynamic programme on the device, batched over the leading axes:
    ``f_i(S) = max_{T subset S} v_i(T) + f_{i-1}(S \\ T)`` (work ``n 3^m`` per market; the
    ``3^m`` submask pairs are grouped by ``|S|`` into dense gathers). The welfare of the
    returned allocation is re-evaluated on the host in float64. Under float32 the chosen
    allocation is optimal up to float32 rounding of the values (``~1e-7`` relative).

    Parameters
    ----------
    market : SetFunctionMarket
        Any batch shape.

    Returns
    -------
    OptimalAllocationResult
        ``converged`` checks that the allocation is disjoint and that its float64 welfare
        equals the DP value up to the device's float rounding.

    Examples
    --------
    >>> import jaxwalras as jw
    >>> float(jw.optimal_allocation(jw.examples.shoes()).welfare)
    10.0
    """
    market = as_market(market)
    best, alloc = _dp_jit(device_values(market))
    alloc = np.asarray(alloc).astype(np.int64)
    best = np.asarray(best, np.float64)
    welfare = allocation_welfare(market, alloc)
    disjoint = alloc.sum(-1) == np.bitwise_or.reduce(alloc, axis=-1)
    eps = float(jnp.finfo(jnp.result_type(float)).eps)     # the device's float rounding
    tol = 8 * eps * value_scale(market.values) * max(1, market.n_buyers)
    conv = disjoint & (np.abs(welfare - best) <= tol)
    status = np.where(conv, Status.OK, Status.NOT_CERTIFIED).astype(np.int64)
    return OptimalAllocationResult(welfare, alloc, conv, status,
                                   np.full(conv.shape, market.n_buyers, np.int64))


# ============================================================================ Walrasian equilibrium
class WalrasianResult(NamedTuple):
    """Result of :func:`walrasian_equilibrium`.

    Attributes
    ----------
    exists : ndarray of bool, shape (...)
        The configuration LP has an integral optimum, i.e. an item-price Walrasian
        equilibrium exists (the answer to the question asked).
    prices : ndarray, shape (..., m)
        LP dual item prices (Walrasian where ``exists``).
    allocation : ndarray of int64, shape (..., n)
        Bitmasks of an optimal allocation (Walrasian where ``exists``).
    welfare : ndarray, shape (...)
        Optimal integral welfare.
    lp_value : ndarray, shape (...)
        Configuration-LP value (``>= welfare``).
    converged : ndarray of bool, shape (...)
        The LP was solved and, where ``exists``, ``(prices, allocation)`` pass the
        Walrasian check recomputed on the host in float64.
    status : ndarray of int, shape (...)
        ``OK``, ``SOLVER_FAILED`` (HiGHS failed) or ``NOT_CERTIFIED`` (the check failed).
    iterations : ndarray of int, shape (...)
        Simplex iterations (the market's share of its block LP).
    """
    exists: np.ndarray
    prices: np.ndarray
    allocation: np.ndarray
    welfare: np.ndarray
    lp_value: np.ndarray
    converged: np.ndarray
    status: np.ndarray
    iterations: np.ndarray

    @property
    def verified(self) -> np.ndarray:
        """Deprecated: ``exists & converged``."""
        _v.warn_deprecated("WalrasianResult.verified", "exists & converged")
        return self.exists & self.converged


def _nonredundant_sets(values: np.ndarray) -> np.ndarray:
    """``(n, 2^m)`` bool: sets whose constraint ``u_i + p(S) >= v_i(S)`` is not implied by a
    smaller set's (``v_i(S) > v_i(S - j)`` for every ``j in S``) and ``v_i(S) > 0``."""
    n, t = values.shape
    m = t.bit_length() - 1
    keep = values > 0
    for j in range(m):
        v3 = values.reshape(n, 2 ** (m - j - 1), 2, 2 ** j)
        k3 = keep.reshape(n, 2 ** (m - j - 1), 2, 2 ** j)
        k3[:, :, 1, :] &= v3[:, :, 1, :] > v3[:, :, 0, :]
    return keep


def _config_dual_lp(values: np.ndarray, minimal: bool = False
                    ) -> tuple[bool, float, np.ndarray, int]:
    """Solve ``min sum p + sum u  s.t.  u_i + p(S) >= v_i(S), p, u >= 0`` with HiGHS.
    Returns ``(ok, value, prices, simplex iterations)``."""
    n, t = values.shape
    m = t.bit_length() - 1
    keep = _nonredundant_sets(values)
    ii, ss = np.nonzero(keep)
    if len(ii) == 0:
        return True, 0.0, np.zeros(m), 0
    a = np.zeros((len(ii), m + n))
    a[:, :m] = -set_bits(m)[ss]
    a[np.arange(len(ii)), m + ii] = -1.0
    res = linprog(np.ones(m + n), A_ub=a, b_ub=-values[ii, ss], bounds=(0, None),
                  method="highs")
    nit = int(getattr(res, "nit", 0) or 0)
    if res.status != 0:
        return False, float("nan"), np.full(m, np.nan), nit
    if minimal:   # least total price on the optimal face (the minimal WE prices for GS)
        cap = res.fun + 1e-9 * max(1.0, abs(res.fun))
        res2 = linprog(np.r_[np.ones(m), np.zeros(n)], A_ub=np.vstack([a, np.ones(m + n)]),
                       b_ub=np.r_[-values[ii, ss], cap], bounds=(0, None), method="highs")
        if res2.status == 0:
            return True, float(res.fun), np.asarray(res2.x[:m]), nit + int(res2.nit)
    return True, float(res.fun), np.asarray(res.x[:m]), nit


def _config_dual_lp_block(values: np.ndarray, minimal: bool = False
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The dual configuration LPs of a chunk of markets ``(B, n, 2^m)`` as ONE block-diagonal
    sparse LP (HiGHS). The objective is separable, so an optimum of the sum is optimal in
    every block: one solver call per chunk instead of one per market. Returns per-market
    ``(ok, value, prices, iterations)`` (a block's iterations are shared out evenly); falls
    back to per-market LPs if the joint solve fails."""
    from scipy.sparse import coo_matrix, vstack as svstack
    nb, n, t = values.shape
    m = t.bit_length() - 1
    w = m + n
    keep = np.stack([_nonredundant_sets(values[b]) for b in range(nb)])
    bb, ii, ss = np.nonzero(keep)
    r = len(bb)
    if r == 0:
        return np.ones(nb, bool), np.zeros(nb), np.zeros((nb, m)), np.zeros(nb, np.int64)
    rows_j, jj = np.nonzero(set_bits(m)[ss])
    rows = np.concatenate([rows_j, np.arange(r)])
    cols = np.concatenate([bb[rows_j] * w + jj, bb * w + m + ii])
    a = coo_matrix((-np.ones(len(rows)), (rows, cols)), shape=(r, nb * w)).tocsr()
    rhs = -values[bb, ii, ss]
    res = linprog(np.ones(nb * w), A_ub=a, b_ub=rhs, bounds=(0, None), method="highs")
    if res.status != 0:
        out = [_config_dual_lp(values[b], minimal) for b in range(nb)]
        return (np.array([o[0] for o in out]), np.array([o[1] for o in out]),
                np.stack([o[2] for o in out]), np.array([o[3] for o in out], np.int64))
    nit = int(res.nit)
    x = res.x.reshape(nb, w)
    val = x.sum(axis=1)
    if minimal:   # least total price on every block's optimal face
        cap = val + 1e-9 * np.maximum(1.0, np.abs(val))
        blk = coo_matrix((np.ones(nb * w), (np.repeat(np.arange(nb), w), np.arange(nb * w))),
                         shape=(nb, nb * w))
        c2 = np.tile(np.r_[np.ones(m), np.zeros(n)], nb)
        res2 = linprog(c2, A_ub=svstack([a, blk]).tocsr(), b_ub=np.r_[rhs, cap],
                       bounds=(0, None), method="highs")
        if res2.status == 0:
            x = res2.x.reshape(nb, w)
            nit += int(res2.nit)
    return np.ones(nb, bool), val, x[:, :m].copy(), np.full(nb, -(-nit // nb), np.int64)


def _we_violation(values: np.ndarray, prices: np.ndarray, alloc: np.ndarray) -> np.ndarray:
    """Largest WE violation per market (host, float64): demand regret or price on unsold."""
    m = prices.shape[-1]
    util = values - prices[..., None, :] @ set_bits(m).T.astype(float)       # (..., n, 2^m)
    held = np.take_along_axis(util, alloc[..., None], axis=-1)[..., 0]
    regret = (util.max(axis=-1) - held).max(axis=-1)
    sold = np.bitwise_or.reduce(alloc, axis=-1)
    unsold_price = np.where(((sold[..., None] >> np.arange(m)) & 1) == 0, prices, 0.0)
    return np.maximum(regret, unsold_price.max(axis=-1, initial=0.0))


def walrasian_equilibrium(market: SetFunctionMarket, *, rtol: float | None = None,
                          minimal_prices: bool = False, chunk_size: int = 64,
                          lp_chunk: int | None = None) -> WalrasianResult:
    """Decide whether an item-price Walrasian equilibrium exists, exactly, and return one.

    A WE exists iff the configuration LP ``max sum v_i(S) x_iS`` (each buyer at most one set,
    each item in at most one chosen set, ``x >= 0``) has an integral optimum, i.e. iff its
    value equals the optimal welfare; any optimal dual ``p`` on the item rows, with any
    optimal allocation, is then a WE (Bikhchandani and Mamer, 1997).  The optimal
    allocation comes from the batched device DP; the LP (dual form, only non-redundant rows
    ``v_i(S) > v_i(S - j)``) is solved with HiGHS on the host, ``chunk_size`` markets at a
    time as one block-diagonal sparse LP (separable objective => optimal per block).

    Parameters
    ----------
    market : SetFunctionMarket
        Any batch shape.
    rtol : float, optional
        ``exists`` uses the tolerance ``rtol * max(1, max|v|)`` (default ``1e-9``, ``1e-5``
        under float32 device arithmetic).
    minimal_prices : bool
        Solve a second LP for the least total price among the dual optima (for gross
        substitutes: the minimal Walrasian prices, as the ascending auction finds).
    chunk_size : int
        Markets per block-diagonal LP.
    lp_chunk : int, optional
        Deprecated name of ``chunk_size``.

    Returns
    -------
    WalrasianResult
        ``converged`` re-checks the WE conditions in float64 where ``exists``.

    References
    ----------
    S. Bikhchandani and J. W. Mamer, "Competitive equilibrium in an exchange economy with
    indivisibilities", J. Economic Theory 74(2), 1997.

    Examples
    --------
    >>> import jaxwalras as jw
    >>> bool(jw.walrasian_equilibrium(jw.examples.shoes()).exists)
    False
    """
    market = as_market(market)
    rtol = default_rtol() if rtol is None else float(rtol)
    if lp_chunk is not None:
        _v.warn_deprecated("lp_chunk=", "chunk_size=")
        chunk_size = lp_chunk
    if not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise ValueError(f"chunk_size: must be a positive int, got {chunk_size!r}")
    oa = optimal_allocation(market)
    vals = market.values.reshape((-1,) + market.values.shape[-2:])
    flat_w = oa.welfare.reshape(-1)
    nb = vals.shape[0]
    lp_val = np.empty(nb)
    prices = np.empty((nb, market.n_items))
    ok = np.empty(nb, bool)
    nit = np.zeros(nb, np.int64)
    for lo in range(0, nb, chunk_size):    # host exact step: one block LP per chunk
        hi = min(nb, lo + chunk_size)
        ok[lo:hi], lp_val[lo:hi], prices[lo:hi], nit[lo:hi] = _config_dual_lp_block(
            vals[lo:hi], minimal_prices)
    scale = value_scale(vals)
    exists = ok & (lp_val <= flat_w + rtol * scale * max(1, market.n_items))
    viol = _we_violation(vals, prices, oa.allocation.reshape(nb, -1))
    verified = exists & (viol <= 1e-7 * scale * max(1, market.n_items))
    conv = ok & (~exists | verified)
    status = np.where(conv, Status.OK, np.where(ok, Status.NOT_CERTIFIED,
                                                Status.SOLVER_FAILED)).astype(np.int64)
    bs = market.batch_shape
    return WalrasianResult(exists.reshape(bs), prices.reshape(bs + (market.n_items,)),
                           oa.allocation, oa.welfare, lp_val.reshape(bs), conv.reshape(bs),
                           status.reshape(bs), nit.reshape(bs))


# ============================================================================ ascending auction
class ItemPriceAuctionResult(NamedTuple):
    """Result of :func:`ascending_auction`.

    Attributes
    ----------
    prices : ndarray, shape (..., m)
        Final prices (the minimal Walrasian prices for gross substitutes).
    allocation : ndarray of int64, shape (..., n)
        An optimal allocation.
    is_walrasian : ndarray of bool, shape (...)
        Prices and allocation pass the Walrasian check on the host (the answer: False for
        markets beyond gross substitutes, where the auction ends elsewhere).
    converged : ndarray of bool, shape (...)
        The auction stopped: no ascent direction lowers the Lyapunov function.
    status : ndarray of int, shape (...)
        ``OK`` or ``ROUND_LIMIT`` (``max_steps`` reached first).
    iterations : ndarray of int, shape (...)
        Price raises (formerly ``steps``).
    """
    prices: np.ndarray
    allocation: np.ndarray
    is_walrasian: np.ndarray
    converged: np.ndarray
    iterations: np.ndarray
    status: np.ndarray

    @property
    def steps(self) -> np.ndarray:
        """Deprecated name of :attr:`iterations`."""
        _v.warn_deprecated("ItemPriceAuctionResult.steps", "ItemPriceAuctionResult.iterations")
        return self.iterations


@functools.partial(jax.jit, static_argnames=("max_steps",))
def _auction_jit(values, step, max_steps):
    return _k.ascending_auction(values, step, max_steps)


def ascending_auction(market: SetFunctionMarket, *, step: float | None = None,
                      max_steps: int | None = None) -> ItemPriceAuctionResult:
    """Ascending item-price auction (Gul and Stacchetti, 1999; Ausubel, 2006), on the device.

    From ``p = 0``, repeatedly raise by ``step`` the prices of the smallest set ``X`` of items
    minimising the Lyapunov function ``L(p + step chi_X)`` (``L(p) = sum p + sum_i max_S
    v_i(S) - p(S)``), while that lowers ``L``.  For gross-substitutes values that are
    multiples of ``step`` it stops at the minimal Walrasian prices (L-natural convex steepest
    descent, Murota 2003), after ``max_j p*_j / step`` raises.  Work ``n 4^m`` per market and
    round: meant for ``m <= 10``.

    Parameters
    ----------
    market : SetFunctionMarket
    step : float, optional
        Price increment; defaults to 1 when all values are integers (required otherwise).
    max_steps : int, optional
        Round budget (default ``ceil(max v / step) + 2``).

    Returns
    -------
    ItemPriceAuctionResult
        ``is_walrasian`` is checked exactly on the host against an optimal allocation, so a
        market beyond gross substitutes is reported, not hidden.

    Examples
    --------
    >>> import jaxwalras as jw
    >>> cm = jw.SetFunctionMarket.unit_demand([[3, 1], [3, 2]])
    >>> au = jw.ascending_auction(cm)
    >>> au.prices.tolist(), bool(au.is_walrasian)
    ([1.0, 0.0], True)
    """
    market = as_market(market)
    vals = market.values
    if step is None:
        if not np.all(vals == np.round(vals)):
            raise ValueError("step: values are not all integers; pass the price increment "
                             "explicitly (e.g. step=0.01)")
        step = 1.0
    if not (isinstance(step, (int, float, np.floating, np.integer)) and step > 0
            and math.isfinite(step)):
        raise ValueError(f"step: must be a positive finite number, got {step!r}")
    if max_steps is None:
        max_steps = int(math.ceil(float(vals.max(initial=0.0)) / step)) + 2
    if not isinstance(max_steps, (int, np.integer)) or max_steps < 1:
        raise ValueError(f"max_steps: must be a positive int, got {max_steps!r}")
    st = _auction_jit(device_values(market), jnp.asarray(step, jnp.result_type(float)),
                      int(max_steps))
    prices = np.asarray(st.prices, np.float64)
    prices = np.round(prices / step) * step          # prices live on the step grid
    oa = optimal_allocation(market)
    viol = _we_violation(vals, prices, oa.allocation)
    done = np.asarray(st.done)
    return ItemPriceAuctionResult(
        prices, oa.allocation, viol <= 1e-7 * value_scale(vals) * max(1, market.n_items),
        done, np.asarray(st.steps).astype(np.int64),
        np.where(done, Status.OK, Status.ROUND_LIMIT).astype(np.int64))


# ============================================================================ best item-price welfare
class ItemPriceWelfareResult(NamedTuple):
    """Result of :func:`best_item_price_welfare`.

    Attributes
    ----------
    welfare : ndarray, shape (...)
        Best welfare of an item-price equilibrium (no market clearing).
    prices : ndarray, shape (..., m)
        Supporting item prices.
    allocation : ndarray of int64, shape (..., n)
        Bitmasks.
    converged : ndarray of bool, shape (...)
        A supported allocation was found (always, the empty one is supported).
    status : ndarray of int, shape (...)
        ``OK``.
    iterations : ndarray of int, shape (...)
        Allocations tested by a supporting-price LP.
    """
    welfare: np.ndarray
    prices: np.ndarray
    allocation: np.ndarray
    converged: np.ndarray
    status: np.ndarray
    iterations: np.ndarray


def _supporting_prices(values: np.ndarray, alloc: np.ndarray) -> np.ndarray | None:
    """Item prices ``p >= 0`` with every ``alloc_i`` in buyer ``i``'s demand (LP), or None."""
    n, t = values.shape
    m = t.bit_length() - 1
    bits = set_bits(m).astype(float)
    # v_i(A_i) - p(A_i) >= v_i(S) - p(S)  <=>  p(A_i) - p(S) <= v_i(A_i) - v_i(S)
    rows = (bits[alloc][:, None, :] - bits[None, :, :]).reshape(n * t, m)
    rhs = (values[np.arange(n), alloc][:, None] - values).reshape(n * t)
    keep = np.any(rows != 0, axis=1) | (rhs < 0)
    if np.any(rhs[~keep] < -1e-12):
        return None
    res = linprog(np.zeros(m), A_ub=rows[keep], b_ub=rhs[keep] + 1e-12, bounds=(0, None),
                  method="highs")
    return np.asarray(res.x) if res.status == 0 else None


def best_item_price_welfare(market: SetFunctionMarket, *, max_allocations: int = 2_000_000
                            ) -> ItemPriceWelfareResult:
    """Best welfare of any item-price equilibrium *without* market clearing (small markets).

    ``max { sum_i v_i(A_i) : A disjoint, exists p >= 0 with A_i in D_i(p) for all i }``;
    unsold items may carry any price.  Host enumeration of all ``(n+1)^m`` allocations in
    order of decreasing welfare, each tested by a feasibility LP (HiGHS) for supporting
    prices; the first feasible one is optimal.  This is the benchmark of Feldman, Gravin and
    Lucier (2013): on the shirts market it is ``3 - 1/m`` against ``OPT = m``.

    Parameters
    ----------
    market : SetFunctionMarket
    max_allocations : int
        Refuse markets with more than this many allocations.

    Returns
    -------
    ItemPriceWelfareResult

    Examples
    --------
    >>> import jaxwalras as jw
    >>> round(float(jw.best_item_price_welfare(jw.examples.shirts(5)).welfare), 6)
    2.8
    """
    market = as_market(market)
    n, m = market.n_buyers, market.n_items
    if (n + 1) ** m > max_allocations:
        raise ValueError(f"market: (n+1)^m = {(n + 1) ** m} allocations exceed "
                         f"max_allocations = {max_allocations}; best_item_price_welfare is a "
                         f"brute force for small markets")
    # every allocation as an assignment of items to buyers 0..n-1 or n (= unsold)
    assign = np.array(list(itertools.product(range(n + 1), repeat=m)), np.int64)  # (A, m)
    masks = np.stack([((assign == i) << np.arange(m)).sum(axis=1) for i in range(n)], 1)
    fv = market.values.reshape((-1, n, 2 ** m))
    ws, ps, als, tested = [], [], [], []
    for b in range(fv.shape[0]):
        v = fv[b]
        wel = v[np.arange(n), masks].sum(axis=1)
        order = np.argsort(-wel, kind="stable")
        for k, a in enumerate(order):
            p = _supporting_prices(v, masks[a])
            if p is not None:
                ws.append(wel[a])
                ps.append(p)
                als.append(masks[a])
                tested.append(k + 1)
                break
    bs = market.batch_shape
    conv = np.ones(bs, bool)
    return ItemPriceWelfareResult(np.array(ws).reshape(bs), np.array(ps).reshape(bs + (m,)),
                                  np.array(als).reshape(bs + (n,)), conv,
                                  np.zeros(bs, np.int64), np.array(tested, np.int64).reshape(bs))


# ============================================================================ gross substitutes
def is_gross_substitutes(market: SetFunctionMarket, *, atol: float = 1e-9,
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
    atol : float
        Absolute slack allowed in the inequality.
    tol : float, optional
        Deprecated name of ``atol``.

    Returns
    -------
    ndarray of bool, shape (..., n)

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
    m = market.n_items
    if m > 8:
        raise ValueError(f"market: is_gross_substitutes is a brute force for m <= 8, got {m}")
    v = market.values
    t = 2 ** m
    s = np.arange(t)[:, None]
    tt = np.arange(t)[None, :]
    vst = v[..., :, None] + v[..., None, :]                             # (..., n, S, T)
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
        viol = cond & (vst > best + atol)
        ok &= ~np.any(viol, axis=(-2, -1))
    return ok
