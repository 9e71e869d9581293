"""Exact small LPs on the device: a dense-tableau simplex, one LP per batch element.

* :func:`convexified_lp_simplex` -- exact vertex optimum of one small convexified LP by the
  dual simplex method (vmap it over a batch of economies x markups);
* :func:`max_budget_prices` -- best prices for a given pure allocation (the markup
  mechanism's re-pricing step; an LP in ``p`` solved through its ``L``-row dual);
* :func:`lex_min_prices` -- the lexicographically smallest point of a price polyhedron
  (the canonical optimal prices of a convexified equilibrium).

Both share one pivot loop (:func:`_simplex_loop`).  They run in the caller's float dtype:
the library calls them under a scoped ``jax.enable_x64(True)`` (float64 pivots).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["convexified_lp_simplex", "max_budget_prices", "lex_min_prices"]


# ---------------------------------------------------------------------------------------
# Exact small LPs on the device: dense-tableau simplex, one LP per batch element
# ---------------------------------------------------------------------------------------
def _pivot(T, d, r, e):
    """Pivot the tableau ``T`` (rows, cols+1) and reduced-cost row ``d`` on (r, e)."""
    pr = T[r] / T[r, e]
    f = T[:, e].at[r].add(-1.0)                # row r becomes pr, the others T_i - T_ie pr
    return T - f[:, None] * pr[None, :], d - d[e] * pr


def _simplex_loop(T, d, basis, choose):
    """Pivot until ``choose(T, d, it) -> (row, col, status)`` reports ``status >= 0``.

    Returns the final tableau, reduced costs, basis, status and iteration count."""
    def body(c):
        T, d, basis, r, e, _, it = c
        T, d = _pivot(T, d, r, e)
        basis = basis.at[r].set(e)
        r, e, status = choose(T, d, it + 1)
        return T, d, basis, r, e, status, it + 1

    T, d, basis, _, _, status, it = jax.lax.while_loop(
        lambda c: c[5] < 0, body, (T, d, basis) + choose(T, d, 0) + (jnp.array(0),))
    return T, d, basis, status, it


def convexified_lp_simplex(X, V, bm, Y, C, sm, alpha, R, max_iter: int = 200,
                           tol: float = 1e-9):
    """Exact vertex optimum of ONE convexified economy's LP by the dual simplex method.

    The convexified LP (Milgrom and Watt, 2022), in minimisation form with a slack ``s_l`` per good::

        min  -sum lam V/(1+alpha) + sum mu C
        s.t. sum_k lam[n,k] = 1,  sum_k mu[f,k] = 1,   (one row per agent)
             sum X lam - sum Y mu + s = -R,             (one row per good)
             lam, mu, s >= 0.

    Start: every agent at its best option at ``p = 0`` (max value / min cost) and the slacks
    basic.  That basis is dual feasible (every reduced cost is ``V_best - V_k >= 0`` or
    ``C_k - C_best >= 0``), so the DUAL simplex applies: while some basic variable is
    negative (a good over-demanded, prices must rise), the most negative row leaves and the
    entering column is chosen by the ratio test on the reduced costs (ties: lowest index).
    No negative entry in the leaving row proves the LP infeasible (reserve above capacity).
    At the optimum the prices are the reduced costs of the slacks, ``p_l = d[s_l] >= 0``, and
    the basic solution is a vertex: one basic variable per agent row plus at most ``L`` more,
    so at most ``L`` agents mix (Shapley-Folkman structure).  Dense tableau of
    ``(N+F+L) x (N Kb + F Ks + L)``: meant for SMALL economies (vmap over a batch).

    Parameters: one economy (no batch axes), ``alpha`` scalar, ``R`` (L,); values and
    bundles should be normalised to O(1) (``tol`` is absolute).  ``max_iter`` caps the pivots.

    Returns ``(prices (L,), lam (N, Kb), mu (F, Ks), status, iterations)`` with status 0
    optimal, 1 infeasible, 2 iteration cap reached.
    """
    N, Kb, L = X.shape
    F, Ks = C.shape
    dt = V.dtype
    nb, ns = N * Kb, F * Ks
    n = nb + ns + L
    A = N + F
    cost = jnp.concatenate([-V.reshape(-1) / (1.0 + alpha), C.reshape(-1), jnp.zeros(L, dt)])
    elig = jnp.concatenate([bm.reshape(-1), sm.reshape(-1), jnp.ones(L, bool)])
    coup = jnp.concatenate([X.reshape(nb, L), -Y.reshape(ns, L), jnp.eye(L, dtype=dt)])  # (n, L)
    owner = jnp.concatenate([jnp.repeat(jnp.arange(N), Kb), N + jnp.repeat(jnp.arange(F), Ks),
                             jnp.full(L, -1)])
    b0 = jnp.argmax(jnp.where(bm, V, -jnp.inf), -1) + jnp.arange(N) * Kb
    s0 = nb + jnp.argmin(jnp.where(sm, C, jnp.inf), -1) + jnp.arange(F) * Ks
    base_col = jnp.concatenate([b0, s0])                                 # (A,)
    basis = jnp.concatenate([base_col, nb + ns + jnp.arange(L)])         # (A + L,)
    own_base = jnp.where(owner >= 0, base_col[jnp.maximum(owner, 0)], 0)  # (n,)
    is_agent = owner >= 0
    # T = B^{-1} A (agent rows: indicators; good rows: coupling minus the base option's)
    agent_rows = (owner[None, :] == jnp.arange(A)[:, None]).astype(dt)
    good_rows = (coup - jnp.where(is_agent[:, None], coup[own_base], 0.0)).T   # (L, n)
    rhs = jnp.concatenate([jnp.ones(A, dt), -R - coup[base_col].sum(0)])
    T = jnp.concatenate([jnp.concatenate([agent_rows, good_rows], 0), rhs[:, None]], 1)
    d = cost - jnp.where(is_agent, cost[own_base], 0.0)
    d = jnp.concatenate([d, -jnp.sum(cost[base_col])[None]])             # objective (negated)

    def choose(T, d, it):
        """Leaving row (most negative basic value), entering column (dual ratio test)."""
        r = jnp.argmin(T[:, -1])
        row = T[r, :-1]
        cand = elig & (row < -tol)
        ratio = jnp.where(cand, jnp.maximum(d[:-1], 0.0) / jnp.where(cand, -row, 1.0), jnp.inf)
        e = jnp.argmin(ratio)
        status = jnp.where(T[r, -1] >= -tol, 0,
                           jnp.where(~jnp.isfinite(ratio[e]), 1, jnp.where(it >= max_iter, 2, -1)))
        return r, e, status

    T, d, basis, status, it = _simplex_loop(T, d, basis, choose)
    xval = jnp.zeros(n, dt).at[basis].add(jnp.clip(T[:, -1], 0.0, None))
    lam = jnp.clip(xval[:nb], 0.0, 1.0).reshape(N, Kb)
    mu = jnp.clip(xval[nb:nb + ns], 0.0, 1.0).reshape(F, Ks)
    prices = jnp.maximum(d[nb + ns:n], 0.0)
    return prices, lam, mu, status, it


def _price_lp(G, h, c, pmax, max_iter: int, tol: float):
    """``max c.p  s.t.  G p <= h,  0 <= p <= pmax`` (``L`` variables) through its ``L``-row
    dual ``min h.u + pmax.z`` s.t. ``G^T u + z - s = c``, ``u, z, s >= 0``; start basis
    ``z_l`` (``c_l > 0``) or ``s_l``, primal simplex with Dantzig's rule.  The optimal
    ``p`` is read off the reduced costs of ``s``.  Returns ``(p, status)``: 0 optimal,
    1 the ``p``-LP is infeasible, 2 cap."""
    L = c.shape[-1]
    dt = c.dtype
    M = G.shape[0]
    pmax = jnp.broadcast_to(jnp.asarray(pmax, dt), (L,))
    sgn = jnp.where(c > 0, 1.0, -1.0).astype(dt)
    eye = jnp.eye(L, dtype=dt)
    # columns: u (M), z (L), s (L); rows scaled by sgn so the start basis is the identity
    T = jnp.concatenate([G.T, eye, -eye, c[:, None]], 1) * sgn[:, None]
    cost = jnp.concatenate([h, pmax, jnp.zeros(L, dt), jnp.zeros(1, dt)])
    basis = jnp.where(c > 0, M + jnp.arange(L), M + L + jnp.arange(L))
    d = cost - cost[basis] @ T

    def choose(T, d, it):
        """Entering column (most negative reduced cost), leaving row (ratio test)."""
        e = jnp.argmin(d[:-1])
        col = T[:, e]
        cand = col > tol
        ratio = jnp.where(cand, jnp.maximum(T[:, -1], 0.0) / jnp.where(cand, col, 1.0), jnp.inf)
        r = jnp.argmin(ratio)
        status = jnp.where(d[e] >= -tol, 0,
                           jnp.where(~jnp.isfinite(ratio[r]), 1, jnp.where(it >= max_iter, 2, -1)))
        return r, e, status

    T, d, basis, status, it = _simplex_loop(T, d, basis, choose)
    p = jnp.clip(d[M + L:M + 2 * L], 0.0, pmax)
    return p, status


def max_budget_prices(Xw, Vw, bm, Yw, Cw, sm, x, y, alpha, pmax, max_iter: int = 64,
                      tol: float = 1e-9, slack: float = 1e-10):
    """Prices that keep a GIVEN pure allocation in everyone's demand/supply sets and maximise
    the budget surplus (ONE allocation; vmap over a batch).

    Buyer ``n`` holds option ``w_n``, seller ``f`` option ``w_f``; inputs are the differences
    to the held option: ``Xw[n,k] = X[n,w_n] - X[n,k]``, ``Vw[n,k] = V[n,w_n] - V[n,k]``,
    ``Yw[f,k] = Y[f,k] - Y[f,w_f]``, ``Cw[f,k] = C[f,k] - C[f,w_f]``.  The LP in ``p``::

        max  ((1+alpha) x - y).p
        s.t. (1+alpha) Xw[n,k].p <= Vw[n,k] + slack   (buyers keep w_n at (1+alpha) p)
             Yw[f,k].p <= Cw[f,k] + slack             (sellers keep w_f at p)
             0 <= p <= pmax

    is solved through its dual, which has only ``L`` rows (:func:`_price_lp`).  Returns
    ``(p (L,), status)``: 0 optimal, 1 the ``p``-LP is infeasible, 2 cap.
    """
    L = x.shape[-1]
    G = jnp.concatenate([((1.0 + alpha) * Xw).reshape(-1, L), Yw.reshape(-1, L)])   # (M, L)
    h = jnp.concatenate([Vw.reshape(-1), Cw.reshape(-1)]) + slack
    ok = jnp.concatenate([bm.reshape(-1), sm.reshape(-1)])
    G = jnp.where(ok[:, None], G, 0.0)
    h = jnp.where(ok, h, 1.0)
    return _price_lp(G, h, (1.0 + alpha) * x - y, pmax, max_iter, tol)


def lex_min_prices(G, h, ok, pmax, max_iter: int = 64, tol: float = 1e-12):
    """The lexicographically smallest ``p`` with ``G p <= h`` (rows where ``ok``) and
    ``0 <= p <= pmax`` (ONE polyhedron; vmap over a batch): ``p_1`` as small as possible,
    then ``p_2``, ...  It is a unique point of the polyhedron, so it does not depend on how
    the polyhedron was found (one :func:`_price_lp` per coordinate, earlier coordinates
    bounded by their minima).  Returns ``(p (L,), status)``: 0 optimal, else the first
    failing status."""
    L = pmax.shape[-1]
    dt = h.dtype
    G = jnp.where(ok[:, None], G, 0.0)
    h = jnp.where(ok, h, 1.0)
    ub = pmax.astype(dt)
    st = jnp.array(0)
    p = jnp.zeros(L, dt)
    for l in range(L):                      # static: L solves of an L-row LP
        c = -jnp.eye(L, dtype=dt)[l]
        p, s = _price_lp(G, h, c, ub, max_iter, tol)
        st = jnp.where(st == 0, s, st)
        ub = ub.at[l].set(jnp.minimum(ub[l], p[l] * (1.0 + 1e-12) + 1e-15))
    return p, st
