"""Equilibria of convexified non-convex economies (Milgrom & Watt; DESIGN §2).

The convexified economy lets every agent mix the options of its menu.  Its equilibrium with
markup ``alpha`` and auctioneer reserve ``R`` (per good) is the linear program

    max  sum_{n,k} lam[n,k] V[n,k] / (1+alpha)  -  sum_{f,k} mu[f,k] C[f,k]
    s.t. lam[n,:], mu[f,:] on the simplex,   sum X lam + R <= sum Y mu        (per good)

with dual  ``g(p) = sum_n max_k (V/(1+alpha) - p.X) + sum_f max_k (p.Y - C) - p.R``, minimised
over seller prices ``p >= 0``; buyers face ``(1+alpha) p``.  A basic (vertex) optimum has at
most ``L`` agents with more than one positive weight (Shapley-Folkman structure), and every
positive-weight option is in the agent's demand / supply set at the optimal prices.

Methods
-------
``method="lp"``      the whole LP in HiGHS (dual simplex, so the answer is a vertex), one
                     economy at a time on the host: the baseline a user would write.
``method="device"``  projected Newton (or optax Adam) on the entropic smoothing of ``g``
                     with the smoothing annealed, batched over all economies as fixed-length
                     ``lax.scan`` stages with per-economy convergence checks; then (``exact=True``)
                     an exact finish: an LP restricted to each economy's near-tied options,
                     with column generation until the full-menu dual certifies optimality.
                     ``finish="device"`` (default on accelerators) solves the restricted LPs
                     of the whole batch by a float64 dense dual simplex on the device
                     (:mod:`jaxwalras.kernels.restricted_lp`) and certifies them there;
                     ``finish="host"`` (default on CPU) solves them with HiGHS, block-diagonal,
                     overlapping the device solve of the next chunk, and falls back to the
                     full LP if needed.  Economies the device finish does not certify go to
                     the host finish.
                     One-good economies (``L == 1``) with ``exact=True`` take the envelope
                     method instead.
``method="envelope"`` ``L == 1`` only: the exact 1-D solution.  ``g`` is then a convex
                     piecewise-linear function of the scalar price whose kinks are the edges
                     of the agents' upper envelopes (concave hulls of their menus); sorting
                     them and accumulating the jumps in excess supply finds the minimiser and
                     a vertex with at most one mixing agent, in ``O(M log M)`` for ``M``
                     options (10^6 buyers in well under a second on a CPU), no LP.

Reference: P. Milgrom and M. Watt, "Linear pricing mechanisms for markets without
convexity" (2021/2022), Sections 3-4.
"""
from __future__ import annotations

import warnings
from typing import Any, NamedTuple

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog

from ._shapes import padded_size
from ._validation import as_float_array, broadcast_batch
from .economy import MenuEconomy

__all__ = ["ConvexifiedResult", "convexified_equilibrium", "demand_gaps", "demo_convexified",
           "smoothed_equilibrium", "SmoothedEquilibrium", "device_solve",
           "dual_objective", "broadcast_inputs"]


class ConvexifiedResult(NamedTuple):
    """Result of :func:`convexified_equilibrium` (a pytree; leading axes = broadcast batch).

    Attributes
    ----------
    prices : (..., L) seller prices ``p >= 0``.
    buyer_prices : (..., L) ``(1 + markup) * p``.
    buyer_weights : (..., N, Kb) mixing weights of each buyer on its simplex (0 on masked).
    seller_weights : (..., F, Ks) mixing weights of each seller.
    dual_value : (...,) ``g(prices)`` -- an upper bound on the convexified optimum.
    primal_value : (...,) LP objective of the returned weights.
    gap : (...,) ``dual_value - primal_value`` (absolute; a certificate of optimality when the
        weights are feasible, see ``infeasibility``).
    rel_gap : (...,) ``gap / max(|dual_value|, |primal_value|, value_scale)`` where
        ``value_scale`` is the largest |value| or |cost| in the economy.
    converged : (...,) bool -- solver reported success and the certificate is within tolerance.
    iterations : (...,) int -- device iterations (device), simplex iterations (LP), 0 (envelope).
    markup : (...,) the markup used.
    reserve : (..., L) the reserve used.
    infeasibility : (...,) ``max_l (sum X lam + R - sum Y mu)_+`` of the returned weights.
    """

    prices: Any
    buyer_prices: Any
    buyer_weights: Any
    seller_weights: Any
    dual_value: Any
    primal_value: Any
    gap: Any
    rel_gap: Any
    converged: Any
    iterations: Any
    markup: Any
    reserve: Any
    infeasibility: Any


# ----------------------------------------------------------------------------------------
# input handling
# ----------------------------------------------------------------------------------------
def broadcast_inputs(economy: MenuEconomy, markup: Any = 0.0, reserve: Any = 0.0
                     ) -> tuple[tuple[int, ...], np.ndarray, np.ndarray]:
    """Validate ``markup`` / ``reserve`` and broadcast them against the economy's batch.

    ``markup`` broadcasts to the batch shape, ``reserve`` to ``batch_shape + (L,)`` (a
    scalar means the same reserve for every good).  Returns ``(batch, markup (batch),
    reserve (batch + (L,)))`` as float64 numpy arrays.
    """
    if not isinstance(economy, MenuEconomy):
        raise TypeError(f"economy: expected a jaxwalras.MenuEconomy, got {type(economy).__name__}")
    L = economy.n_goods
    a = as_float_array(markup, "markup")
    if a.size and a.min() <= -1.0:
        raise ValueError(f"markup: must be > -1 (buyers pay (1+markup) p), found {a.min()}")
    r = as_float_array(reserve, "reserve")
    if r.ndim == 0:
        r = r[None]
    if r.shape[-1] not in (1, L):
        raise ValueError(f"reserve: last axis must have size 1 or L={L} (one reserve per "
                         f"good), got shape {r.shape}")
    batch = broadcast_batch({"economy": economy.batch_shape, "markup": a.shape,
                             "reserve": r.shape[:-1]})
    return batch, np.broadcast_to(a, batch).copy(), np.broadcast_to(r, batch + (L,)).copy()


def _host_arrays(eco: MenuEconomy, batch: tuple[int, ...]) -> tuple[np.ndarray, ...]:
    """Economy leaves as float64/bool numpy arrays broadcast to ``batch``."""
    b = eco.batch_shape
    out = []
    for f in ("buyer_bundles", "buyer_values", "seller_bundles", "seller_costs",
              "buyer_mask", "seller_mask"):
        a = np.asarray(getattr(eco, f))
        a = a.astype(bool, copy=False) if a.dtype == bool else a.astype(np.float64, copy=False)
        out.append(np.broadcast_to(a, batch + a.shape[len(b):]))
    return tuple(out)


# ----------------------------------------------------------------------------------------
# host (numpy float64) evaluation: demand sets, dual, certificates
# ----------------------------------------------------------------------------------------
def _surpluses(p: np.ndarray, X, V, bm, Y, C, sm, alpha) -> tuple[np.ndarray, np.ndarray]:
    """Money surpluses at buyer prices (1+alpha)p and profits at p; -inf on masked options."""
    a = np.asarray(alpha)[..., None, None]
    u = V - (1.0 + a) * np.einsum("...nkl,...l->...nk", X, p)
    w = np.einsum("...fkl,...l->...fk", Y, p) - C
    return np.where(bm, u, -np.inf), np.where(sm, w, -np.inf)


def demand_gaps(economy: MenuEconomy, prices: Any, markup: Any = 0.0
                ) -> tuple[np.ndarray, np.ndarray]:
    """Shortfall of every option from the agent's best choice (host, float64).

    ``buyer_gaps[..., n, k] = max_j (V[n,j] - (1+markup) p.X[n,j]) - (V[n,k] - (1+markup) p.X[n,k])``
    and ``seller_gaps[..., f, k] = max_j (p.Y[f,j] - C[f,j]) - (p.Y[f,k] - C[f,k])``, in money.
    An option is in the agent's demand (supply) set iff its gap is 0 (up to a tolerance);
    masked options get ``+inf``.  Shapes broadcast like :func:`convexified_equilibrium`
    (``prices`` is ``(..., L)``).
    """
    if not isinstance(economy, MenuEconomy):
        raise TypeError(f"economy: expected a jaxwalras.MenuEconomy, got {type(economy).__name__}")
    p = as_float_array(prices, "prices", min_ndim=1)
    if p.shape[-1] != economy.n_goods:
        raise ValueError(f"prices: last axis must be L={economy.n_goods}, got shape {p.shape}")
    batch, a, _ = broadcast_inputs(economy, markup, 0.0)
    batch = broadcast_batch({"economy/markup": batch, "prices": p.shape[:-1]})
    a = np.broadcast_to(a, batch)
    p = np.broadcast_to(p, batch + (economy.n_goods,))
    X, V, Y, C, bm, sm = _host_arrays(economy, batch)
    u, w = _surpluses(p, X, V, bm, Y, C, sm, a)
    bg = u.max(-1, keepdims=True) - u
    sg = w.max(-1, keepdims=True) - w
    return np.where(bm, bg, np.inf), np.where(sm, sg, np.inf)


def dual_objective(economy: MenuEconomy, prices: Any, markup: Any = 0.0, reserve: Any = 0.0
                   ) -> np.ndarray:
    """The dual ``g(p)`` (host, float64): an upper bound on the convexified optimum."""
    batch, a, r = broadcast_inputs(economy, markup, reserve)
    p = as_float_array(prices, "prices", min_ndim=1)
    batch = broadcast_batch({"economy/markup/reserve": batch, "prices": p.shape[:-1]})
    X, V, Y, C, bm, sm = _host_arrays(economy, batch)
    return _dual_np(np.broadcast_to(p, batch + r.shape[-1:]), X, V, bm, Y, C, sm,
                    np.broadcast_to(a, batch), np.broadcast_to(r, batch + r.shape[-1:]))


def _dual_np(p, X, V, bm, Y, C, sm, a, r) -> np.ndarray:
    u, w = _surpluses(p, X, V, bm, Y, C, sm, a)
    return u.max(-1).sum(-1) / (1.0 + a) + w.max(-1).sum(-1) - np.sum(p * r, -1)


def _certificate(p, lam, mu, X, V, bm, Y, C, sm, a, r):
    """dual, primal, gap, rel_gap, infeasibility (all numpy, batch-shaped)."""
    dual = _dual_np(p, X, V, bm, Y, C, sm, a, r)
    primal = np.sum(lam * V, (-1, -2)) / (1.0 + a) - np.sum(mu * C, (-1, -2))
    excess_dem = (np.einsum("...nk,...nkl->...l", lam, X) + r
                  - np.einsum("...fk,...fkl->...l", mu, Y))
    infeas = np.maximum(excess_dem, 0.0).max(-1)
    gap = dual - primal
    return dual, primal, gap, _rel_gap(gap, dual, primal, V, C, a), infeas


def _rel_gap(gap, dual, primal, V, C, a) -> np.ndarray:
    """``gap`` relative to ``max(|dual|, |primal|, value scale)``."""
    vscale = np.maximum(np.abs(V).max((-1, -2)) / (1.0 + a), np.abs(C).max((-1, -2)))
    return gap / np.maximum(np.maximum(np.abs(dual), np.abs(primal)), np.maximum(vscale, 1e-300))


# ----------------------------------------------------------------------------------------
# the LP (HiGHS) -- full or restricted to a subset of options
# ----------------------------------------------------------------------------------------
def _solve_lp(X, V, bm, Y, C, sm, a: float, r: np.ndarray
              ) -> tuple[bool, np.ndarray, np.ndarray, np.ndarray, int]:
    """HiGHS dual simplex on the LP restricted to the options where ``bm``/``sm`` is True.

    Returns ``(ok, p, lam, mu, iterations)``; the weights are a basic (vertex) solution.
    Agents with a single allowed option are constants (no variable, no row).
    """
    N, Kb, L = X.shape
    F, Ks, _ = Y.shape
    nb_opt = bm.sum(-1)
    ns_opt = sm.sum(-1)
    lam = np.where(bm & (nb_opt[:, None] == 1), 1.0, 0.0)
    mu = np.where(sm & (ns_opt[:, None] == 1), 1.0, 0.0)
    const_use = (np.einsum("nk,nkl->l", lam, X) + r - np.einsum("fk,fkl->l", mu, Y))
    bvar = bm & (nb_opt[:, None] > 1)
    svar = sm & (ns_opt[:, None] > 1)
    bi, bk = np.nonzero(bvar)
    si, sk = np.nonzero(svar)
    nbv, nsv = len(bi), len(si)
    if nbv + nsv == 0:
        ok = bool(np.all(const_use <= 1e-12))
        return ok, np.zeros(L), lam, mu, 0
    c = np.concatenate([-V[bi, bk] / (1.0 + a), C[si, sk]])
    A_ub = np.concatenate([X[bi, bk].T, -Y[si, sk].T], axis=1)
    b_ub = -const_use
    # one simplex row per agent that has a choice
    bu, brow = np.unique(bi, return_inverse=True)
    su, srow = np.unique(si, return_inverse=True)
    rows = np.concatenate([brow, len(bu) + srow])
    A_eq = sp.csr_matrix((np.ones(nbv + nsv), (rows, np.arange(nbv + nsv))),
                         shape=(len(bu) + len(su), nbv + nsv))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = linprog(c, A_ub=sp.csr_matrix(A_ub), b_ub=b_ub, A_eq=A_eq,
                      b_eq=np.ones(len(bu) + len(su)), bounds=(0, None), method="highs-ds")
    if res.status != 0:
        return False, np.full(L, np.nan), lam, mu, int(getattr(res, "nit", 0) or 0)
    xsol = np.clip(res.x, 0.0, 1.0)
    lam[bi, bk] = xsol[:nbv]
    mu[si, sk] = xsol[nbv:]
    p = np.maximum(-np.asarray(res.ineqlin.marginals, dtype=np.float64), 0.0)
    return True, p, lam, mu, int(res.nit)


try:  # HiGHS through scipy's own bindings, without linprog's per-column Python loop
    from scipy.optimize._highspy import _core as _highs_core
    _HIGHS_DIRECT = all(hasattr(_highs_core, n) for n in (
        "HighsLp", "_Highs", "HighsOptions", "MatrixFormat", "HighsModelStatus", "HighsStatus"))
except Exception:  # pragma: no cover - other scipy layouts: use linprog
    _highs_core, _HIGHS_DIRECT = None, False


def _highs_dual_simplex(c, A, m_ub: int, b_ub, b_eq):
    """``min c.x  s.t.  A[:m_ub] x <= b_ub,  A[m_ub:] x = b_eq,  x >= 0`` (``A`` CSC) by
    HiGHS' dual simplex.

    Returns ``(ok, x, duals of the first m_ub rows (<= 0), simplex iterations)``.  Calls
    HiGHS through scipy's bindings directly where they are available (``linprog`` spends a
    Python loop over the columns on bound multipliers that are not needed here), else
    ``linprog``.
    """
    if not _HIGHS_DIRECT:  # other scipy builds (tested by switching the flag off)
        A = sp.csr_matrix(A)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = linprog(c, A_ub=A[:m_ub], b_ub=b_ub, A_eq=A[m_ub:], b_eq=b_eq,
                          bounds=(0, None), method="highs-ds")
        if res.status != 0:
            return False, None, None, int(getattr(res, "nit", 0) or 0)
        return True, res.x, np.asarray(res.ineqlin.marginals, np.float64), int(res.nit)
    h = _highs_core
    inf = h.kHighsInf
    lp = h.HighsLp()
    lp.num_col_, lp.num_row_ = A.shape[1], A.shape[0]
    lp.a_matrix_.num_col_, lp.a_matrix_.num_row_ = A.shape[1], A.shape[0]
    lp.a_matrix_.format_ = h.MatrixFormat.kColwise
    lp.col_cost_ = np.asarray(c, np.float64)
    lp.col_lower_ = np.zeros(A.shape[1])
    lp.col_upper_ = np.full(A.shape[1], inf)
    lp.row_lower_ = np.concatenate([np.full(m_ub, -inf), np.asarray(b_eq, np.float64)])
    lp.row_upper_ = np.concatenate([np.asarray(b_ub, np.float64), np.asarray(b_eq, np.float64)])
    lp.a_matrix_.start_ = A.indptr
    lp.a_matrix_.index_ = A.indices
    lp.a_matrix_.value_ = A.data
    highs = h._Highs()
    opts = h.HighsOptions()
    opts.output_flag = False
    opts.log_to_console = False
    opts.solver = "simplex"
    opts.simplex_strategy = 1            # dual simplex: the optimum is a basic (vertex) one
    if highs.passOptions(opts) == h.HighsStatus.kError or \
            highs.passModel(lp) == h.HighsStatus.kError or \
            highs.run() == h.HighsStatus.kError:
        return False, None, None, 0
    nit = int(highs.getInfo().simplex_iteration_count)
    if highs.getModelStatus() != h.HighsModelStatus.kOptimal:
        return False, None, None, nit
    sol = highs.getSolution()
    return True, np.asarray(sol.col_value), np.asarray(sol.row_dual)[:m_ub], nit


def _solve_lp_blocks(X, V, bm, Y, C, sm, a, r, elastic=None):
    """Many restricted LPs at once: ONE block-diagonal HiGHS dual-simplex call.

    Independent blocks, so the optimum of the whole is optimal per block, a basis of the
    whole is a basis per block (each block keeps its vertex property), and the duals of
    block ``b``'s goods rows are economy ``b``'s prices.  Set-up is vectorised over the
    batch.  Returns ``(ok, P, LAM, MU, it)``; ``ok`` is all False if the joint LP fails
    (e.g. one block infeasible) -- the caller then splits the blocks.

    ``elastic`` (B, L): if given, every goods row gets an extra supply column at that unit
    cost, so that no block is infeasible; ``ok[b]`` is then False where block ``b`` uses
    it (its restricted options cannot clear the market, or its prices would exceed the
    cost -- either way it needs more options).  A solution that does not use it is a
    basic optimum of the restricted LP itself.
    """
    B, N, Kb, L = X.shape
    F, Ks = C.shape[1:]
    nb_opt = bm.sum(-1)
    ns_opt = sm.sum(-1)
    LAM = np.where(bm & (nb_opt[..., None] == 1), 1.0, 0.0)
    MU = np.where(sm & (ns_opt[..., None] == 1), 1.0, 0.0)
    const_use = (np.einsum("bnk,bnkl->bl", LAM, X) + r - np.einsum("bfk,bfkl->bl", MU, Y))
    bb, bn, bk = np.nonzero(bm & (nb_opt[..., None] > 1))
    sb, sf, sk = np.nonzero(sm & (ns_opt[..., None] > 1))
    nbv, nsv = len(bb), len(sb)
    nvar = nbv + nsv
    if nvar == 0:
        ok = np.all(const_use <= 1e-12, -1)
        return ok, np.zeros((B, L)), LAM, MU, np.zeros(B, np.int64)
    c = np.concatenate([-V[bb, bn, bk] / (1.0 + a[bb]), C[sb, sf, sk]])
    # goods rows: b*L + l
    cols = np.arange(nvar)
    vb = np.concatenate([bb, sb])
    coef = np.concatenate([X[bb, bn, bk], -Y[sb, sf, sk]])          # (nvar, L)
    rows_ub = (vb[:, None] * L + np.arange(L)[None, :]).ravel()
    cols_ub = np.repeat(cols, L)
    data_ub = coef.ravel()
    nz = data_ub != 0
    rows_ub, cols_ub, data_ub = rows_ub[nz], cols_ub[nz], data_ub[nz]
    ncol = nvar
    if elastic is not None:
        c = np.concatenate([c, np.asarray(elastic, np.float64).ravel()])
        rows_ub = np.concatenate([rows_ub, np.arange(B * L)])
        cols_ub = np.concatenate([cols_ub, nvar + np.arange(B * L)])
        data_ub = np.concatenate([data_ub, -np.ones(B * L)])
        ncol = nvar + B * L
    # simplex rows (after the B*L goods rows): one per agent with a choice
    agent = np.concatenate([bb * N + bn, B * N + sb * F + sf])
    uniq, arow = np.unique(agent, return_inverse=True)
    A = sp.csc_matrix((np.concatenate([data_ub, np.ones(nvar)]),
                       (np.concatenate([rows_ub, B * L + arow]), np.concatenate([cols_ub, cols]))),
                      shape=(B * L + len(uniq), ncol))
    good, x, duals, nit = _highs_dual_simplex(c, A, B * L, -const_use.ravel(),
                                              np.ones(len(uniq)))
    if not good:
        return np.zeros(B, bool), np.full((B, L), np.nan), LAM, MU, np.zeros(B, np.int64)
    xs = np.clip(x, 0.0, 1.0)
    LAM[bb, bn, bk] = xs[:nbv]
    MU[sb, sf, sk] = xs[nbv:nvar]
    P = np.maximum(-duals.reshape(B, L), 0.0)
    ok = np.ones(B, bool)
    if elastic is not None:
        used = x[nvar:].reshape(B, L)
        ok = (used <= 1e-11 * (1.0 + np.abs(const_use))).all(-1)
    return ok, P, LAM, MU, np.full(B, nit // max(B, 1), np.int64)


def _lp_batch(X, V, bm, Y, C, sm, a, r):
    """Full LP per economy (flattened batch)."""
    B = V.shape[0]
    L = X.shape[-1]
    P = np.zeros((B, L))
    LAM = np.zeros(V.shape)
    MU = np.zeros(C.shape)
    ok = np.zeros(B, bool)
    it = np.zeros(B, np.int64)
    for b in range(B):
        ok[b], P[b], LAM[b], MU[b], it[b] = _solve_lp(X[b], V[b], bm[b], Y[b], C[b], sm[b],
                                                      float(a[b]), r[b])
    return ok, P, LAM, MU, it


# ----------------------------------------------------------------------------------------
# one good (L == 1): exact equilibrium from the agents' upper envelopes
# ----------------------------------------------------------------------------------------
def _upper_hulls(z: np.ndarray, w: np.ndarray, alive: np.ndarray, max_passes: int = 64
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Upper concave hull of the points ``(z[a, k], w[a, k])`` (alive ones) of every row ``a``.

    Returns ``(opt, zv, wv, nv)``: per row the option indices, ``z`` and ``w`` of the strict
    hull vertices in increasing ``z`` (left-compacted, ``(A, K)``; entries past ``nv`` are
    padding) and the vertex counts ``nv`` (``A,``).  Vectorised over rows: sort by ``(z asc,
    w desc)``, drop repeated ``z``, then repeatedly drop, all at once, every point lying on or
    below the chord of its alive neighbours (such a point is never a strict vertex, so the
    hull is unchanged); a row in which nothing is dropped is concave, i.e. its own hull.
    Rows still changing after ``max_passes`` passes finish with Andrew's monotone chain.
    """
    A, K = z.shape
    zz = np.where(alive, z, np.inf)
    if K == 1 or np.all(zz[:, 1:] > zz[:, :-1]):   # already strictly increasing (grids)
        o = np.broadcast_to(np.arange(K), (A, K))
        zs, ws, al = zz, np.where(alive, w, 0.0), alive.copy()
    else:
        o = np.argsort(np.where(alive, -w, np.inf), axis=-1, kind="stable")
        o = np.take_along_axis(o, np.argsort(np.take_along_axis(zz, o, -1), axis=-1,
                                             kind="stable"), -1)
        zs = np.take_along_axis(zz, o, -1)
        ws = np.where(np.isfinite(zs), np.take_along_axis(w, o, -1), 0.0)
        al = np.take_along_axis(alive, o, -1)
        al[:, 1:] &= zs[:, 1:] != zs[:, :-1]       # equal z: keep the best w (sorted first)
    rows = np.nonzero(al.sum(-1) > 2)[0]           # only rows with interior points can change
    idx = np.arange(K)
    for _ in range(max_passes):
        if rows.size == 0:
            break
        a = al[rows]
        prev = np.full(a.shape, -1)
        prev[:, 1:] = np.maximum.accumulate(np.where(a, idx, -1), axis=-1)[:, :-1]
        nxt = np.full(a.shape, K)
        nxt[:, :-1] = np.minimum.accumulate(np.where(a, idx, K)[:, ::-1], axis=-1)[:, ::-1][:, 1:]
        cand = a & (prev >= 0) & (nxt < K)
        zr, wr = zs[rows], ws[rows]
        i, j = np.clip(prev, 0, K - 1), np.clip(nxt, 0, K - 1)
        zi, wi = np.take_along_axis(zr, i, -1), np.take_along_axis(wr, i, -1)
        zj, wj = np.take_along_axis(zr, j, -1), np.take_along_axis(wr, j, -1)
        with np.errstate(invalid="ignore"):
            below = (wr - wi) * (zj - zi) <= (wj - wi) * (zr - zi)
        drop = cand & below
        changed = drop.any(-1)
        al[rows] = a & ~drop
        rows = rows[changed]
    for r in rows:                                  # pathological rows: monotone chain
        ks = np.nonzero(al[r])[0]
        hull: list[int] = []
        for k in ks:
            while len(hull) >= 2:
                i, j = hull[-2], hull[-1]
                if (ws[r, j] - ws[r, i]) * (zs[r, k] - zs[r, i]) <= \
                        (ws[r, k] - ws[r, i]) * (zs[r, j] - zs[r, i]):
                    hull.pop()
                else:
                    break
            hull.append(int(k))
        al[r] = False
        al[r, hull] = True
    nv = al.sum(-1)
    if np.all(nv == K):
        return o, zs, ws, nv
    comp = np.argsort(~al, axis=-1, kind="stable")  # alive (vertices) first, order kept
    return (np.take_along_axis(o, comp, -1), np.take_along_axis(zs, comp, -1),
            np.take_along_axis(ws, comp, -1), nv)


def _hull_edges(zv: np.ndarray, wv: np.ndarray, nv: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Edges ``(row, m)`` between hull vertices ``m`` and ``m+1``: slope ``dw/dz`` and ``dz``."""
    K = zv.shape[-1]
    if K < 2:
        e = np.zeros(0, np.int64)
        return e, e, np.zeros(0), np.zeros(0)
    r, m = np.nonzero(np.arange(K - 1)[None, :] < (nv - 1)[:, None])
    dz = zv[r, m + 1] - zv[r, m]
    return r, m, (wv[r, m + 1] - wv[r, m]) / dz, dz


def _single_good_exact(X, V, bm, Y, C, sm, a, r):
    """Exact convexified equilibrium of a flat batch of ONE-good economies (host, float64).

    With one good the dual ``g(p) = sum_n max_k (V[n,k]/(1+a) - p X[n,k]) + sum_f max_k
    (p Y[f,k] - C[f,k]) - p R`` is convex and piecewise linear in the scalar ``p``, and its
    right derivative is the excess supply ``E(p+) = S(p+) - D(p+) - R``.  Each buyer's term
    is the upper envelope of its menu: the upper concave hull of the points ``(X, V/(1+a))``;
    as ``p`` rises past the slope of a hull edge the buyer moves to the edge's smaller
    bundle and demand falls by the edge's length.  Sellers alike with the points
    ``(Y, -C)``: past ``-slope`` supply rises by the edge's length.  Sorting all edges by
    their price and accumulating their jumps from ``E(0+)`` gives the minimiser exactly:
    ``p* = 0`` if ``E(0+) >= 0``, else the price of the first edge at which the running
    excess supply reaches 0.  The primal vertex: every agent takes the hull vertex its passed
    edges lead to, and the agent of the crossing edge mixes its two adjacent vertices with the
    weight that clears the market exactly -- at most one mixing agent (Shapley-Folkman with
    ``L = 1``), every positive weight on a best option at ``p*``.  ``O(M log M)`` for ``M``
    options in total (sorts), no LP.  Returns ``(ok, P, LAM, MU, it)`` like the LP helpers;
    ``ok`` is False where the reserve exceeds the total capacity (dual unbounded).
    """
    B, N, Kb, _ = X.shape
    F, Ks = C.shape[1:]
    xb = X[..., 0].reshape(B * N, Kb)
    wb = (V / (1.0 + a)[:, None, None]).reshape(B * N, Kb)
    ys = Y[..., 0].reshape(B * F, Ks)
    opt_b, zb, wvb, nb = _upper_hulls(xb, wb, bm.reshape(B * N, Kb))
    opt_s, zs, wvs, ns = _upper_hulls(ys, -C.reshape(B * F, Ks), sm.reshape(B * F, Ks))
    # excess supply at p = -inf: buyers on their largest bundle, sellers on their smallest
    rowb, rows_ = np.arange(B * N), np.arange(B * F)
    e_inf = (zs[:, 0].reshape(B, F).sum(-1) - zb[rowb, nb - 1].reshape(B, N).sum(-1)
             - r[:, 0])
    rb, mb, sb, db = _hull_edges(zb, wvb, nb)
    rs, ms, ss, ds = _hull_edges(zs, wvs, ns)
    price = np.concatenate([sb, -ss])
    jump = np.concatenate([db, ds])
    econ = np.concatenate([rb // max(N, 1), rs // max(F, 1)])
    order = np.argsort(price)
    order = order[np.argsort(econ[order], kind="stable")]   # by economy, then price
    price, jump, econ = price[order], jump[order], econ[order]
    nonpos = price <= 0.0
    e0 = e_inf + np.bincount(econ, weights=np.where(nonpos, jump, 0.0), minlength=B)
    # running excess supply over the positive-price edges, per economy
    cs = np.concatenate([[0.0], np.cumsum(np.where(nonpos, 0.0, jump))])
    before = cs[np.searchsorted(econ, np.arange(B))]     # running sum before each economy
    cs = cs[1:]
    run = e0[econ] + cs - before[econ]
    hit = ~nonpos & (run >= 0.0) & (e0[econ] < 0.0)
    first = np.full(B, len(price))
    hb = np.nonzero(hit)[0]
    if hb.size:
        ue, ui = np.unique(econ[hb], return_index=True)
        first[ue] = hb[ui]
    zero_price = e0 >= 0.0
    ok = zero_price | (first < len(price))
    pos = np.arange(len(price))
    passed = nonpos | (~zero_price[econ] & (pos < first[econ]))
    P = np.where(zero_price, 0.0, price[np.minimum(first, max(len(price) - 1, 0))]
                 if len(price) else 0.0)
    P = np.where(ok, P, np.nan)[:, None]
    # each agent's vertex: buyers walk down from their last vertex, sellers up from the first
    is_b = order < len(sb)
    cnt_b = np.bincount(rb[order[passed & is_b]], minlength=B * N)
    cnt_s = np.bincount(rs[order[passed & ~is_b] - len(sb)], minlength=B * F)
    LAM = np.zeros((B * N, Kb))
    MU = np.zeros((B * F, Ks))
    LAM[rowb, opt_b[rowb, nb - 1 - cnt_b]] = 1.0
    MU[rows_, opt_s[rows_, cnt_s]] = 1.0
    mix = np.nonzero(ok & ~zero_price)[0]
    k = first[mix]
    # excess supply just before the crossing edge, summed per economy (no cancellation
    # against the running sum of the economies sorted before it)
    pre = np.bincount(econ[passed & ~nonpos], weights=jump[passed & ~nonpos], minlength=B)
    theta = np.clip(-(e0[mix] + pre[mix]) / jump[k], 0.0, 1.0)  # share of the edge's move
    ek = order[k]                                    # one crossing edge per economy
    isb = ek < len(sb)
    row, m, th = rb[ek[isb]], mb[ek[isb]], theta[isb]  # buyer at vertex m+1 moves to m
    LAM[row, opt_b[row, m + 1]] = 1.0 - th
    LAM[row, opt_b[row, m]] = th
    es = ek[~isb] - len(sb)
    row, m, th = rs[es], ms[es], theta[~isb]          # seller at vertex m moves to m+1
    MU[row, opt_s[row, m]] = 1.0 - th
    MU[row, opt_s[row, m + 1]] = th
    return (ok, P, LAM.reshape(B, N, Kb), MU.reshape(B, F, Ks), np.zeros(B, np.int64))


# ----------------------------------------------------------------------------------------
# device method + exact finish
# ----------------------------------------------------------------------------------------
_DEVICE_KEYS = ("solver", "stages", "steps", "tau0", "tau_min", "learning_rate", "device_tol")
_JIT_CACHE: dict[tuple, Any] = {}


def _jitted_solver(opts: tuple) -> Any:
    """One jitted batched solver per option set (shapes are handled by jit's own cache)."""
    if opts not in _JIT_CACHE:
        import jax
        from .kernels.smoothed_dual import solve_batch
        kw = dict(opts)
        _JIT_CACHE[opts] = jax.jit(lambda *a: solve_batch(*a, **kw))
    return _JIT_CACHE[opts]


def _check_device_options(options: dict) -> None:
    bad = set(options) - set(_DEVICE_KEYS) - {"chunk_size"}
    if bad:
        raise TypeError(f"unknown device option(s) {sorted(bad)}; allowed: {list(_DEVICE_KEYS)}"
                        " and chunk_size")
    if "solver" in options and options["solver"] not in ("newton", "adam"):
        raise ValueError(f"solver: must be 'newton' or 'adam', got {options['solver']!r}")


def _chunk_size(Xf, Yf, Vf, Cf, chunk_size: int | None) -> int:
    B = Vf.shape[0]
    if chunk_size is None:
        per = Xf[0].size + Yf[0].size + Vf[0].size + Cf[0].size
        chunk_size = max(1, min(B, int(2**26 // max(per, 1))))  # ~256 MiB of float32 inputs
    try:
        size = int(chunk_size)
    except (TypeError, ValueError):
        size = 0
    if isinstance(chunk_size, bool) or size != chunk_size or size < 1:
        raise ValueError(f"chunk_size: must be a positive integer, got {chunk_size!r}")
    return size


def _device_chunks(Xf, Vf, bmf, Yf, Cf, smf, af, rf, chunk_size: int, **options: Any):
    """Run the jitted batched solver chunk by chunk; yields ``(start, n, solution)`` with
    numpy leaves.  Chunk ``i + 1`` is dispatched (JAX dispatch is asynchronous) before
    chunk ``i`` is fetched, so the caller's host work on chunk ``i`` overlaps the device
    work on chunk ``i + 1``.  The last chunk is padded by repetition so every chunk has
    one shape (no recompiles)."""
    import jax
    import jax.numpy as jnp
    fn = _jitted_solver(tuple(sorted(options.items())))
    B = Vf.shape[0]

    def launch(s0: int):
        if s0 == 0 and chunk_size == B:     # the whole batch: no gather copy
            return fn(*(jnp.asarray(z) for z in (Xf, Vf, bmf, Yf, Cf, smf, af, rf)))
        idx = np.arange(s0, s0 + chunk_size)
        idx = np.where(idx < B, idx, s0)
        return fn(*(jnp.asarray(z[idx]) for z in (Xf, Vf, bmf, Yf, Cf, smf, af, rf)))

    starts = list(range(0, B, chunk_size))
    pending = launch(starts[0]) if starts else None
    for i, s0 in enumerate(starts):
        nxt = launch(starts[i + 1]) if i + 1 < len(starts) else None
        n = min(chunk_size, B - s0)
        yield s0, n, jax.tree_util.tree_map(lambda z: np.asarray(z)[:n], pending)
        pending = nxt


def device_solve(Xf, Vf, bmf, Yf, Cf, smf, af, rf, *, chunk_size: int | None = None,
                 **options: Any):
    """Run the batched device solver on a flat batch, in chunks of ``chunk_size`` economies
    (the last chunk is padded by repetition so every chunk has one shape: no recompiles).

    Returns numpy arrays ``(prices, buyer_weights, seller_weights, rel_gap, converged,
    iterations)`` in the default JAX float dtype (float32 unless x64 is enabled)."""
    _check_device_options(options)
    chunk_size = _chunk_size(Xf, Yf, Vf, Cf, chunk_size)
    outs = [sol for _, _, sol in _device_chunks(Xf, Vf, bmf, Yf, Cf, smf, af, rf,
                                                chunk_size, **options)]
    cat = lambda k: np.concatenate([getattr(o, k) for o in outs])  # noqa: E731
    return (cat("prices"), cat("buyer_weights"), cat("seller_weights"), cat("rel_gap"),
            cat("converged"), cat("iterations"))


def _exact_finish(P0, Xf, Vf, bmf, Yf, Cf, smf, af, rf, *, rounds: int = 6,
                  rel_eps: float = 1e-3, cert_tol: float = 1e-10, block: int = 48):
    """Exact prices and vertex weights from approximate prices ``P0`` (host, float64).

    Each economy's LP is restricted to the options whose shortfall at the current prices is
    below ``eps`` (so every agent's best option is in); agents left with one option are
    constants, so the LP only has the near-indifferent agents.  Its HiGHS vertex solution
    and duals are certified against the FULL menu (``g(p) - primal <= cert_tol * scale``).
    Economies that fail get the options that are near-best at the new prices added (column
    generation), with ``eps`` doubled; after ``rounds`` the full LP is solved.  The
    restricted LPs of up to ``block`` economies go to HiGHS as one block-diagonal LP, with
    an elastic (costly) extra supply per good so that a block never fails as a whole: an
    economy whose restricted options cannot clear the market uses it, and gets its buyers'
    empty options as candidates in the next round.  Candidate sets and certificates are
    computed for the whole batch at once.
    """
    B, L = P0.shape
    P0 = np.where(np.isfinite(P0), np.maximum(P0, 0.0), 0.0).astype(np.float64)
    P = P0.copy()
    LAM = np.zeros(Vf.shape)
    MU = np.zeros(Cf.shape)
    ok = np.zeros(B, bool)
    it = np.zeros(B, np.int64)
    vscale = np.maximum(np.abs(Vf).max((-1, -2)), np.abs(Cf).max((-1, -2)))
    vscale = np.where(vscale > 0, vscale, 1.0)
    # elastic supply cost: far above any price the economy can have
    qscale = np.maximum(Xf.max((1, 2)), Yf.max((1, 2)))
    qmin = np.where(qscale > 0, qscale, 1.0)
    elastic = 10.0 * np.maximum(P0.max(-1, keepdims=True),
                                vscale[:, None] / (1.0 + af[:, None]) / qmin) + 1.0
    eps = rel_eps * vscale
    cand_b = np.zeros(bmf.shape, bool)
    cand_s = np.zeros(smf.shape, bool)
    todo = np.arange(B)
    for rnd in range(rounds + 1):
        if todo.size == 0:
            break
        u, w = _surpluses(P[todo], Xf[todo], Vf[todo], bmf[todo], Yf[todo], Cf[todo],
                          smf[todo], af[todo])
        e = eps[todo][:, None, None]
        cand_b[todo] |= bmf[todo] & (u.max(-1, keepdims=True) - u <= e * (1 + af[todo])[:, None, None])
        cand_s[todo] |= smf[todo] & (w.max(-1, keepdims=True) - w <= e)
        if rnd > 0:   # restricted options could not clear the market: buyers may drop out
            short = todo[~ok[todo]]
            cand_b[short, :, 0] = True
        final = rnd == rounds
        if final:  # give up restricting: full LP
            cand_b[todo], cand_s[todo] = bmf[todo], smf[todo]

        def solve(t):
            okb, Pb, Lb, Mb, itb = _solve_lp_blocks(Xf[t], Vf[t], cand_b[t], Yf[t], Cf[t],
                                                    cand_s[t], af[t], rf[t],
                                                    None if final else elastic[t])
            if okb.any() or not final:
                ok[t], P[t], LAM[t], MU[t] = okb, Pb, Lb, Mb
                it[t] += itb
            elif len(t) == 1:
                b = t[0]
                ok[b], P[b], LAM[b], MU[b], nit = _solve_lp(
                    Xf[b], Vf[b], cand_b[b], Yf[b], Cf[b], cand_s[b], float(af[b]), rf[b])
                it[b] += nit
            else:  # the joint LP failed (some block infeasible): split it in halves
                solve(t[:len(t) // 2])
                solve(t[len(t) // 2:])

        nblk = -(-todo.size // block)
        for t in np.array_split(todo, nblk):
            solve(t)
        dual, primal, gap, rel, infeas = _certificate(
            P[todo], LAM[todo], MU[todo], Xf[todo], Vf[todo], bmf[todo], Yf[todo], Cf[todo],
            smf[todo], af[todo], rf[todo])
        good = ok[todo] & (gap <= cert_tol * vscale[todo] * max(1, Vf.shape[-2]))
        # no usable duals from a failed LP: next candidates from the device prices
        bad = todo[~ok[todo]]
        P[bad] = P0[bad]
        todo = todo[~good]
        eps = eps * 2.0
    return ok, P, LAM, MU, it


#: the exact finish overlaps the device solve of the next chunk: a batch of at least
#: ``2 * _PIPE_MIN`` economies is cut into ``_PIPE_CHUNKS`` chunks (at least ``_PIPE_MIN``)
_PIPE_MIN, _PIPE_CHUNKS = 64, 4


#: largest sub-economy the device finish solves densely (ambiguous agents of one kind)
_DEVICE_FINISH_MAX_AGENTS = 64
#: device memory for the dense simplex tableaux of one call of the device finish
_DEVICE_FINISH_TABLEAU_BYTES = 1 << 30


def _device_exact_finish(P0, Xf, Vf, bmf, Yf, Cf, smf, af, rf, *, rounds: int = 2,
                         rel_eps: float = 2e-3, cert_tol: float = 1e-10,
                         tableau_bytes: int = _DEVICE_FINISH_TABLEAU_BYTES):
    """Exact finish on the device (float64, scoped x64): every economy's LP restricted to
    its near-tied options at ``P0`` is solved by the batched dense dual simplex of
    :mod:`jaxwalras.kernels.restricted_lp` and certified there against the full menus.
    Economies not certified get another round (at most ``rounds`` in all) with the options
    near-best at the restricted optimum's prices added and ``eps`` doubled -- the column
    generation of :func:`_exact_finish`; later rounds only carry the economies still open,
    padded to a power of 4 (few compiled shapes).  Economies go to the simplex in pieces
    whose dense tableaux take at most about ``tableau_bytes``.

    Returns ``(ok, P, LAM, MU, dual, primal, infeas)`` as numpy; economies with ``ok``
    False (a restricted LP too large for the static sizes, infeasible, or not certified)
    need the host finish.
    """
    import jax
    import jax.numpy as jnp
    from .kernels.restricted_lp import candidate_counts, restricted_vertex
    B, N, Kb = Vf.shape
    F, Ks = Cf.shape[1:]
    L = Xf.shape[-1]
    ok = np.zeros(B, bool)
    P = np.zeros((B, L))
    LAM = np.zeros(Vf.shape)
    MU = np.zeros(Cf.shape)
    dual, primal, infeas = np.zeros(B), np.zeros(B), np.zeros(B)
    P0 = np.asarray(P0, np.float64)
    P1 = P0.copy()
    todo = np.arange(B)
    cap = _DEVICE_FINISH_MAX_AGENTS
    with jax.enable_x64(True):       # scoped: the global flag is untouched
        for rnd in range(rounds):
            if todo.size == 0:
                break
            eps = rel_eps * 2.0 ** rnd
            whole = rnd == 0                      # round 0: the whole batch, no gather copy
            size = B if whole else padded_size(todo.size, base=4, floor=16)  # few shapes
            idx = np.concatenate([todo, np.full(size - todo.size, todo[0])])
            sub = (lambda z: z) if whole else (lambda z: z[idx])
            args = tuple(jnp.asarray(sub(z)) for z in (Xf, Vf, bmf, Yf, Cf, smf, af))
            p0, p1, R = jnp.asarray(sub(P0)), jnp.asarray(sub(P1)), jnp.asarray(sub(rf))
            nb, ns, kc = (np.asarray(z) for z in candidate_counts(p0, p1, *args, eps))
            NA = padded_size(nb.max(initial=0), cap=min(N, cap))
            FA = padded_size(ns.max(initial=0), cap=min(F, cap))
            KC = padded_size(kc.max(initial=1), cap=max(Kb, Ks))
            # economies per simplex call: dense tableau (NA+FA+L) x ((NA+FA) KC + L + 1)
            # in float64, about three live copies
            per = 3 * 8 * (NA + FA + L) * ((NA + FA) * KC + L + 1)
            piece = size if size * per <= tableau_bytes else \
                min(size, max(16, 1 << int(max(1, tableau_bytes // per)).bit_length() - 1))
            opened = []
            for lo in range(0, todo.size, piece):
                rows = np.arange(lo, min(lo + piece, todo.size))    # positions in ``todo``
                if piece == size:
                    ins = args + (R,)
                    q0, q1 = p0, p1
                else:   # pad to the piece size: one compiled shape per round
                    pad = jnp.asarray(np.concatenate([rows, np.full(piece - rows.size, rows[0])]))
                    ins = tuple(z[pad] for z in args + (R,))
                    q0, q1 = p0[pad], p1[pad]
                out = restricted_vertex(q0, q1, *ins[:-1], ins[-1], NA=NA, FA=FA, KC=KC,
                                        rel_eps=eps, cert_tol=cert_tol)
                out = jax.tree_util.tree_map(lambda z: np.asarray(z)[:rows.size], out)
                t = todo[rows]
                ok[t], P[t], LAM[t], MU[t] = (out.ok, out.prices, out.buyer_weights,
                                              out.seller_weights)
                dual[t], primal[t], infeas[t] = out.dual, out.primal, out.infeasibility
                # next round: also the options near-best at the restricted optimum's prices
                P1[t] = np.where(np.isfinite(out.prices), out.prices, P0[t])
                opened.append(t[~out.ok])
            todo = np.concatenate(opened)
    return ok, P, LAM, MU, dual, primal, infeas


def _device_then_exact(Xf, Vf, bmf, Yf, Cf, smf, af, rf, *, exact: bool, tol: float,
                       chunk_size: int | None = None, finish: str = "host", **options: Any):
    """Device solve, then the exact finish (``finish``: "device" or "host").

    Returns ``(ok, P, LAM, MU, iterations, cert)``; ``cert`` is ``None`` or ``(have, dual,
    primal, infeas)`` with the certificate of the economies finished on the device
    (``have`` True), so the caller does not recompute it on the host."""
    if not exact:
        if options.get("solver", "newton") == "newton":
            options.setdefault("steps", 2)  # nothing polishes the answer: two steps per tau
        P0, LAM0, MU0, rel0, conv0, iters = device_solve(Xf, Vf, bmf, Yf, Cf, smf, af, rf,
                                                         chunk_size=chunk_size, **options)
        return (np.ones(len(P0), bool), P0.astype(np.float64), LAM0.astype(np.float64),
                MU0.astype(np.float64), iters, None)
    B, L = rf.shape
    size = _chunk_size(Xf, Yf, Vf, Cf, chunk_size)
    if chunk_size is None and finish == "host" and B >= 2 * _PIPE_MIN:
        size = min(size, max(_PIPE_MIN, -(-B // _PIPE_CHUNKS)))
    ok = np.zeros(B, bool)
    P = np.zeros((B, L))
    LAM = np.zeros(Vf.shape)
    MU = np.zeros(Cf.shape)
    iters = np.zeros(B, np.int64)
    have = np.zeros(B, bool)
    dual, primal, infeas = np.zeros(B), np.zeros(B), np.zeros(B)
    for s0, n, sol in _device_chunks(Xf, Vf, bmf, Yf, Cf, smf, af, rf, size, **options):
        sl = slice(s0, s0 + n)
        P0 = sol.prices.astype(np.float64)
        iters[sl] = sol.iterations
        rest = np.arange(n)
        if finish == "device":
            okd, P[sl], LAM[sl], MU[sl], dual[sl], primal[sl], infeas[sl] = \
                _device_exact_finish(P0, Xf[sl], Vf[sl], bmf[sl], Yf[sl], Cf[sl], smf[sl],
                                     af[sl], rf[sl])
            ok[sl] = have[sl] = okd
            rest = np.flatnonzero(~okd)
        if rest.size:
            g = s0 + rest
            ok[g], P[g], LAM[g], MU[g], _ = _exact_finish(
                P0[rest], Xf[g], Vf[g], bmf[g], Yf[g], Cf[g], smf[g], af[g], rf[g])
    return ok, P, LAM, MU, iters, (have, dual, primal, infeas)


# ----------------------------------------------------------------------------------------
# public entry point
# ----------------------------------------------------------------------------------------
def convexified_equilibrium(economy: MenuEconomy, markup: Any = 0.0, reserve: Any = 0.0,
                            method: str = "device", exact: bool = True, *,
                            tol: float = 1e-6, finish: str = "auto",
                            **device_options: Any) -> ConvexifiedResult:
    """Equilibrium of the convexified economy (the LP of DESIGN §2), batched.

    Parameters
    ----------
    economy : MenuEconomy with batch shape ``B``.
    markup : array broadcastable to the batch: buyers face ``(1+markup) p``.
    reserve : array broadcastable to ``batch + (L,)``: auctioneer reserve per good (negative
        = auctioneer supply).  The result's leading axes are the broadcast of ``B``,
        ``markup.shape`` and ``reserve.shape[:-1]`` -- e.g. a markup grid ``(G, 1)`` against
        ``B = (n,)`` gives ``(G, n)`` results.
    method : ``"device"`` (batched smoothed-dual solver + exact finish; one-good economies
        with ``exact=True`` use the envelope method), ``"envelope"`` (exact one-good method,
        ``L == 1`` only) or ``"lp"`` (HiGHS per economy: the baseline).
    exact : with ``method="device"``, run the exact finish (vertex weights, exact prices).
        With ``exact=False`` the smoothed device solution is returned (weights are logit
        choice probabilities made feasible by scaling buyers down; float32 by default; two
        Newton steps per smoothing level unless ``steps`` is given -- on the benchmark
        workload the relative gap is then ~1e-3 typically, a few 1e-2 at worst).
    tol : relative duality-gap tolerance for ``converged``.
    finish : where the exact finish of ``method="device"`` runs: ``"device"`` (each
        economy's LP restricted to its near-tied options, solved for the whole batch by a
        float64 dense dual simplex on the device and certified there against the full
        menus; the few economies it does not certify go to the host finish), ``"host"``
        (the same restricted LPs by HiGHS, block-diagonal, with column generation) or
        ``"auto"`` (device on accelerators, host on CPU, where HiGHS is faster).  Both give
        a certified vertex optimum; they may pick different optimal vertices when the LP
        has several.
    device_options : passed to the device solver (see :func:`jaxwalras.convexified.device_solve`):
        ``solver``, ``stages``, ``steps``, ``tau0``, ``tau_min``, ``learning_rate``,
        ``chunk_size``, ``device_tol`` (validated, and unused by the envelope method).

    Returns
    -------
    ConvexifiedResult (float64 numpy arrays when exact or ``method="lp"``).

    Notes
    -----
    ``iterations`` is 0 for the envelope method.
    With ``method="lp"`` or ``exact=True`` the weights are a VERTEX optimum: at most ``L``
    agents have more than one positive weight and every positive-weight option is in that
    agent's demand set at ``(1+markup) p`` (supply set at ``p``) up to ~1e-9 x scale; check with
    :func:`demand_gaps`.  Infeasible LPs (reserve larger than total capacity) give
    ``converged=False`` and NaN prices.

    Examples
    --------
    >>> import jaxwalras as jw
    >>> ce = jw.convexified_equilibrium(jw.examples.milgrom_watt_table1(), method="lp")
    >>> round(float(ce.prices[0]), 2)
    0.5
    """
    if method not in ("device", "lp", "envelope"):
        raise ValueError(f"method: must be 'device', 'lp' or 'envelope', got {method!r}")
    if method == "envelope" and economy.n_goods != 1:
        raise ValueError(f"method: 'envelope' is the exact single-good method and needs "
                         f"L == 1 goods, got L = {economy.n_goods}")
    _check_device_options(device_options)
    if finish not in ("auto", "device", "host"):
        raise ValueError(f"finish: must be 'auto', 'device' or 'host', got {finish!r}")
    if finish == "auto":
        import jax
        finish = "host" if jax.default_backend() == "cpu" else "device"
    if not isinstance(tol, (int, float)) or not tol > 0:
        raise ValueError(f"tol: must be a positive number, got {tol!r}")
    batch, a, r = broadcast_inputs(economy, markup, reserve)
    X, V, Y, C, bm, sm = _host_arrays(economy, batch)
    L = economy.n_goods
    B = int(np.prod(batch, dtype=np.int64))
    flat = lambda z, k: np.ascontiguousarray(z.reshape((B,) + z.shape[len(batch):]))  # noqa: E731
    Xf, Vf, Yf, Cf, bmf, smf = (flat(z, 0) for z in (X, V, Y, C, bm, sm))
    af, rf = a.reshape(B), r.reshape(B, L)
    cert = None
    if method == "lp":
        ok, P, LAM, MU, it = _lp_batch(Xf, Vf, bmf, Yf, Cf, smf, af, rf)
    elif method == "envelope" or (exact and L == 1):
        ok, P, LAM, MU, it = _single_good_exact(Xf, Vf, bmf, Yf, Cf, smf, af, rf)
    else:
        ok, P, LAM, MU, it, cert = _device_then_exact(Xf, Vf, bmf, Yf, Cf, smf, af, rf,
                                                     exact=exact, tol=tol, finish=finish,
                                                     **device_options)
    if cert is None:
        dual, primal, gap, rel, infeas = _certificate(P, LAM, MU, Xf, Vf, bmf, Yf, Cf, smf,
                                                      af, rf)
    else:   # certified on the device where ``have`` (same formulas); the rest here
        have, dual, primal, infeas = cert
        m = np.flatnonzero(~have)
        if m.size:
            dual[m], primal[m], _, _, infeas[m] = _certificate(
                P[m], LAM[m], MU[m], Xf[m], Vf[m], bmf[m], Yf[m], Cf[m], smf[m], af[m], rf[m])
        gap = dual - primal
        rel = _rel_gap(gap, dual, primal, Vf, Cf, af)
    scale = np.maximum(np.abs(Vf).max((-1, -2)), np.abs(Cf).max((-1, -2))) + 1.0
    conv = ok & (rel <= tol) & (infeas <= 1e-9 * scale * max(1, Vf.shape[-2]))
    nanp = ~ok
    P = np.where(nanp[:, None], np.nan, P)
    shape = lambda z: z.reshape(batch + z.shape[1:])  # noqa: E731
    return ConvexifiedResult(
        prices=shape(P), buyer_prices=shape(P * (1.0 + af[:, None])),
        buyer_weights=shape(LAM), seller_weights=shape(MU), dual_value=shape(dual),
        primal_value=shape(primal), gap=shape(gap), rel_gap=shape(rel),
        converged=shape(conv), iterations=shape(it), markup=a, reserve=r,
        infeasibility=shape(infeas))


# ----------------------------------------------------------------------------------------
# differentiable smoothed equilibrium (implicit differentiation)
# ----------------------------------------------------------------------------------------
class SmoothedEquilibrium(NamedTuple):
    """Entropic-smoothed convexified equilibrium (differentiable; leading axes = batch).

    prices (..., L); buyer_weights (..., N, Kb) and seller_weights (..., F, Ks) are logit
    choice probabilities ``softmax(surplus / (tau * value_scale))``; welfare (...,) is
    ``sum lam V - sum mu C``; excess_supply (..., L) ``sum mu Y - sum lam X - R`` (zero on
    goods with a positive price at the smoothed optimum).
    """

    prices: Any
    buyer_weights: Any
    seller_weights: Any
    welfare: Any
    excess_supply: Any


def _smoothed_single(X, V, bm, Y, C, sm, alpha, R, *, tau: float, stages: int, steps: int):
    import jax
    import jax.numpy as jnp
    from .kernels import menu
    from .kernels.smoothed_dual import normalisation, solve_smoothed_dual
    sg = jax.lax.stop_gradient
    sol = solve_smoothed_dual(sg(X), sg(V), bm, sg(Y), sg(C), sm, sg(alpha), sg(R),
                              stages=stages, steps=steps, tau0=max(0.05, tau), tau_min=tau,
                              device_tol=0.0)
    vs, _ = normalisation(X, V, Y, C)   # tau is relative to the value scale (differentiable)
    t = vs * tau
    ps = sg(sol.prices)

    def grad_p(p, X, V, Y, C, alpha, R):
        return jax.grad(menu.smoothed_dual)(p, X, V, bm, Y, C, sm, alpha, R, t)

    G = grad_p(ps, X, V, Y, C, alpha, R)          # depends on the inputs (not on ps)
    H = sg(jax.jacfwd(grad_p)(ps, X, V, Y, C, alpha, R))
    L = ps.shape[0]
    free = sg((ps > 0) | (G < 0))
    both = free[:, None] & free[None, :]
    Hf = jnp.where(both, H, 0.0) + jnp.eye(L, dtype=H.dtype) * (
        jnp.where(free, 0.0, 1.0) + 1e-12 * jnp.trace(jnp.abs(H)) / L)
    # one Newton step from the (stopped) solution: value = solution (up to the residual),
    # derivative = -H_ff^{-1} d/dtheta grad_f g_tau  (implicit function theorem)
    p = ps - jnp.where(free, jnp.linalg.solve(Hf, jnp.where(free, G, 0.0)), 0.0)
    lam, mu = menu.smoothed_weights(p, X, V, bm, Y, C, sm, alpha, t)
    welfare = jnp.sum(lam * V) - jnp.sum(mu * C)
    ex = menu.excess_supply(lam, X, mu, Y, R)
    return SmoothedEquilibrium(p, lam, mu, welfare, ex)


def smoothed_equilibrium(economy: MenuEconomy, markup: Any = 0.0, reserve: Any = 0.0, *,
                         tau: float = 1e-3, stages: int = 6, steps: int = 5
                         ) -> SmoothedEquilibrium:
    """Entropic-smoothed convexified equilibrium, differentiable in every input.

    Minimises ``g_tau(p)`` (the dual with ``max`` replaced by ``tau_abs * logsumexp(./tau_abs)``,
    ``tau_abs = tau * value_scale``) over ``p >= 0`` on the device, then attaches exact
    first derivatives by implicit differentiation of the optimality condition
    ``grad_f g_tau(p*; theta) = 0`` on the free (positive-price) goods: one Newton step
    ``p = p* - H_ff^{-1} grad_f g_tau(p*; theta)`` with ``p*`` and ``H`` held constant, so
    ``dp/dtheta = -H_ff^{-1} d grad_f/dtheta`` without differentiating the iterations.

    ``economy`` may hold traced JAX arrays (build it with :meth:`MenuEconomy.replace`), and
    ``markup``/``reserve`` may be traced: use under ``jax.grad``/``jax.jit``/``jax.vmap``.
    Runs in the default JAX float dtype (enable x64 for float64).  As ``tau -> 0`` the
    solution tends to the convexified equilibrium (the weights to a tie-splitting mix).
    """
    import jax
    import jax.numpy as jnp
    if not isinstance(economy, MenuEconomy):
        raise TypeError(f"economy: expected a jaxwalras.MenuEconomy, got {type(economy).__name__}")
    if not isinstance(tau, (int, float)) or not 0 < tau <= 1:
        raise ValueError(f"tau: must be a number in (0, 1] (relative to the value scale), got {tau!r}")
    bshape = economy.batch_shape
    L = economy.n_goods
    a = jnp.asarray(markup, dtype=jnp.result_type(float))
    r = jnp.asarray(reserve, dtype=jnp.result_type(float))
    if r.ndim == 0:
        r = r[None]
    batch = jnp.broadcast_shapes(bshape, a.shape, r.shape[:-1])
    fields = [jnp.asarray(getattr(economy, f)) for f in
              ("buyer_bundles", "buyer_values", "buyer_mask", "seller_bundles", "seller_costs",
               "seller_mask")]
    dt = jnp.result_type(float)
    fields = [f if f.dtype == bool else f.astype(dt) for f in fields]
    nb = len(bshape)
    fields = [jnp.broadcast_to(f, batch + f.shape[nb:]) for f in fields]
    a = jnp.broadcast_to(a, batch)
    r = jnp.broadcast_to(r, batch + (L,))
    fn = lambda X, V, bm, Y, C, sm, al, R: _smoothed_single(  # noqa: E731
        X, V, bm, Y, C, sm, al, R, tau=float(tau), stages=int(stages), steps=int(steps))
    for _ in batch:
        fn = jax.vmap(fn)
    return fn(*fields, a, r)


def demo_convexified(print_fn: Any = print) -> None:
    """CLI demo: the Milgrom-Watt Table 1 economy and a small batch (built-in data)."""
    from . import examples
    eco = examples.milgrom_watt_table1()
    r = convexified_equilibrium(eco)
    q = np.asarray(eco.buyer_bundles[:, 1, 0])
    v = np.asarray(eco.buyer_values[:, 1]) / q
    print_fn("Convexified equilibrium of Milgrom & Watt's Table 1 economy (seller: marginal cost 0.50)")
    print_fn("| buyer | value/unit | quantity | weight on buying |")
    print_fn("|---|---|---|---|")
    for n in range(len(q)):
        print_fn(f"| {n + 1} | {v[n]:.2f} | {q[n]:.2f} | {float(r.buyer_weights[n, 1]):.3f} |")
    sold = float((r.buyer_weights[:, 1] * q).sum())
    print_fn(f"price {float(r.prices[0]):.2f}, units traded {sold:.2f}, seller mixes "
             f"{[(k, round(float(w), 3)) for k, w in enumerate(r.seller_weights[0]) if w > 0]} "
             f"(k units, weight); rel. duality gap {float(r.rel_gap):.1e}")
    batch = examples.random_menu_economy(40, 4, 5, 5, 3, seed=0, batch_shape=(64,))
    rb = convexified_equilibrium(batch, markup=np.array([[0.0], [0.1]]))
    print_fn(f"64 random 3-good economies x 2 markups on the device + exact finish: all converged "
             f"= {bool(rb.converged.all())}, max rel. gap {float(rb.rel_gap.max()):.1e}, "
             f"mean welfare {rb.primal_value.mean(-1).round(3).tolist()} at markups [0, 0.1]")
