"""LP baseline for buyer-optimal Walrasian prices, with HiGHS.

This is what a user would otherwise write: one pair of LPs per market.
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import linprog
from scipy.sparse import csr_matrix, vstack

from jaxwalras.multiunit import MultiUnitMarket

__all__ = ["lp_min_walrasian_prices"]


def _lp_one(v: np.ndarray, d: np.ndarray, s: np.ndarray) -> np.ndarray:
    n, m = v.shape
    if m == 0:
        return np.zeros(0, np.int64)
    if n == 0:
        return np.zeros(m, np.int64)
    nv = m + n + n * m
    k = np.arange(n * m)
    I, J = np.divmod(k, m)
    rows = np.repeat(k, 3)
    cols = np.stack([J, m + I, m + n + k], 1).ravel()
    A = csr_matrix((-np.ones(3 * n * m), (rows, cols)), shape=(n * m, nv))
    b = -v.ravel().astype(float)
    c = np.concatenate([s, d, np.tile(s, n)]).astype(float)
    r1 = linprog(c, A_ub=A, b_ub=b, bounds=(0, None), method="highs")
    if r1.status != 0:
        raise RuntimeError(f"HiGHS failed on the Lyapunov LP: {r1.message}")
    # least point of the optimal face: minimise sum p subject to objective <= optimum
    c2 = np.concatenate([np.ones(m), np.zeros(n + n * m)])
    A2 = vstack([A, csr_matrix(c[None, :])])
    b2 = np.concatenate([b, [r1.fun + 1e-9 * max(1.0, abs(r1.fun))]])
    r2 = linprog(c2, A_ub=A2, b_ub=b2, bounds=(0, None), method="highs")
    if r2.status != 0:
        raise RuntimeError(f"HiGHS failed on the least-price LP: {r2.message}")
    p = r2.x[:m]
    pr = np.round(p)
    if np.max(np.abs(p - pr), initial=0.0) > 1e-3:
        raise RuntimeError(f"LP prices are not integral within 1e-3: {p}")
    return pr.astype(np.int64)


def lp_min_walrasian_prices(market: MultiUnitMarket) -> np.ndarray:
    """Buyer-optimal Walrasian prices by linear programming (HiGHS via scipy).

    Minimises the Lyapunov function as the LP
    ``min sum_j s_j p_j + sum_i (d_i u_i + sum_j s_j w_ij)`` s.t.
    ``p_j + u_i + w_ij >= v_ij``, all variables ``>= 0``, then minimises ``sum_j p_j`` on the
    optimal face; the result is integral and equals ``p*`` (the Lyapunov function of Murota,
    Shioura and Yang, 2016, as an LP).  Dropping ``w`` would give the wrong "copy method"
    prices.  Loops over the batch (one LP pair per market): the CPU baseline of
    ``benchmarks/bench_auction.py``.

    Parameters
    ----------
    market : MultiUnitMarket
        Any batch shape.

    Returns
    -------
    ndarray of int64, shape (..., m)

    Raises
    ------
    RuntimeError
        HiGHS fails or returns non-integral prices.

    Examples
    --------
    >>> import jaxwalras as jw
    >>> mkt = jw.MultiUnitMarket([[4, 4], [5, 3]], demands=[2, 1], supplies=[1, 1])
    >>> jw.lp_min_walrasian_prices(mkt).tolist()
    [4, 2]
    """
    if not isinstance(market, MultiUnitMarket):
        raise TypeError(f"market: expected MultiUnitMarket, got {type(market).__name__}")
    v, d, s = market.host_arrays()
    batch = market.batch_shape
    n, m = market.n_buyers, market.n_objects
    B = int(np.prod(batch, dtype=np.int64))
    v, d, s = v.reshape(B, n, m), d.reshape(B, n), s.reshape(B, m)
    out = np.stack([_lp_one(v[b], d[b], s[b]) for b in range(B)]) if B else np.zeros((0, m))
    return out.reshape(batch + (m,)).astype(np.int64)
