"""Bound-form first welfare theorem and the exact efficient allocation (Milgrom and Watt, 2022).

* :func:`welfare_bound` -- for ANY prices ``p >= 0`` and ANY feasible allocation ``omega``
  of a :class:`~jaxwalras.MenuEconomy`, the computable certificate

  ``S* - S(omega) <= p.(sum_f y_f - sum_n x_n) + sum_n R_n(p, x_n) + sum_f R_f(p, y_f)``

  (revenue deficit + rationing losses), where the rationing loss of an agent is its best
  surplus at ``p`` minus its surplus at its allocation.
* :func:`efficient_allocation` -- the efficient allocation ``S*`` itself, as a mixed-integer
  LP solved exactly by HiGHS (``scipy.optimize.milp``); small economies only.

Reference: P. Milgrom and M. Watt, "Linear pricing mechanisms for markets without
convexity" (EC'22), bound-form first welfare theorem.

Proof of the bound (why it is always sound): with ``u_n = max_k V[n,k] - p.X[n,k]`` and
``pi_f = max_k p.Y[f,k] - C[f,k]``, any feasible ``omega*`` has
``S(omega*) = sum (v - p.x*) + sum (p.y* - c) + p.(sum x* - sum y*) <= sum u_n + sum pi_f``
because ``p >= 0`` and ``sum x* <= sum y*``; and ``S(omega) = sum u_n + sum pi_f - sum R_n
- sum R_f - p.(sum y - sum x)``.  Subtracting gives the bound.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

import scipy.sparse as sp

from .typing import ArrayLike
from ._progress import Progress
from ._validation import as_float_array, warn_deprecated
from .economy import MenuArrays, MenuEconomy
from .highs import lp_scales, solve_milp
from .menu_host import CERT_RTOL
from .status import Status

__all__ = ["WelfareBound", "EfficientAllocation", "welfare_bound", "efficient_allocation",
           "allocation_weights", "bound_terms", "uplift"]


class WelfareBound(NamedTuple):
    """Terms of the bound-form first welfare theorem (leading axes = batch axes).

    Attributes
    ----------
    revenue_deficit : (...,)  ``p.(sum y - sum x)`` (seller receipts minus buyer payments).
    buyer_losses : (..., N)   ``R_n = max_k (V - p.X) - (v_n(x_n) - p.x_n) >= 0``.
    seller_losses : (..., F)  ``R_f = max_k (p.Y - C) - (p.y_f - c_f(y_f)) >= 0``.
    bound : (...,)            revenue_deficit + sum of all rationing losses: an upper bound on
                              ``S* - S(omega)`` whenever the allocation is feasible.
    welfare : (...,)          ``S(omega) = sum v_n(x_n) - sum c_f(y_f)``.
    excess_supply : (..., L)  ``sum y - sum x`` per good.
    feasible : (...,) bool    production covers consumption in every good (up to ``1e-9``
                              of the quantities of that good traded); the bound is a theorem
                              only for feasible allocations.
    """
    revenue_deficit: Any
    buyer_losses: Any
    seller_losses: Any
    bound: Any
    welfare: Any
    excess_supply: Any
    feasible: Any


class EfficientAllocation(NamedTuple):
    """Exact efficient allocation (leading axes = batch axes).

    Attributes
    ----------
    welfare : ndarray, shape (...)
        Optimal total surplus ``S*`` (the best found where not ``converged``).
    buyer_choice : ndarray of int, shape (..., N)
        Option chosen by each buyer (argmax weight if convex buyers).
    seller_choice : ndarray of int, shape (..., F)
        Option chosen by each seller.
    buyer_weights : ndarray, shape (..., N, Kb)
        Weights (one-hot unless ``convex_buyers=True``).
    upper_bound : ndarray, shape (...)
        HiGHS' dual bound on ``S*`` (equals ``welfare`` when optimal, up to HiGHS'
        optimality tolerance).
    converged : ndarray of bool, shape (...)
        HiGHS proved optimality AND the returned allocation passed the float64 check:
        one option per agent (weights on the simplex for ``convex_buyers``) and production
        covering consumption in every good (to ``1e-9`` of the quantities traded)
        (formerly ``optimal``).
    status : ndarray of int, shape (...)
        ``OK``; ``TIME_LIMIT`` (the best allocation found is returned, its feasibility
        checked, optimality not proven; ``welfare`` NaN if none was found);
        ``NOT_CERTIFIED`` (HiGHS' allocation failed the float64 check); ``SOLVER_FAILED``.
    iterations : ndarray of int, shape (...)
        Branch-and-bound nodes HiGHS explored.
    """
    welfare: Any
    buyer_choice: Any
    seller_choice: Any
    buyer_weights: Any
    upper_bound: Any
    converged: Any
    status: Any
    iterations: Any

    @property
    def optimal(self) -> Any:
        """Deprecated name of :attr:`converged`."""
        warn_deprecated("EfficientAllocation.optimal", "EfficientAllocation.converged")
        return self.converged


# ---------------------------------------------------------------------------------------
def _host(economy: MenuEconomy) -> MenuArrays:
    if not isinstance(economy, MenuEconomy):
        raise TypeError(f"economy: expected a jaxwalras.MenuEconomy, got {type(economy).__name__}")
    return economy.host_arrays()


def allocation_weights(alloc: Any, mask: np.ndarray, name: str) -> np.ndarray:
    """Turn an allocation into per-option weights ``(..., A, K)``.

    ``alloc`` is either integer option indices ``(..., A)`` (a pure choice per agent) or
    float mixing weights ``(..., A, K)`` on the simplex (a convexified/concave agent, valued
    by the mixture of its option values).  Raises a ValueError naming ``name`` otherwise.
    """
    arr = np.asarray(alloc)
    A, K = mask.shape[-2:]
    batch = mask.shape[:-2]
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise TypeError(f"{name}: must be integer option indices (..., {A}) or float weights "
                        f"(..., {A}, {K}), got dtype {arr.dtype}")
    if arr.dtype.kind in "iub":
        if arr.shape[-1:] != (A,):
            raise ValueError(f"{name}: integer option indices must have trailing axis {A} "
                             f"(one per agent), got shape {arr.shape}")
        try:
            arr = np.broadcast_to(arr, batch + (A,))
        except ValueError:
            raise ValueError(f"{name}: shape {arr.shape} does not broadcast to the economy's "
                             f"batch shape {batch} + ({A},)") from None
        if arr.size and (arr.min() < 0 or arr.max() >= K):
            raise ValueError(f"{name}: option indices must lie in [0, {K - 1}], found "
                             f"{arr.min()}..{arr.max()}")
        if not np.take_along_axis(mask, arr[..., None].astype(np.int64), -1).all():
            raise ValueError(f"{name}: some agent is assigned a padded (masked) option")
        w = np.zeros(batch + (A, K))
        np.put_along_axis(w, arr[..., None].astype(np.int64), 1.0, -1)
        return w
    w = as_float_array(arr, name)
    if w.shape[-2:] != (A, K):
        raise ValueError(f"{name}: float weights must have trailing axes ({A}, {K}) "
                         f"(agents, options), got shape {w.shape}; pass integer option "
                         "indices for pure choices")
    try:
        w = np.broadcast_to(w, batch + (A, K))
    except ValueError:
        raise ValueError(f"{name}: shape {w.shape} does not broadcast to the economy's batch "
                         f"shape {batch} + ({A}, {K})") from None
    if w.size and w.min() < -1e-9:
        raise ValueError(f"{name}: weights must be non-negative, found {w.min()}")
    if np.abs(w.sum(-1) - 1.0).max(initial=0.0) > 1e-6:
        raise ValueError(f"{name}: each agent's weights must sum to 1 (simplex)")
    if np.abs(np.where(mask, 0.0, w)).max(initial=0.0) > 1e-9:
        raise ValueError(f"{name}: positive weight on a padded (masked) option")
    return np.clip(np.where(mask, w, 0.0), 0.0, None)


def bound_terms(A: MenuArrays, p, wb, ws) -> WelfareBound:
    """Pure numpy evaluation of the bound (all arrays broadcast to common batch axes)."""
    X, V, bm, Y, C, sm = A
    neg = -np.inf
    ub = np.einsum("...nkl,...l->...nk", X, p)
    us = np.einsum("...fkl,...l->...fk", Y, p)
    best_b = np.max(np.where(bm, V - ub, neg), -1)
    best_s = np.max(np.where(sm, us - C, neg), -1)
    got_b = np.sum(wb * (V - ub), -1)
    got_s = np.sum(ws * (us - C), -1)
    x = np.einsum("...nk,...nkl->...l", wb, X)
    y = np.einsum("...fk,...fkl->...l", ws, Y)
    excess = y - x
    rd = np.einsum("...l,...l->...", p, excess)
    bl = np.maximum(best_b - got_b, 0.0)
    sl = np.maximum(best_s - got_s, 0.0)
    welfare = np.sum(wb * V, (-1, -2)) - np.sum(ws * C, (-1, -2))
    feasible = np.all(excess >= -CERT_RTOL * (np.abs(x) + np.abs(y)), -1)   # per good, relative
    return WelfareBound(rd, bl, sl, rd + bl.sum(-1) + sl.sum(-1), welfare, excess, feasible)


def welfare_bound(economy: MenuEconomy, prices: ArrayLike, buyer_allocation: ArrayLike,
                  seller_allocation: ArrayLike) -> WelfareBound:
    """Certificate of the bound-form first welfare theorem for any prices and allocation.

    ``S* - S(omega) <= p.(sum_f y_f - sum_n x_n) + sum_n R_n + sum_f R_f`` with
    ``R_n = max_k (V[n,k] - p.X[n,k]) - (v_n(x_n) - p.x_n)`` (likewise for sellers).

    Parameters
    ----------
    economy : MenuEconomy, batch shape ``B``.
    prices : (..., L) non-negative prices ``p`` (broadcast against ``B``).
    buyer_allocation : integer options ``(..., N)`` or mixing weights ``(..., N, Kb)``.
    seller_allocation : integer options ``(..., F)`` or mixing weights ``(..., F, Ks)``.

    Returns
    -------
    WelfareBound with leading axes ``B``.  The inequality is a theorem for every feasible
    allocation (``.feasible``); see the module docstring for the two-line proof.

    Examples
    --------
    >>> import jaxwalras as jw, numpy as np
    >>> eco = jw.examples.milgrom_watt_table1()
    >>> wb = jw.welfare_bound(eco, [0.5], np.r_[np.ones(6, int), np.zeros(4, int)], [4])
    >>> round(float(wb.revenue_deficit), 2)
    0.41
    """
    A = _host(economy)
    L = A.X.shape[-1]
    batch = A.X.shape[:-3]
    p = as_float_array(prices, "prices", min_ndim=1, nonnegative=True)
    if p.shape[-1] != L:
        raise ValueError(f"prices: last axis must have the number of goods L={L}, got shape {p.shape}")
    try:
        p = np.broadcast_to(p, batch + (L,))
    except ValueError:
        raise ValueError(f"prices: shape {p.shape} does not broadcast to the economy's batch "
                         f"shape {batch} + ({L},)") from None
    wb = allocation_weights(buyer_allocation, A.bm, "buyer_allocation")
    ws = allocation_weights(seller_allocation, A.sm, "seller_allocation")
    return bound_terms(A, p, wb, ws)


# ---------------------------------------------------------------------------------------
def _milp_one(A: MenuArrays, convex_buyers: bool, time_limit: float, mip_rel_gap: float):
    """The efficient-allocation MILP of ONE economy, on data scaled by its own money and
    quantity scales; the answer is re-checked in float64 on the original data.  Returns
    ``(welfare, wb, ws, upper_bound, status, nodes)``."""
    X, V, bm, Y, C, sm = A
    N, Kb, L = X.shape
    F, Ks, _ = Y.shape
    vs, qs = lp_scales(A, np.zeros(L))
    bi = np.argwhere(bm)            # (nb, 2) real buyer options
    si = np.argwhere(sm)
    nb, ns = len(bi), len(si)
    nv = nb + ns
    c = -np.concatenate([V[bm], -C[sm]]) / vs         # minimise -welfare (scaled)
    # one option per agent
    rows = np.concatenate([bi[:, 0], N + si[:, 0]])
    A1 = sp.coo_matrix((np.ones(nv), (rows, np.arange(nv))), shape=(N + F, nv))
    # consumption <= production, per good: sum X lam - sum Y mu <= 0 (scaled per good)
    coef = np.concatenate([X[bm], -Y[sm]], 0) / qs    # (nv, L)
    Am = sp.vstack([A1, sp.coo_matrix(coef.T)]).tocsr()
    lb = np.concatenate([np.ones(N + F), np.full(L, -np.inf)])
    ubd = np.concatenate([np.ones(N + F), np.zeros(L)])
    integrality = np.concatenate([np.full(nb, 0 if convex_buyers else 1), np.ones(ns)])
    res = solve_milp(c, Am, lb, ubd, integrality, time_limit=time_limit,
                     mip_rel_gap=mip_rel_gap)
    wb = np.zeros((N, Kb))
    ws = np.zeros((F, Ks))
    if res.x is None:
        status = Status.TIME_LIMIT if res.status == "time_limit" else Status.SOLVER_FAILED
        return np.nan, wb, ws, np.nan, status, res.nodes
    xv = np.clip(res.x, 0.0, 1.0)
    wb[bm] = xv[:nb]
    ws[sm] = xv[nb:]
    # pure choices: the largest weight (exactly one option per agent by construction)
    if not convex_buyers:
        wb = (np.arange(Kb)[None, :] == wb.argmax(-1)[:, None]).astype(float)
    else:
        wb = np.where(bm, np.maximum(wb, 0.0), 0.0)
        wb = wb / wb.sum(-1, keepdims=True)
    ws = (np.arange(Ks)[None, :] == ws.argmax(-1)[:, None]).astype(float)
    # the float64 check on the ORIGINAL data: feasibility of every good
    xs = np.einsum("nk,nkl->nl", wb, X)
    ys = np.einsum("fk,fkl->fl", ws, Y)
    feas = np.all(ys.sum(0) - xs.sum(0) >= -CERT_RTOL * (xs.sum(0) + ys.sum(0)))
    welfare = float(np.sum(wb * V) - np.sum(ws * C))
    ub = -float(res.dual_bound) * vs if np.isfinite(res.dual_bound) else np.nan
    if res.status == "optimal":
        status = Status.OK if feas else Status.NOT_CERTIFIED
        ub = max(ub, welfare) if np.isfinite(ub) else welfare
    elif res.status == "time_limit":
        status = Status.TIME_LIMIT
    else:
        status = Status.SOLVER_FAILED
    if not feas:
        welfare = np.nan
    return welfare, wb, ws, ub, status, res.nodes


def efficient_allocation(economy: MenuEconomy, *, convex_buyers: bool = False,
                         time_limit: float = 60.0, max_variables: int = 200_000,
                         mip_rel_gap: float = 0.0,
                         progress: bool | None = None) -> EfficientAllocation:
    """Exact efficient allocation of a (batch of) menu economies by mixed-integer LP.

    ``max sum_{n,k} lam[n,k] V[n,k] - sum_{f,k} mu[f,k] C[f,k]`` s.t. one option per agent
    (``sum_k lam[n,k] = 1``, binary), ``sum X lam <= sum Y mu`` per good (free disposal),
    solved by HiGHS branch-and-cut (through highspy, silently), one economy at a time on
    the host.  ``convex_buyers=True`` relaxes the buyers' weights to the simplex (buyers
    with concave-hull values, the setting of the rationing mechanism).

    Every economy's MILP is scaled by its own money scale and per-good quantity scale
    (powers of two) before HiGHS sees it, so HiGHS' absolute tolerances act relative to
    the economy and a change of the money unit changes nothing; the allocation HiGHS
    returns is then re-checked in float64 on the original data (``converged``).

    Parameters
    ----------
    economy : MenuEconomy
        Any batch shape.
    convex_buyers : bool
        Relax buyer integrality (see above).
    time_limit : float
        Seconds per economy, ``> 0``; when hit, ``status`` is ``TIME_LIMIT``, the best
        allocation found (if any) is returned and ``upper_bound`` is HiGHS' dual bound.
    max_variables : int
        Refuse (ValueError) economies with more real options than this.
    mip_rel_gap : float
        HiGHS relative optimality gap in ``[0, 1)`` (0 = exact).
    progress : bool, optional
        Show a progress bar over the economies on standard error (``None``: only when the
        environment variable ``JAXWALRAS_PROGRESS=1`` is set).

    Returns
    -------
    EfficientAllocation

    Raises
    ------
    TypeError
        ``economy`` is not a MenuEconomy.
    ValueError
        A bad ``time_limit``, ``mip_rel_gap`` or ``max_variables``, or an economy larger
        than ``max_variables``.

    Examples
    --------
    >>> import jaxwalras as jw
    >>> opt = jw.efficient_allocation(jw.examples.milgrom_watt_table1())
    >>> round(float(opt.welfare), 4), bool(opt.converged)
    (0.7221, True)
    """
    A = _host(economy)
    X, V, bm, Y, C, sm = A
    if isinstance(time_limit, bool) or not isinstance(time_limit, (int, float, np.integer,
                                                                   np.floating)) \
            or not (np.isfinite(time_limit) and time_limit > 0):
        raise ValueError(f"time_limit: must be a positive number of seconds, got {time_limit!r}")
    if isinstance(mip_rel_gap, bool) or not isinstance(mip_rel_gap, (int, float, np.integer,
                                                                     np.floating)) \
            or not (0 <= mip_rel_gap < 1):
        raise ValueError(f"mip_rel_gap: must be a number in [0, 1), got {mip_rel_gap!r}")
    if isinstance(max_variables, bool) or not isinstance(max_variables, (int, np.integer)) \
            or max_variables < 1:
        raise ValueError(f"max_variables: must be a positive integer, got {max_variables!r}")
    nvar = int(bm.sum(axis=(-1, -2)).max(initial=0) + sm.sum(axis=(-1, -2)).max(initial=0))
    if nvar > max_variables:
        raise ValueError(f"efficient_allocation: an economy has {nvar} real options (MILP "
                         f"variables) > max_variables={max_variables}; the exact MILP is meant "
                         "for small economies (raise max_variables to try anyway, or use "
                         "welfare_bound for a certificate)")
    batch = X.shape[:-3]
    N, Kb, L = X.shape[-3:]
    F, Ks = C.shape[-2:]
    Af = economy.host_arrays(flat=True)
    flat = Af.n_markets
    out_w = np.zeros(flat)
    out_ub = np.zeros(flat)
    out_st = np.zeros(flat, np.int64)
    out_it = np.zeros(flat, np.int64)
    out_wb = np.zeros((flat, N, Kb))
    out_ws = np.zeros((flat, F, Ks))
    with Progress(flat, "efficient allocations", unit="economy", enabled=progress) as bar:
        for i in range(flat):  # host MILP: one economy at a time by nature
            (out_w[i], out_wb[i], out_ws[i], out_ub[i], out_st[i],
             out_it[i]) = _milp_one(Af.take(i), convex_buyers, float(time_limit),
                                    float(mip_rel_gap))
            bar.update()
    return EfficientAllocation(
        welfare=out_w.reshape(batch),
        buyer_choice=out_wb.argmax(-1).reshape(batch + (N,)),
        seller_choice=out_ws.argmax(-1).reshape(batch + (F,)),
        buyer_weights=out_wb.reshape(batch + (N, Kb)),
        upper_bound=out_ub.reshape(batch),
        converged=(out_st == Status.OK).reshape(batch),
        status=out_st.reshape(batch), iterations=out_it.reshape(batch))


def uplift(economy: MenuEconomy, prices: ArrayLike, seller_allocation: ArrayLike) -> np.ndarray:
    """Lost-opportunity-cost uplift of every seller at given prices.

    Seller ``f``'s lost opportunity cost at prices ``p`` is what it could earn on its own
    at ``p`` minus what it earns in the allocation:
    ``max_k (p.Y[f,k] - C[f,k]) - (p.y_f - c_f(y_f)) >= 0``, the seller term of the
    bound-form first welfare theorem (:func:`welfare_bound`).  Paid alongside convex-hull
    prices (the prices of :func:`jaxwalras.convexified_equilibrium`) for the efficient
    dispatch, it is the uplift that makes every unit willing to follow the dispatch
    (Gribik, Hogan and Pope, 2007).

    Parameters
    ----------
    economy : MenuEconomy
        Batch shape ``B``.
    prices : array_like, shape (..., L)
        Prices ``p >= 0`` (broadcast against ``B``).
    seller_allocation : integer options ``(..., F)`` or weights ``(..., F, Ks)``
        E.g. ``efficient_allocation(economy).seller_choice``.

    Returns
    -------
    ndarray, shape (..., F)
        Uplift per seller, in money.

    References
    ----------
    P. R. Gribik, W. W. Hogan and S. L. Pope, "Market-clearing electricity prices and
    energy uplift", 2007.  P. Milgrom and M. Watt, EC 2022 (the bound-form welfare theorem).

    Examples
    --------
    >>> import jaxwalras as jw
    >>> eco = jw.examples.milgrom_watt_table1()
    >>> jw.uplift(eco, [0.5], [4]).tolist()
    [0.0]
    """
    A = _host(economy)
    N = A.X.shape[-3]
    zeros = np.zeros(A.X.shape[:-3] + (N,), np.int64)
    return welfare_bound(economy, prices, zeros, seller_allocation).seller_losses
