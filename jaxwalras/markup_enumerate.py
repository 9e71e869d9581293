"""Least markup of small several-good economies by enumerating their pure allocations.

For a pure allocation (buyer options ``c_n``, seller options ``d_f``) whose production
covers consumption plus the set-aside, ``y - x >= R``, a markup outcome at markup
``alpha`` exists iff some seller prices ``p >= 0`` put every seller in its supply set at
``p`` and every buyer in its demand set at ``(1+alpha) p`` with no budget deficit
(Milgrom and Watt, 2022).  With ``u = 1/(1+alpha)`` the demand and supply conditions are
linear in ``(p, u)``::

    buyer n, option j:   p.(X[n,c_n] - X[n,j]) <= u (V[n,c_n] - V[n,j])
    seller f, option j:  p.(Y[f,j] - Y[f,d_f]) <= C[f,j] - C[f,d_f]

so one LP (maximise ``u``) gives the least markup ``a_lo`` these conditions allow for
the allocation; the budget ``p.x >= u p.y`` is bilinear.  Hence:

* ``min a_lo`` over the allocations is a certified LOWER BOUND on the least markup of any
  markup outcome (every outcome's allocation satisfies its own linear conditions);
* the search visits the allocations by increasing ``a_lo`` and, for each, tests the
  budget by an LP over ``p`` at ``a_lo`` and then at the grid markups above it (below
  the best found), and halves the last step to the best point found.  Every markup it
  returns has an outcome (certified afterwards in float64); it is certified least when it
  equals the lower bound.

Money enters only through ``V`` and ``C``; both are divided by the economy's own money
scale (the power of two of :func:`jaxwalras.highs.lp_scales`) before the LPs (``u`` is dimensionless), so the answer does not depend on the unit.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from .economy import MenuArrays
from .highs import dual_simplex, lp_scales
from .menu_host import SEARCH_RTOL, outcome_check
from .posted_markups import _outcomes

__all__ = ["EnumeratedMarkup", "least_markup_enumerated"]

_BISECT = 12          # halvings of the last grid step towards the best markup


class EnumeratedMarkup(NamedTuple):
    alpha: float            # the markup found (inf where none)
    p: np.ndarray           # (L,) seller prices
    cb: np.ndarray          # (N,) buyer options
    cs: np.ndarray          # (F,) seller options
    lower: float            # certified lower bound on the least markup
    exact: bool             # alpha == lower (certified least)
    found: bool
    lps: int                # LPs solved


def _rows(X, V, Y, C, bm, sm, cb, cs):
    """Linear demand/supply rows ``G [p; u] <= h`` of one allocation."""
    N, K, L = X.shape
    F = Y.shape[0]
    n, j = np.nonzero(bm & (np.arange(K)[None, :] != cb[:, None]))
    gb = np.concatenate([X[n, cb[n]] - X[n, j], -(V[n, cb[n]] - V[n, j])[:, None]], 1)
    f, k = np.nonzero(sm & (np.arange(Y.shape[1])[None, :] != cs[:, None]))
    gs = np.concatenate([Y[f, k] - Y[f, cs[f]], np.zeros((len(f), 1))], 1)
    G = np.concatenate([gb, gs])
    h = np.concatenate([np.zeros(len(n)), C[f, k] - C[f, cs[f]]])
    return G.reshape(-1, L + 1), h


def _max_u(G, h, u_min):
    """``max u`` s.t. ``G [p; u] <= h``, ``u_min <= u <= 1``, ``p >= 0``."""
    L = G.shape[1] - 1
    e = np.zeros((2, L + 1))
    e[0, L], e[1, L] = 1.0, -1.0
    A = sp.csc_matrix(np.vstack([G, e]))
    c = np.zeros(L + 1)
    c[L] = -1.0
    ok, z, _, _ = dual_simplex(c, A, A.shape[0], np.r_[h, 1.0, -u_min], np.zeros(0))
    return (float(z[L]) if ok and z is not None else None)


def _prices_at(G, h, x, y, u):
    """Seller prices with the demand/supply rows and the budget at ``u``, or None."""
    L = G.shape[1] - 1
    Gp = G[:, :L]
    hp = h - u * G[:, L]
    A = sp.csc_matrix(np.vstack([Gp, (u * y - x)[None, :]]))
    ok, p, _, _ = dual_simplex(np.ones(L), A, A.shape[0], np.r_[hp, 0.0], np.zeros(0))
    return p if ok and p is not None else None


def least_markup_enumerated(A: MenuArrays, R: np.ndarray, max_markup: float,
                            grid: np.ndarray, max_outcomes: int) -> EnumeratedMarkup:
    """Search one economy (unbatched ``MenuArrays``) over all its pure allocations."""
    X, V, bm, Y, C, sm = (np.asarray(a) for a in A)
    N, L = X.shape[0], X.shape[-1]
    F = Y.shape[0]
    A1 = MenuArrays(*(z[None] for z in (X, V, bm, Y, C, sm)))    # a batch of one
    s = float(lp_scales(A1, R[None])[0][0])      # the money scale every library LP uses
    Vn, Cn = np.where(bm, V / s, 0.0), np.where(sm, C / s, 0.0)
    out = _outcomes(bm, sm, max_outcomes)                       # (M, N + F)
    cbs, css = out[:, :N], out[:, N:]
    xs = X[np.arange(N), cbs] if N else np.zeros((len(out), 0, L))      # (M, N, L)
    ys = Y[np.arange(F), css]                                              # (M, F, L)
    x, y = xs.sum(1), ys.sum(1)
    # production covers consumption plus the set-aside, per good, to the tolerance of
    # outcome_check (relative to the quantities moved in that good)
    qtol = SEARCH_RTOL * (np.abs(xs).sum(1) + np.abs(ys).sum(1) + np.abs(R)[None, :])
    phys = np.all(y - x - R[None, :] >= -qtol, -1)
    u_min = 1.0 / (1.0 + max_markup)
    lps = 0
    cands = []
    for m in np.nonzero(phys)[0]:
        G, h = _rows(X, Vn, Y, Cn, bm, sm, cbs[m], css[m])
        u_hi = _max_u(G, h, u_min)
        lps += 1
        if u_hi is not None:
            cands.append((max(1.0 / min(u_hi, 1.0) - 1.0, 0.0), m, G, h))
    none = EnumeratedMarkup(np.inf, np.zeros(L), np.zeros(N, np.int64), np.zeros(F, np.int64),
                            float(max_markup), False, False, lps)
    if not cands:
        return none
    cands.sort(key=lambda t: t[0])
    lower = cands[0][0]
    best, best_sol = np.inf, None

    def attempt(a, m, G, h):
        """Prices at markup ``a`` for allocation ``m`` that pass the float64 certificate."""
        nonlocal lps
        lps += 1
        p = _prices_at(G, h, x[m], y[m], 1.0 / (1.0 + a))
        if p is None:
            return None
        p = np.maximum(p, 0.0) * s
        chk = outcome_check(A1, np.array([a]), p[None], cbs[m][None], css[m][None],
                            set_aside=R[None], rtol=SEARCH_RTOL)
        ok = bool(chk.buyers_ok[0] & chk.sellers_ok[0] & chk.feasible[0] & chk.prices_ok[0]
                  & chk.budget_ok[0])
        return p if ok else None

    for a_lo, m, G, h in cands:
        if a_lo >= best:
            break
        prev = a_lo
        for a in [a_lo] + [g for g in grid if a_lo < g < best]:
            p = attempt(a, m, G, h)
            if p is not None:
                best, best_sol = a, (p, m)
                lo, hi = prev, a                  # halve towards a feasible point below a
                for _ in range(_BISECT if a > a_lo else 0):
                    mid = 0.5 * (lo + hi)
                    pm = attempt(mid, m, G, h)
                    if pm is None:
                        lo = mid
                    else:
                        hi, best, best_sol = mid, mid, (pm, m)
                break
            prev = a
    if best_sol is None:
        return none._replace(lower=min(lower, float(max_markup)))
    p, m = best_sol
    return EnumeratedMarkup(float(best), p, cbs[m].astype(np.int64), css[m].astype(np.int64),
                            float(lower), bool(best <= lower), True, lps)
