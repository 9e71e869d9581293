"""LP baseline for buyer-optimal Walrasian prices, with HiGHS.

This is what a user would otherwise write: one pair of LPs per market, here solved on
values scaled to ``[0, 1]`` and finished exactly: the rounded LP prices are certified as
the least minimiser of the Lyapunov function by exact integer checks, and repaired by unit
steps of steepest descent where the LP's floating point answer is off.
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import linprog
from scipy.sparse import csr_matrix, vstack

from jaxwalras import checks as _checks
from jaxwalras.multiunit import MAX_VALUE, MultiUnitMarket, _check_market

__all__ = ["lp_min_walrasian_prices"]

#: unit steps the exact finish may take from the rounded LP prices before it gives up
#: (the LP is within a unit or two of ``p*`` in practice)
MAX_REPAIR_STEPS = 10_000


def _lp_prices(v: np.ndarray, d: np.ndarray, s: np.ndarray) -> np.ndarray:
    """LP estimate of ``p*`` (float): the Lyapunov LP on values scaled by a power of two
    into ``[0, 1]`` (an exact scaling), then the least total price on its optimal face."""
    n, m = v.shape
    scale = 2.0 ** int(np.ceil(np.log2(max(int(v.max(initial=0)), 1))))
    nv = m + n + n * m
    k = np.arange(n * m)
    I, J = np.divmod(k, m)
    rows = np.repeat(k, 3)
    cols = np.stack([J, m + I, m + n + k], 1).ravel()
    A = csr_matrix((-np.ones(3 * n * m), (rows, cols)), shape=(n * m, nv))
    b = -v.ravel().astype(float) / scale
    c = np.concatenate([s, d, np.tile(s, n)]).astype(float)
    r1 = linprog(c, A_ub=A, b_ub=b, bounds=(0, None), method="highs")
    if r1.status != 0:
        raise RuntimeError(f"HiGHS failed on the Lyapunov LP: {r1.message}")
    # least point of the optimal face: minimise sum p subject to objective <= optimum
    c2 = np.concatenate([np.ones(m), np.zeros(n + n * m)])
    A2 = vstack([A, csr_matrix(c[None, :])])
    b2 = np.concatenate([b, [r1.fun + 1e-9 * max(1.0, abs(r1.fun))]])
    r2 = linprog(c2, A_ub=A2, b_ub=b2, bounds=(0, None), method="highs")
    x = r2.x if r2.status == 0 else r1.x
    return x[:m] * scale


def _exact_finish(v: np.ndarray, d: np.ndarray, s: np.ndarray, p: np.ndarray) -> np.ndarray:
    """``p*`` from a nearby integer ``p`` by steepest descent of the L-natural-convex
    Lyapunov function with unit steps, every step decided by exact integer max flows
    (:mod:`jaxwalras.checks`): raise the minimal most overdemanded set while one exists
    (``Lyap`` falls), else lower the largest set ``X`` with ``Lyap(p - 1_X) <= Lyap(p)``
    while one exists (``Lyap`` falls, or stays minimal while ``sum p`` falls).  At the
    end no step lowers ``Lyap`` (a minimiser, Murota 2003, Thm. 7.14) and no price can be
    lowered at equal ``Lyap`` (the least minimiser, see
    :func:`jaxwalras.checks.is_buyer_optimal`): ``p = p*``."""
    p = np.where(s > 0, np.clip(p, 0, MAX_VALUE), 0).astype(np.int64)
    args = (v[None], d[None], s[None])
    for _ in range(MAX_REPAIR_STEPS):
        competitive, X = _checks.overdemanded_sets(*args, p[None])
        if not competitive[0]:
            p = p + X[0]
            continue
        _, Y = _checks.lowerable_sets(*args, p[None])
        if not Y[0].any():
            return p
        p = p - Y[0]
    raise RuntimeError(f"lp_min_walrasian_prices: the exact finish did not reach p* within "
                       f"{MAX_REPAIR_STEPS} unit steps of the LP prices")


def lp_min_walrasian_prices(market: MultiUnitMarket) -> np.ndarray:
    """Buyer-optimal Walrasian prices by linear programming (HiGHS via scipy).

    Minimises the Lyapunov function as the LP
    ``min sum_j s_j p_j + sum_i (d_i u_i + sum_j s_j w_ij)`` s.t.
    ``p_j + u_i + w_ij >= v_ij``, all variables ``>= 0``, then minimises ``sum_j p_j`` on the
    optimal face; the least point is integral and equals ``p*`` (the Lyapunov function of
    Murota, Shioura and Yang, 2016, as an LP).  Dropping ``w`` would give the wrong "copy
    method" prices.  Loops over the batch (one LP pair per market): the CPU baseline of
    ``benchmarks/bench_auction.py``.

    Exact for every market in range (values up to ``MAX_VALUE = 2**24``): the LPs are
    solved on values divided by a power of two (exact) that brings them into ``[0, 1]``;
    the rounded answer is then certified in exact integers as the least minimiser of the
    Lyapunov function, and moved by unit steps of steepest descent (each decided by an
    exact max flow) where HiGHS' floating point tolerances left it off by a unit.

    Parameters
    ----------
    market : MultiUnitMarket
        Any batch shape.

    Returns
    -------
    ndarray of int64, shape (..., m)

    Raises
    ------
    TypeError
        ``market`` is not a :class:`~jaxwalras.MultiUnitMarket`.
    RuntimeError
        HiGHS fails, or its answer is more than ``MAX_REPAIR_STEPS`` unit steps from
        ``p*`` (never observed).

    References
    ----------
    K. Murota, A. Shioura and Z. Yang, "Time bounds for iterative auctions: a unified
    approach by discrete convex analysis", Discrete Optimization 19, 2016.

    Examples
    --------
    >>> import jaxwalras as jw
    >>> mkt = jw.MultiUnitMarket([[4, 4], [5, 3]], demands=[2, 1], supplies=[1, 1])
    >>> jw.lp_min_walrasian_prices(mkt).tolist()
    [4, 2]
    """
    _check_market(market)
    v, d, s = market.host_arrays()
    batch = market.batch_shape
    n, m = market.n_buyers, market.n_objects
    B = int(np.prod(batch, dtype=np.int64))
    v, d, s = v.reshape(B, n, m), d.reshape(B, n), s.reshape(B, m)
    out = np.zeros((B, m), np.int64)
    if n and m:
        for b in range(B):
            out[b] = _exact_finish(v[b], d[b], s[b], np.round(_lp_prices(v[b], d[b], s[b])))
    return out.reshape(batch + (m,))
