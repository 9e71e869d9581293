"""Item-price equilibria of combinatorial markets: existence and prices of a Walrasian
equilibrium, the ascending item-price auction, and the best welfare item prices can
support.

* :func:`walrasian_equilibrium` -- exact existence test through the configuration LP
  (Bikhchandani and Mamer, 1997), prices from its dual, verified on the host.
* :func:`ascending_auction` -- the Gul--Stacchetti ascending auction (gross substitutes).
* :func:`best_item_price_welfare` -- best welfare of any item-price equilibrium that need
  not clear the market (small markets), the benchmark bundling beats (Feldman, Gravin and
  Lucier, 2013).

Device kernels: :mod:`jaxwalras.kernels.setfunc`; host exact steps:
:mod:`jaxwalras.setfunction_host`.  Numerics as in :class:`~jaxwalras.SetFunctionMarket`:
device work on each market's values divided by its own scale, host checks in float64 with
tolerances relative to that scale.
"""
from __future__ import annotations

import contextlib
import itertools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .typing import ArrayLike
from ._batching import pad_index, padded_size
from . import _validation as _v
from . import setfunction_host as _h
from .combinatorial import optimal_allocation
from .kernels import setfunc as _k
from .setfunction import (SetFunctionMarket, as_market, check_rtol, default_rtol, set_bits,
                          value_scale)
from .status import Status

__all__ = ["WalrasianResult", "ItemPriceAuctionResult", "ItemPriceWelfareResult",
           "walrasian_equilibrium", "ascending_auction", "best_item_price_welfare"]


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
        Simplex iterations of the market's LPs.
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


def walrasian_equilibrium(market: SetFunctionMarket, *, rtol: float | None = None,
                          minimal_prices: bool = False, chunk_size: int = 64,
                          lp_chunk: int | None = None) -> WalrasianResult:
    """Decide whether an item-price Walrasian equilibrium exists, exactly, and return one.

    A WE exists iff the configuration LP ``max sum v_i(S) x_iS`` (each buyer at most one set,
    each item in at most one chosen set, ``x >= 0``) has an integral optimum, i.e. iff its
    value equals the optimal welfare; any optimal dual ``p`` on the item rows, with any
    optimal allocation, is then a WE (Bikhchandani and Mamer, 1997).  The optimal
    allocation comes from the batched device DP (:func:`optimal_allocation`); the LP (dual
    form, only non-redundant rows ``v_i(S) > v_i(S - j)``) is solved with HiGHS on the host,
    one market at a time on its values divided by the market's largest ``|value|`` (so
    HiGHS' tolerances are relative to that scale and no batch mate changes the answer).

    Parameters
    ----------
    market : SetFunctionMarket
        Any batch shape.
    rtol : float, optional
        ``exists`` holds when the LP value exceeds the optimal welfare by at most
        ``rtol * m * max|v|`` (the market's own scale; default ``1e-9``, ``1e-5`` under
        float32 device arithmetic, whose DP is optimal only to float32 rounding).  A finite
        number in ``[0, 1)``.
    minimal_prices : bool
        Solve a second LP for the least total price among the dual optima (for gross
        substitutes: the minimal Walrasian prices, as the ascending auction finds).
    chunk_size : int
        Markets per device call of the welfare DP (bounds its ``batch x 3^m`` memory).
    lp_chunk : int, optional
        Deprecated name of ``chunk_size``.

    Returns
    -------
    WalrasianResult
        ``converged`` re-checks the WE conditions in float64 on the original values where
        ``exists`` (every buyer's regret and every unsold item's price at most
        ``1e-7 m max|v|``, HiGHS' accuracy).

    Raises
    ------
    TypeError, ValueError
        Not a market, or ``rtol`` / ``chunk_size`` out of range (the message names it).

    References
    ----------
    S. Bikhchandani and J. W. Mamer, "Competitive equilibrium in an exchange economy with
    indivisibilities", J. Economic Theory 74(2), 1997.

    Examples
    --------
    >>> import jaxwalras as jw
    >>> bool(jw.walrasian_equilibrium(jw.examples.shoes()).exists)
    False
    >>> float(jw.walrasian_equilibrium(jw.SetFunctionMarket.additive([[1e-6, 2e-6]])).welfare)
    3e-06
    """
    market = as_market(market)
    rtol = default_rtol() if rtol is None else check_rtol(rtol, allow_zero=True)
    if lp_chunk is not None:
        _v.warn_deprecated("lp_chunk=", "chunk_size=")
        chunk_size = lp_chunk
    chunk_size = _v.check_integer(chunk_size, "chunk_size", lo=1)
    if not isinstance(minimal_prices, (bool, np.bool_)):
        raise TypeError(f"minimal_prices: must be True or False, got {minimal_prices!r}")
    n, m = market.n_buyers, market.n_items
    vals = market.values.reshape((-1, n, 2 ** m))
    nb = vals.shape[0]
    parts = [optimal_allocation(SetFunctionMarket(vals[lo:lo + chunk_size], _validate=False))
             for lo in range(0, nb, chunk_size)]
    alloc = np.concatenate([o.allocation for o in parts]) if parts else np.zeros((0, n), int)
    welfare = np.concatenate([o.welfare for o in parts]) if parts else np.zeros(0)
    scale = value_scale(vals)
    sc = np.where(scale > 0, scale, 1.0)
    lp_val = np.empty(nb)
    prices = np.empty((nb, m))
    ok = np.empty(nb, bool)
    nit = np.zeros(nb, np.int64)
    for b in range(nb):                    # host exact step: one LP per market
        ok[b], lp_val[b], prices[b], nit[b] = _h.config_dual_lp(vals[b] / sc[b],
                                                                minimal_prices)
    prices *= sc[:, None]
    lp_val *= sc
    exists = ok & (lp_val <= welfare + rtol * scale * m)
    viol = _h.we_violation(vals, prices, alloc)
    verified = exists & (viol <= _h.LP_RTOL * scale * m)
    conv = ok & (~exists | verified)
    status = np.where(conv, Status.OK, np.where(ok, Status.NOT_CERTIFIED,
                                                Status.SOLVER_FAILED)).astype(np.int64)
    bs = market.batch_shape
    return WalrasianResult(exists.reshape(bs), prices.reshape(bs + (m,)),
                           alloc.reshape(bs + (n,)), welfare.reshape(bs), lp_val.reshape(bs),
                           conv.reshape(bs), status.reshape(bs), nit.reshape(bs))


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
        The auction stopped and the host confirms in float64 that no direction
        ``p + step 1_X`` lowers the Lyapunov function (beyond the tolerance).
    status : ndarray of int, shape (...)
        ``OK``, ``ROUND_LIMIT`` (``max_steps`` reached first) or ``NOT_CERTIFIED``.
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


@jax.jit
def _auction_jit(values, step, max_steps, tol, budget):
    return _k.ascending_auction(values, step, max_steps, tol=tol, budget=budget)


#: the auction makes one raise of ``step`` per round: at most this many (values / step)
AUCTION_MAX_GRID = 2 ** 24


def _run_auction(g: np.ndarray, tol: np.ndarray, budget: np.ndarray
                 ) -> tuple[np.ndarray, ...]:
    """The device auction on grid values ``g`` (values / step, ``(B, n, 2^m)``) with step 1.
    Markets whose Lyapunov values can pass ``2**23`` grid units run in float64 (scoped
    ``jax.enable_x64``), the others in the default dtype, where integer grid values are
    then exact in float32 too; the split is per market, so batch mates never change a
    market's arithmetic."""
    nb, n, t = g.shape
    m = t.bit_length() - 1
    wide = g.max(axis=(-2, -1), initial=0.0) * (n + m) >= 2.0 ** 23
    prices = np.zeros((nb, m))
    done = np.zeros(nb, bool)
    steps = np.zeros(nb, np.int64)
    for sel, x64 in ((~wide, False), (wide, True)):
        if not sel.any():
            continue
        rows = np.flatnonzero(sel)
        # the batch padded to a bucket (16, 64, 256, ...) with copies of its first market,
        # whose results are dropped: compiled code never depends on the exact batch size
        idx = pad_index(rows, padded_size(rows.size, base=4, floor=16))
        with (jax.enable_x64(True) if x64 else contextlib.nullcontext()):
            ft = np.dtype(jnp.result_type(float))
            st = _auction_jit(jax.device_put(g[idx].astype(ft)), jnp.asarray(1.0, ft),
                              jnp.asarray(budget[rows].max(), jnp.int32),
                              jax.device_put(np.asarray(tol[idx]).astype(ft)),
                              jax.device_put(np.asarray(budget[idx]).astype(np.int32)))
            k = rows.size
            prices[rows] = np.asarray(st.prices, np.float64)[:k]
            done[rows] = np.asarray(st.done)[:k]
            steps[rows] = np.asarray(st.steps)[:k]
    return prices, done, steps


def ascending_auction(market: SetFunctionMarket, *, step: ArrayLike | None = None,
                      max_steps: int | None = None) -> ItemPriceAuctionResult:
    """Ascending item-price auction (Gul and Stacchetti, 1999; Ausubel, 2006), on the device.

    From ``p = 0``, repeatedly raise by ``step`` the prices of the smallest set ``X`` of items
    minimising the Lyapunov function ``L(p + step chi_X)`` (``L(p) = sum p + sum_i max_S
    v_i(S) - p(S)``), while that lowers ``L``.  For gross-substitutes values that are
    multiples of ``step`` it stops at the minimal Walrasian prices (L-natural convex steepest
    descent, Murota 2003), after ``max_j p*_j / step`` raises.  Work ``n 4^m`` per market and
    round: meant for ``m <= 10``.

    Numerics: the device works in units of ``step`` (values / step, snapped to integers
    when they are multiples of ``step`` up to ``1e-9`` relative), so the money unit changes
    nothing as long as ``step`` is given in the same unit, and prices are integer multiples
    of ``step``.  Comparisons of ``L`` use the tolerance ``min(1e-6 max|v| / step, 1/4)``
    steps (exact for values on the grid).  Markets whose ``L`` can exceed ``2**23`` steps
    run in float64 (scoped ``jax.enable_x64``), the rest in the default dtype, where their
    integer grid values are exact.

    Parameters
    ----------
    market : SetFunctionMarket
    step : float or array_like, optional
        Price increment, a positive finite number, or one per market (broadcast against
        the batch shape); defaults to 1 when all values are integers (required
        otherwise).  ``max v / step`` may be at most ``2**24``.
    max_steps : int, optional
        Raise budget of every market (default, per market, ``m (ceil(max v / step) + 1)
        + 2``: a raise lifts the sum of prices by at least one step and no price passes
        ``max v + step``, so every market stops within it; a gross-substitutes market
        stops after ``max_j p*_j / step`` raises).

    Returns
    -------
    ItemPriceAuctionResult
        ``is_walrasian`` is checked on the host in float64 against an optimal allocation, so
        a market beyond gross substitutes is reported, not hidden; ``converged`` re-checks
        on the host that no direction ``p + step 1_X`` lowers ``L``.

    Raises
    ------
    TypeError, ValueError
        Not a market; ``step`` missing for non-integer values, not a positive finite number,
        or so small that ``max v / step > 2**24``; a bad ``max_steps``.

    Examples
    --------
    >>> import jaxwalras as jw
    >>> cm = jw.SetFunctionMarket.unit_demand([[3, 1], [3, 2]])
    >>> au = jw.ascending_auction(cm)
    >>> au.prices.tolist(), bool(au.is_walrasian)
    ([1.0, 0.0], True)
    >>> jw.ascending_auction(jw.SetFunctionMarket(cm.values * 1e-6), step=1e-6).prices.tolist()
    [1e-06, 0.0]
    """
    market = as_market(market)
    vals = market.values
    n, m = market.n_buyers, market.n_items
    bs = market.batch_shape
    if step is None:
        if not np.all(vals == np.round(vals)):
            raise ValueError("step: values are not all integers; pass the price increment "
                             "explicitly (e.g. step=0.01)")
        step = 1.0
    if np.ndim(step) == 0:
        steps_b = np.full(bs, _v.check_number(step, "step", lo=0.0, lo_open=True))
    else:
        steps_b = _v.as_float_array(step, "step", allow_bool=False)
        if not (steps_b > 0).all():
            raise ValueError(f"step: must be positive, found "
                             f"{_v.format_value(float(steps_b[steps_b <= 0][0]))}")
        try:
            steps_b = np.broadcast_to(steps_b, bs)
        except ValueError:
            raise ValueError(f"step: shape {steps_b.shape} does not broadcast to the market's "
                             f"batch shape {bs}") from None
    step = steps_b.reshape(-1)
    fv = vals.reshape((-1, n, 2 ** m))
    with np.errstate(over="ignore"):
        g = fv / step[:, None, None]
    gmax = g.max(axis=(-2, -1), initial=0.0)
    if not np.all(np.isfinite(g)) or gmax.max(initial=0.0) > AUCTION_MAX_GRID:
        k = int(np.argmax(np.where(np.isfinite(gmax), gmax, np.inf)))
        raise ValueError(f"step: the auction raises prices by step = "
                         f"{_v.format_value(float(step[k]))} per round, and max value / step "
                         f"= {float(gmax[k]):.4g} exceeds {AUCTION_MAX_GRID} rounds; pass a "
                         f"larger step")
    snap = np.rint(g)
    on_grid = np.all(np.abs(g - snap) <= 1e-9 * np.abs(g), axis=(-2, -1))
    g = np.where(on_grid[:, None, None], snap, g)
    if max_steps is None:
        budget = m * (np.ceil(gmax).astype(np.int64) + 1) + 2
    else:
        budget = np.full(len(fv), _v.check_integer(max_steps, "max_steps", lo=1,
                                                   hi=2**31 - 1))
    tol = np.minimum(1e-6 * gmax, 0.25)
    pg, done, steps = _run_auction(g, tol, budget)
    pg = np.where(on_grid[:, None], np.rint(pg), pg)      # prices live on the step grid
    prices = pg * step[:, None]
    oa = optimal_allocation(market)
    scale = value_scale(fv)
    viol = _h.we_violation(fv, prices, oa.allocation.reshape(-1, n))
    stopped = (_h.ascent_improvement(fv, prices, step)
               <= tol * step + 1e-12 * scale * (n + m))
    conv = done & stopped
    status = np.where(conv, Status.OK, np.where(done, Status.NOT_CERTIFIED,
                                                Status.ROUND_LIMIT)).astype(np.int64)
    return ItemPriceAuctionResult(
        prices.reshape(bs + (m,)), oa.allocation,
        (viol <= _h.LP_RTOL * scale * max(1, m)).reshape(bs), conv.reshape(bs),
        steps.reshape(bs), status.reshape(bs))


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
        A supported allocation was found and the host confirms in float64 that the prices
        support it (every buyer's regret at most ``1e-7 m max|v|``); the empty allocation
        is always supported.
    status : ndarray of int, shape (...)
        ``OK`` or ``NOT_CERTIFIED``.
    iterations : ndarray of int, shape (...)
        Allocations tested by a supporting-price LP.
    """
    welfare: np.ndarray
    prices: np.ndarray
    allocation: np.ndarray
    converged: np.ndarray
    status: np.ndarray
    iterations: np.ndarray


def best_item_price_welfare(market: SetFunctionMarket, *, max_allocations: int = 2_000_000
                            ) -> ItemPriceWelfareResult:
    """Best welfare of any item-price equilibrium *without* market clearing (small markets).

    ``max { sum_i v_i(A_i) : A disjoint, exists p >= 0 with A_i in D_i(p) for all i }``;
    unsold items may carry any price.  Host enumeration of all ``(n+1)^m`` allocations in
    order of decreasing welfare, each tested by a feasibility LP (HiGHS) for supporting
    prices; the first feasible one is optimal.  This is the benchmark of Feldman, Gravin and
    Lucier (2013): on the shirts market it is ``3 - 1/m`` against ``OPT = m``.  The LPs see
    each market's values divided by its largest ``|value|`` (scale-free).

    Parameters
    ----------
    market : SetFunctionMarket
    max_allocations : int
        Refuse markets with more than this many allocations.

    Returns
    -------
    ItemPriceWelfareResult

    Raises
    ------
    TypeError, ValueError
        Not a market, a bad ``max_allocations``, or more allocations than it allows.

    Examples
    --------
    >>> import jaxwalras as jw
    >>> round(float(jw.best_item_price_welfare(jw.examples.shirts(5)).welfare), 6)
    2.8
    """
    market = as_market(market)
    n, m = market.n_buyers, market.n_items
    max_allocations = _v.check_integer(max_allocations, "max_allocations", lo=1)
    if (n + 1) ** m > max_allocations:
        raise ValueError(f"market: (n+1)^m = {(n + 1) ** m} allocations exceed "
                         f"max_allocations = {max_allocations}; best_item_price_welfare is a "
                         f"brute force for small markets")
    # every allocation as an assignment of items to buyers 0..n-1 or n (= unsold)
    assign = np.array(list(itertools.product(range(n + 1), repeat=m)), np.int64)  # (A, m)
    masks = np.stack([((assign == i) << np.arange(m)).sum(axis=1) for i in range(n)], 1)
    fv = market.values.reshape((-1, n, 2 ** m))
    scale = value_scale(fv)
    sc = np.where(scale > 0, scale, 1.0)
    ws, ps, als, tested = [], [], [], []
    for b in range(fv.shape[0]):
        v = fv[b] / sc[b]
        wel = v[np.arange(n), masks].sum(axis=1)
        order = np.argsort(-wel, kind="stable")
        for k, a in enumerate(order):
            p = _h.supporting_prices(v, masks[a])
            if p is not None:
                ws.append(fv[b][np.arange(n), masks[a]].sum())
                ps.append(p * sc[b])
                als.append(masks[a])
                tested.append(k + 1)
                break
    prices, alloc = np.array(ps).reshape(-1, m), np.array(als).reshape(-1, n)
    util = fv - prices[:, None, :] @ set_bits(m).T.astype(float)
    held = np.take_along_axis(util, alloc[..., None], axis=-1)[..., 0]
    conv = (util.max(-1) - held).max(-1) <= _h.LP_RTOL * scale * max(1, m)
    bs = market.batch_shape
    status = np.where(conv, Status.OK, Status.NOT_CERTIFIED).astype(np.int64)
    return ItemPriceWelfareResult(np.array(ws).reshape(bs), prices.reshape(bs + (m,)),
                                  alloc.reshape(bs + (n,)), conv.reshape(bs),
                                  status.reshape(bs), np.array(tested, np.int64).reshape(bs))
