"""Checking the Walrasian-equilibrium conditions of a multi-unit market, and the
buyer-optimality (least-price) certificate.

The Walrasian check is written in plain numpy on purpose (no shared code with the auction's
kernels), so it can serve as an independent check of the auction's output.  The
buyer-optimality certificate (:func:`is_buyer_optimal`) recomputes the greedy
preferred-bundle structure in numpy and decides with two host max flows (:mod:`jaxwalras.flows`)
whether the prices are the least minimiser of the Lyapunov function; every quantity is an
exact int64 integer.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .typing import ArrayLike
from jaxwalras import flows as _flows
from jaxwalras._validation import as_int_array
from jaxwalras.multiunit import MultiUnitMarket, _check_market, _check_prices

__all__ = ["check_walrasian", "is_walrasian", "is_buyer_optimal", "indirect_utility_np",
           "greedy_structure_np", "walrasian_ok", "least_prices_ok", "competitive_ok",
           "overdemanded_sets", "lowerable_sets", "certify_prices"]


def _payoff_sort(values, supplies, prices):
    """Every buyer's objects sorted by payoff, best first (stable): the payoffs ``us``,
    the supplies ``ss`` in that order and the flat indices ``order`` (into the
    ``(..., n, m)`` arrays) that sorted them; int64."""
    v = np.asarray(values, np.int64)
    u = v - np.asarray(prices, np.int64)[..., None, :]
    s = np.broadcast_to(np.asarray(supplies, np.int64)[..., None, :], u.shape)
    m = u.shape[-1]
    order = np.argsort(-u, axis=-1, kind="stable")
    rows = int(np.prod(u.shape[:-1], dtype=np.int64))
    flat = order + (np.arange(rows, dtype=np.int64) * m).reshape(u.shape[:-1] + (1,))
    return u.ravel()[flat], s.ravel()[flat], flat


def indirect_utility_np(values: np.ndarray, demands: np.ndarray, supplies: np.ndarray,
                        prices: np.ndarray, _sorted=None) -> np.ndarray:
    """``V_i(p)``: the sum of buyer ``i``'s ``d_i`` best positive unit payoffs, where object
    ``j`` offers ``s_j`` units of payoff ``v_ij - p_j`` (batched numpy, int64)."""
    us, ss, _ = _payoff_sort(values, supplies, prices) if _sorted is None else _sorted
    before = np.cumsum(ss, axis=-1) - ss
    take = np.clip(np.asarray(demands, np.int64)[..., None] - before, 0, ss)
    return np.where(us > 0, take * us, 0).sum(-1)


def greedy_structure_np(values: np.ndarray, demands: np.ndarray, supplies: np.ndarray,
                        prices: np.ndarray, _sorted=None) -> tuple[np.ndarray, ...]:
    """Greedy preferred-bundle structure in numpy (int64), batched over leading axes.

    Returns ``(strict F, marginal M, r, case_a)`` with the definitions of
    :mod:`jaxwalras.kernels.greedy`: objects of positive payoff, grouped into payoff levels
    best first; ``F_i`` the levels bought whole (the supply up to and including the level
    is ``< d_i``); in case A ``M_i`` is the first level that reaches ``d_i`` and
    ``r_i = d_i - s(F_i)``; in case B (positive levels run out first) ``M_i`` is the set
    of zero-payoff objects and ``r_i = 0``.  A sort-based implementation independent of the
    device kernel's pairwise one.
    """
    us, ss, flat = _payoff_sort(values, supplies, prices) if _sorted is None else _sorted
    d = np.asarray(demands, np.int64)[..., None]
    m = us.shape[-1]
    incl = np.cumsum(ss, axis=-1)
    # supply of strictly better levels / of levels up to and including one's own: a level
    # starts where the payoff changes; its first position's exclusive and its last
    # position's inclusive cumulative supply, spread over the level
    first = np.ones(us.shape, bool)
    if m:
        first[..., 1:] = us[..., 1:] != us[..., :-1]
    excl = incl - ss
    before = np.maximum.accumulate(np.where(first, excl, 0), axis=-1)
    last = np.ones(us.shape, bool)
    if m:
        last[..., :-1] = first[..., 1:]
    big = np.iinfo(np.int64).max
    through = np.flip(np.minimum.accumulate(np.flip(np.where(last, incl, big), -1), axis=-1),
                      -1)
    pos = us > 0
    strict_s = pos & (through < d)
    marg_s = pos & (through >= d) & (before < d)
    case_a = marg_s.any(-1) & (d[..., 0] > 0)
    marg_s = np.where(case_a[..., None], marg_s, us == 0)
    strict = np.empty(us.shape, bool)
    marginal = np.empty(us.shape, bool)
    strict.ravel()[flat.ravel()] = strict_s.ravel()
    marginal.ravel()[flat.ravel()] = marg_s.ravel()
    r = np.where(case_a, d[..., 0] - np.where(strict_s, ss, 0).sum(-1), 0)
    return strict, marginal, r, case_a


def walrasian_ok(values: np.ndarray, demands: np.ndarray, supplies: np.ndarray,
                 prices: np.ndarray, allocation: np.ndarray,
                 utility: np.ndarray | None = None) -> np.ndarray:
    """Batched exact test of every condition of :func:`check_walrasian` (int64 numpy):
    ``(B, ...)`` arrays in, ``(B,)`` bool out.  ``utility``: the indirect utilities
    ``V_i(p)`` if already known (default :func:`indirect_utility_np`)."""
    v, d, s, p, x = (np.asarray(a, np.int64) for a in (values, demands, supplies, prices,
                                                        allocation))
    if utility is None:
        utility = indirect_utility_np(v, d, s, p)
    sold = x.sum(-2)
    ok = (p >= 0).all(-1) & (x >= 0).all((-2, -1))
    ok &= (sold <= s).all(-1) & (x.sum(-1) <= d).all(-1)
    ok &= ((x * (v - p[..., None, :])).sum(-1) == utility).all(-1)
    ok &= ~((p > 0) & (sold < s)).any(-1)
    ok &= x.sum((-2, -1)) == np.minimum(s.sum(-1), d.sum(-1))
    return ok


def _flow_by_kind(net, flow, kind, n_markets):
    sel = net.kind == kind
    return np.bincount(net.market[sel], weights=flow[sel], minlength=n_markets
                       ).astype(np.int64)


def overdemanded_sets(values, demands, supplies, prices) -> tuple[np.ndarray, np.ndarray]:
    """``(competitive (B,), X (B, m))``: whether no object set is overdemanded at ``p`` (a
    max flow of the network N(p), built from :func:`greedy_structure_np`, saturates every
    source arc; equivalently no ``Lyap(p + 1_X) < Lyap(p)``), and the inclusion-minimal
    most overdemanded set ``X`` (objects on the source side of the left-most min cut)."""
    F, M, r, _ = greedy_structure_np(values, demands, supplies, prices)
    net = _flows.auction_network(F, M, r, np.asarray(supplies, np.int64))
    _, saturated, reach = _flows.solve_max_flow(net, len(r))
    assert reach is not None      # cut=True returns the reachable nodes
    return saturated, reach[net.object_node] & ~saturated[:, None]


def lowerable_sets(values, demands, supplies, prices, structure=None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """``(down_optimal (B,), X (B, m))``: whether no ``Lyap(p - 1_X) < Lyap(p)`` (over
    ``X`` within ``P = {j : p_j > 0, s_j > 0}``), and the largest ``X`` within ``P``
    minimising ``h(X) = Lyap(p - 1_X) - Lyap(p)`` (empty iff every nonempty such ``X``
    has ``h(X) > 0``).

    For integer data ``V_i(p - 1_X) = V_i(p) + max_{x in D_i(p)} x(X)`` (the indirect
    utility is linear between integer points), so
    ``h(X) = sum_i [s(F_i & X) + min(r'_i, s(M_i & X))] - s(X)`` with ``r'_i = r_i``
    (case A) or ``d_i - s(F_i)`` (case B).  ``h`` is the cut function of the network that
    reverses N(p) with ``r'`` and only the objects of ``P`` wired to the sink: a cut whose
    sink side holds the objects ``X`` (and the best buyer nodes) costs ``s(P) + h(X)``.
    So ``min h = 0`` iff a max flow saturates every sink arc, and the largest minimiser is
    the set of ``P``-objects on the sink side of the left-most min cut (those not
    reachable from the source in the residual graph).
    """
    p = np.asarray(prices, np.int64)
    s = np.asarray(supplies, np.int64)
    d = np.asarray(demands, np.int64)
    F, M, r, case_a = (greedy_structure_np(values, d, s, p) if structure is None
                       else structure)
    A = len(r)
    sF = (F * s[:, None, :]).sum(-1)
    r2 = np.where(case_a, r, d - sF)
    P = (p > 0) & (s > 0)
    bm = np.concatenate([F & (s > 0)[:, None, :],
                         M & (s > 0)[:, None, :] & (r2 > 0)[:, :, None]], axis=1)
    net = _flows.network_from_arcs(bm, np.cumsum(bm, axis=1, dtype=np.int32) - 1,
                                   np.concatenate([sF, r2], axis=1), s,
                                   sink_caps=np.where(P, s, 0))
    flow, _, reach = _flows.solve_max_flow(net, A)
    assert reach is not None
    full = _flow_by_kind(net, flow, _flows.OBJ_SNK, A) == np.where(P, s, 0).sum(-1)
    return full, P & ~reach[net.object_node]


def competitive_ok(values, demands, supplies, prices) -> np.ndarray:
    """``(B,)`` bool: no object set is overdemanded at ``p`` (:func:`overdemanded_sets`)."""
    return overdemanded_sets(values, demands, supplies, prices)[0]


def least_prices_ok(values, demands, supplies, prices, structure=None) -> np.ndarray:
    """``(B,)`` bool: no price can be lowered, i.e. no nonempty object set ``X`` with
    ``p_j > 0`` on ``X`` has ``Lyap(p - 1_X) <= Lyap(p)`` (:func:`lowerable_sets`; an
    object with ``p_j > 0`` and ``s_j = 0`` can always be lowered)."""
    p = np.asarray(prices, np.int64)
    s = np.asarray(supplies, np.int64)
    full, X = lowerable_sets(values, demands, s, p, structure)
    return full & ~X.any(-1) & ~((p > 0) & (s == 0)).any(-1)


def certify_prices(values, demands, supplies, prices, allocation=None) -> np.ndarray:
    """``(B,)`` bool: ``prices`` are ``p*`` (and ``allocation``, if given, is Walrasian at
    them): the final check of the auction.  With an allocation, the Walrasian test of
    :func:`walrasian_ok` proves ``p`` a minimiser of ``Lyap``; without one,
    :func:`competitive_ok` and the full sink arcs of :func:`lowerable_sets` do; then
    :func:`least_prices_ok` proves it the least one."""
    v, d, s, p = (np.asarray(a, np.int64) for a in (values, demands, supplies, prices))
    srt = _payoff_sort(v, s, p)
    st = greedy_structure_np(v, d, s, p, srt)
    if allocation is None:
        ok = overdemanded_sets(v, d, s, p)[0]
    else:          # V_i(p) from its definition (the d_i best units), not the structure
        ok = walrasian_ok(v, d, s, p, allocation, indirect_utility_np(v, d, s, p, srt))
    return ok & least_prices_ok(v, d, s, p, st)


def _violations(v, d, s, p, x) -> list[str]:
    out: list[str] = []
    if np.any(p < 0):
        out.append(f"negative prices at objects {np.nonzero(p < 0)[0].tolist()}")
    if np.any(x < 0):
        out.append("negative allocation entries")
    sold = x.sum(0)
    got = x.sum(1)
    over_s = np.nonzero(sold > s)[0]
    if len(over_s):
        out.append(f"supply exceeded at objects {over_s.tolist()} (sold {sold[over_s].tolist()},"
                   f" supply {s[over_s].tolist()})")
    over_d = np.nonzero(got > d)[0]
    if len(over_d):
        out.append(f"demand exceeded for buyers {over_d.tolist()}")
    util = (x * (v - p[None, :])).sum(1)
    best = indirect_utility_np(v, d, s, p)
    bad = np.nonzero(util != best)[0]
    if len(bad):
        out.append(f"buyers {bad.tolist()} do not get a preferred bundle (utility "
                   f"{util[bad].tolist()} < best {best[bad].tolist()})")
    unsold = np.nonzero((p > 0) & (sold < s))[0]
    if len(unsold):
        out.append(f"objects {unsold.tolist()} have unsold units at a positive price")
    if x.sum() != min(s.sum(), d.sum()) and not (len(over_s) or len(over_d)):
        out.append(f"not market-clearing: {x.sum()} units sold, min(sum s, sum d) = "
                   f"{min(s.sum(), d.sum())}")
    return out


def _prepare(market: MultiUnitMarket, prices: Any, allocation: Any):
    _check_market(market)
    v, d, s = market.host_arrays()
    p = as_int_array(prices, "prices", min_ndim=1, nonnegative=False)
    x = as_int_array(allocation, "allocation", min_ndim=2, nonnegative=False)
    batch = market.batch_shape
    n, m = market.n_buyers, market.n_objects
    if p.shape != batch + (m,):
        raise ValueError(f"prices: expected shape {batch + (m,)}, got {p.shape}")
    if x.shape != batch + (n, m):
        raise ValueError(f"allocation: expected shape {batch + (n, m)}, got {x.shape}")
    B = int(np.prod(batch, dtype=np.int64))
    return (v.reshape(B, n, m), d.reshape(B, n), s.reshape(B, m), p.reshape(B, m),
            x.reshape(B, n, m), batch)


def check_walrasian(market: MultiUnitMarket, prices: ArrayLike, allocation: ArrayLike) -> list[str]:
    """The violated Walrasian-equilibrium conditions; an empty list means Walrasian.

    Conditions (Eickhoff et al., 2024, §1): prices ``>= 0``; supply and demand respected; every buyer gets
    a preferred bundle (utility equals the indirect utility ``V_i(p)``); every object with
    unsold units has price 0; and the allocation is market-clearing,
    ``sum x = min(sum s, sum d)``. For a batch, each message starts with the market index.

    Parameters
    ----------
    market : MultiUnitMarket
    prices : array_like of int, shape (..., m)
    allocation : array_like of int, shape (..., n, m)

    Returns
    -------
    list of str
        One message per violated condition.

    Examples
    --------
    >>> import jaxwalras as jw
    >>> mkt = jw.MultiUnitMarket([[10], [4]], demands=[2, 1], supplies=[2])
    >>> jw.check_walrasian(mkt, [4], [[2], [0]])
    []
    >>> jw.check_walrasian(mkt, [3], [[2], [0]])
    ['buyers [1] do not get a preferred bundle (utility [0] < best [1])']
    """
    v, d, s, p, x, batch = _prepare(market, prices, allocation)
    msgs: list[str] = []
    for b in range(v.shape[0]):
        for msg in _violations(v[b], d[b], s[b], p[b], x[b]):
            idx = tuple(int(i) for i in np.unravel_index(b, batch))
            prefix = f"market {idx}: " if batch else ""
            msgs.append(prefix + msg)
    return msgs


def is_walrasian(market: MultiUnitMarket, prices: ArrayLike, allocation: ArrayLike) -> np.ndarray:
    """Boolean array of shape ``batch_shape``: does each market satisfy every condition of
    :func:`check_walrasian`?

    Examples
    --------
    >>> import jaxwalras as jw
    >>> mkt = jw.MultiUnitMarket([[10], [4]], demands=[2, 1], supplies=[2])
    >>> bool(jw.is_walrasian(mkt, [4], [[2], [0]]))
    True
    """
    v, d, s, p, x, batch = _prepare(market, prices, allocation)
    return walrasian_ok(v, d, s, p, x).reshape(batch)


def is_buyer_optimal(market: MultiUnitMarket, prices: ArrayLike) -> np.ndarray:
    """Are ``prices`` the buyer-optimal Walrasian prices ``p*`` of each market?

    ``p*`` is the least minimiser of the L-natural-convex Lyapunov function
    ``Lyap(p) = sum_j s_j p_j + sum_i V_i(p)`` over integer ``p >= 0`` (Murota, Shioura and
    Yang, 2016; Eickhoff et al., 2024).  By the optimality criterion for L-natural-convex
    functions (Murota, 2003, Thm. 7.14) ``p`` is a minimiser iff no step ``p + 1_X`` or
    ``p - 1_X`` lowers ``Lyap``; and a minimiser is the *least* one iff no nonempty
    ``X`` with ``p_j > 0`` on ``X`` has ``Lyap(p - 1_X) = Lyap(p)``: if a minimiser
    ``q <= p``, ``q != p`` exists, the L-natural inequality
    ``Lyap(p) + Lyap(q) >= Lyap(p - 1_X) + Lyap(q + 1_X)`` for
    ``X = argmax_j (p_j - q_j)`` (Murota, 2003, Thm. 7.7) makes ``p - 1_X`` a minimiser.
    Each test is one host max flow (:func:`overdemanded_sets`, :func:`lowerable_sets`) on
    the greedy structure recomputed in numpy; everything is exact integer arithmetic and
    no allocation is needed.

    Parameters
    ----------
    market : MultiUnitMarket
        Any batch shape.
    prices : array_like of int, shape (..., m)
        Non-negative integer prices (at most ``MAX_VALUE``).

    Returns
    -------
    ndarray of bool, shape (...)

    Raises
    ------
    TypeError, ValueError
        Not a market, or prices that are not integers in ``[0, MAX_VALUE]`` of the right
        shape.

    References
    ----------
    K. Murota, *Discrete Convex Analysis*, SIAM, 2003.

    Examples
    --------
    >>> import jaxwalras as jw
    >>> mkt = jw.MultiUnitMarket([[10], [4]], demands=[2, 1], supplies=[2])
    >>> jw.is_buyer_optimal(mkt, [4]).tolist(), jw.is_buyer_optimal(mkt, [5]).tolist()
    (True, False)
    """
    _check_market(market)
    p = np.asarray(_check_prices(market, prices), np.int64)
    v, d, s = market.host_arrays()
    batch = market.batch_shape
    n, m = market.n_buyers, market.n_objects
    B = int(np.prod(batch, dtype=np.int64))
    v, d, s, p = v.reshape(B, n, m), d.reshape(B, n), s.reshape(B, m), p.reshape(B, m)
    ok = least_prices_ok(v, d, s, p) & competitive_ok(v, d, s, p)
    return ok.reshape(batch)
