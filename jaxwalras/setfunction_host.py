"""Host exact steps of the combinatorial family, in float64 numpy: the configuration LP
(HiGHS through :mod:`jaxwalras.highs`), the Walrasian-equilibrium check, supporting item
prices, and the host check of the ascending auction's stopping rule.

Every LP here is solved for ONE market at a time on its values divided by the market's
own scale, so HiGHS' tolerances act relative to that scale and no batch mate can change
a market's answer (Bikhchandani and Mamer, 1997, for the LP; Gul and Stacchetti, 1999,
for the Lyapunov function).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .highs import dual_simplex
from .setfunction import set_bits

__all__ = ["LP_RTOL", "nonredundant_sets", "config_dual_lp", "we_violation",
           "supporting_prices", "lyapunov_host", "ascent_improvement"]

#: Accuracy of HiGHS' answers relative to the LP's data scale (its primal and dual
#: feasibility tolerance): the host checks of LP-derived prices allow this much, times
#: the number of items a set can hold, relative to the market's scale.
LP_RTOL = 1e-7


def nonredundant_sets(values: np.ndarray) -> np.ndarray:
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


def config_dual_lp(values: np.ndarray, minimal: bool = False
                   ) -> tuple[bool, float, np.ndarray, int]:
    """The dual configuration LP ``min sum p + sum u  s.t.  u_i + p(S) >= v_i(S), p, u >= 0``
    of one market (pass values divided by the market's scale) by HiGHS' dual simplex; with
    ``minimal`` a second LP takes the least total price on its optimal face.
    Returns ``(ok, value, prices, simplex iterations)``."""
    n, t = values.shape
    m = t.bit_length() - 1
    keep = nonredundant_sets(values)
    ii, ss = np.nonzero(keep)
    if len(ii) == 0:
        return True, 0.0, np.zeros(m), 0
    R = len(ii)
    # CSC directly: item column j holds the rows of the sets containing j; buyer column i
    # the rows of buyer i (``ii`` is sorted, so they are contiguous)
    c_j, r_j = np.nonzero(set_bits(m)[ss].T)
    counts = np.r_[np.bincount(c_j, minlength=m), np.bincount(ii, minlength=n)]
    indptr = np.r_[0, np.cumsum(counts)].astype(np.int32)
    indices = np.r_[r_j, np.arange(R)].astype(np.int32)
    a = sp.csc_matrix((-np.ones(len(indices)), indices, indptr), shape=(R, m + n))
    b = -values[ii, ss]
    ok, x, _, nit = dual_simplex(np.ones(m + n), a, R, b, np.zeros(0))
    if not ok or x is None:
        return False, float("nan"), np.full(m, np.nan), nit
    val = float(x.sum())
    if minimal:   # least total price on the optimal face (the minimal WE prices for GS)
        cap = val + 1e-9 * max(1.0, abs(val))
        a2 = sp.vstack([a, sp.csr_matrix(np.ones((1, m + n)))]).tocsc()
        ok2, x2, _, nit2 = dual_simplex(np.r_[np.ones(m), np.zeros(n)], a2, R + 1,
                                        np.r_[b, cap], np.zeros(0))
        nit += nit2
        if ok2 and x2 is not None:
            x = x2
    return True, val, np.maximum(np.asarray(x[:m]), 0.0), nit


def we_violation(values: np.ndarray, prices: np.ndarray, alloc: np.ndarray) -> np.ndarray:
    """Largest Walrasian violation per market (host, float64): a buyer's regret (best
    utility minus the utility of her set) or a positive price on an unsold item."""
    m = prices.shape[-1]
    util = values - prices[..., None, :] @ set_bits(m).T.astype(float)       # (..., n, 2^m)
    held = np.take_along_axis(util, alloc[..., None], axis=-1)[..., 0]
    regret = (util.max(axis=-1) - held).max(axis=-1)
    sold = np.bitwise_or.reduce(alloc, axis=-1)
    unsold_price = np.where(((sold[..., None] >> np.arange(m)) & 1) == 0, prices, 0.0)
    return np.maximum(regret, unsold_price.max(axis=-1, initial=0.0))


def supporting_prices(values: np.ndarray, alloc: np.ndarray) -> np.ndarray | None:
    """Item prices ``p >= 0`` with every ``alloc_i`` in buyer ``i``'s demand (a feasibility
    LP of one market; pass values divided by the market's scale), or None."""
    n, t = values.shape
    m = t.bit_length() - 1
    bits = set_bits(m).astype(float)
    # v_i(A_i) - p(A_i) >= v_i(S) - p(S)  <=>  p(A_i) - p(S) <= v_i(A_i) - v_i(S)
    rows = (bits[alloc][:, None, :] - bits[None, :, :]).reshape(n * t, m)
    rhs = (values[np.arange(n), alloc][:, None] - values).reshape(n * t)
    keep = np.any(rows != 0, axis=1) | (rhs < 0)
    if np.any(rhs[~keep] < -1e-12):
        return None
    rows, rhs = rows[keep], rhs[keep]
    if len(rhs) == 0:
        return np.zeros(m)
    ok, x, _, _ = dual_simplex(np.zeros(m), sp.csc_matrix(rows), len(rhs), rhs + 1e-12,
                               np.zeros(0))
    return np.maximum(np.asarray(x), 0.0) if ok else None


def lyapunov_host(values: np.ndarray, prices: np.ndarray) -> np.ndarray:
    """``L(p) = sum_j p_j + sum_i max_S (v_i(S) - p(S))`` in float64 for ``(..., n, 2^m)``
    values and ``(..., K, m)`` price vectors: ``(..., K)``."""
    m = prices.shape[-1]
    cost = prices @ set_bits(m).T.astype(float)                          # (..., K, 2^m)
    best = (values[..., None, :, :] - cost[..., :, None, :]).max(-1)     # (..., K, n)
    return prices.sum(-1) + best.sum(-1)


def ascent_improvement(values: np.ndarray, prices: np.ndarray, step: np.ndarray
                       ) -> np.ndarray:
    """Per market ``L(p) - min_X L(p + step 1_X)`` over all ``2^m`` item sets ``X``
    (float64, host; ``>= 0``), for ``(B, n, 2^m)`` values, ``(B, m)`` prices and ``(B,)``
    steps; one market at a time to bound memory (``n 4^m`` floats)."""
    nb, _, t = values.shape
    m = prices.shape[-1]
    bits = set_bits(m).astype(float)                                    # (2^m, m)
    out = np.empty(nb)
    for b in range(nb):
        lv = lyapunov_host(values[b], prices[b][None, :] + bits * step[b])
        out[b] = lv[0] - lv.min()
    return out
