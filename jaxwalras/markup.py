"""The markup mechanism for non-convex economies (Milgrom and Watt, 2022).

A markup outcome ``(alpha, p, omega)``: sellers choose from their supply sets at ``p``, buyers
from their demand sets at ``(1+alpha) p``, production covers consumption in every good and
buyers pay at least what sellers receive, ``(1+alpha) p.sum x >= p.sum y``.  For a fixed
``alpha`` we solve the convexified economy (values scaled by ``1/(1+alpha)``, auctioneer
reserve ``R``) and round its vertex solution (:func:`jaxwalras.rounding.round_flat`).

Budget feasibility is NOT monotone in ``alpha``, so the search (``method="grid"``)
evaluates many markups in ONE batched call (``{0}`` plus a geometric grid, against every
economy of the batch), then refines between the last infeasible and the first feasible
grid point.  For small economies (``backend="device"``) every convexified LP of a call is
solved EXACTLY at once by a batched dense dual simplex in JAX
(:func:`jaxwalras.kernels.simplex.convexified_lp_simplex`; each answer is certified in
float64 against the full-menu dual, HiGHS takes the rare rest); larger economies go
through :func:`jaxwalras.convexified_equilibrium`.

The LP's optimal prices are often not unique (degenerate vertices have a whole face of dual
optima) and budget feasibility depends on which one is used, so when the LP prices leave a
deficit every candidate rounding is re-priced: the prices that keep it in everyone's
demand/supply sets and maximise the budget surplus, a tiny LP in ``p``
(:func:`jaxwalras.kernels.simplex.max_budget_prices`).  The answer then does not depend on
which optimal prices the LP solver returned.

For one good with all-or-nothing buyers and one linear-cost integer seller (the paper's
Table 1 and its large version) ``method="scan"`` finds the least markup exactly by a
breakpoint scan (:func:`jaxwalras.single_good.table1_markup`).
"""
from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ._batching import map_chunks, padded_size
from ._validation import check_choice, warn_deprecated
from .convexified import convexified_equilibrium
from .economy import MenuArrays, MenuEconomy
from .highs import menu_lp_feasible
from .kernels.simplex import convexified_lp_simplex, max_budget_prices
from .mechanisms import flat_economy, reserve_levels
from .rounding import round_flat
from .single_good import table1_markup, table1_structure
from .status import Status
from .welfare import bound_terms

__all__ = ["MarkupResult", "markup_mechanism"]


class MarkupResult(NamedTuple):
    """Outcome of :func:`markup_mechanism` (leading axes = batch axes).

    Attributes
    ----------
    markup : ndarray, shape (...)
        Least budget-feasible markup found, ``alpha >= 0``.
    prices : ndarray, shape (..., L)
        Seller prices ``p``.
    buyer_prices : ndarray, shape (..., L)
        ``(1 + alpha) p``.
    buyer_choice : ndarray of int, shape (..., N)
        Each buyer's option (in its demand set at buyer prices).
    seller_choice : ndarray of int, shape (..., F)
        Each seller's option (in its supply set at ``p``).
    excess_supply : ndarray, shape (..., L)
        ``sum y - sum x >= 0``.
    budget_surplus : ndarray, shape (...)
        ``(1 + alpha) p.sum x - p.sum y >= 0``.
    welfare : ndarray, shape (...)
        ``sum v - sum c`` of the outcome.
    welfare_bound : ndarray, shape (...)
        Certificate ``S* - welfare <= welfare_bound`` (bound-form first welfare theorem at
        the seller prices ``p``).
    reserve : ndarray, shape (..., L)
        Auctioneer reserve used in the convexified LP.
    certified_minimal : ndarray of bool, shape (...)
        The markup is proven least (``alpha = 0``, or the exact scan).
    markup_lower : ndarray, shape (...)
        Largest evaluated infeasible markup below ``markup`` (not a proof of minimality:
        feasibility is not monotone).
    converged : ndarray of bool, shape (...)
        The outcome satisfies every condition of the definition.
    status : ndarray of int, shape (...)
        :class:`jaxwalras.Status`: ``OK``, ``NO_SOLUTION`` (no budget-feasible markup
        ``<= max_markup``), ``INFEASIBLE`` (the reserve exceeds what the sellers can
        produce), ``SOLVER_FAILED`` (the convexified LP failed) or ``NOT_CERTIFIED``.
    iterations : ndarray of int, shape (...)
        Markups evaluated for the economy (convexified LP + rounding each).
    """
    markup: Any
    prices: Any
    buyer_prices: Any
    buyer_choice: Any
    seller_choice: Any
    excess_supply: Any
    budget_surplus: Any
    welfare: Any
    welfare_bound: Any
    reserve: Any
    certified_minimal: Any
    markup_lower: Any
    converged: Any
    status: Any
    iterations: Any


class _Prepared(NamedTuple):
    """Per-economy arrays and scales shared by every search phase (computed once)."""
    A: MenuArrays
    vs: np.ndarray          # value scale per economy
    qs: np.ndarray          # quantity scale per economy and good
    bscale: np.ndarray      # budget tolerance scale per economy
    simplex: bool           # the LPs are small enough for the dense device simplex


class _Eval(NamedTuple):
    """Evaluation of a flat list of (economy, markup) instances."""
    ok: np.ndarray
    lp_ok: np.ndarray
    p: np.ndarray
    cb: np.ndarray
    cs: np.ndarray
    exc: np.ndarray
    bud: np.ndarray
    alpha: np.ndarray

    def take(self, idx: Any) -> "_Eval":
        return _Eval(*(f[idx] for f in self))


# --- device LP kernels --------------------------------------------------------------------
# Economies whose LP tableau has at most this many cells are solved EXACTLY on the device by
# the batched dual simplex of :func:`jaxwalras.kernels.simplex.convexified_lp_simplex`
# (backend="device"); larger ones use :func:`jaxwalras.convexified_equilibrium`.
_SIMPLEX_MAX_CELLS = 4096     # ~ the CPU break-even with the smoothed solver + exact finish
_CHUNKS = (32, 256)           # padded batch sizes of the device LP kernels (one compile each);
_CHUNKS_ACCEL = (32, 2048)    # on accelerators: fewer, larger calls
_POLISH_TOP_K = 8


@functools.partial(jax.jit, static_argnames=("max_iter",))
def _simplex_batch(X, V, bm, Y, C, sm, a, r, *, max_iter: int):
    return jax.vmap(lambda *z: convexified_lp_simplex(*z, max_iter=max_iter))(
        X, V, bm, Y, C, sm, a, r)


_polish_batch = jax.jit(jax.vmap(max_budget_prices))


def _simplex_fits(X: np.ndarray, Y: np.ndarray) -> bool:
    N, Kb, L = X.shape[-3:]
    F, Ks = Y.shape[-3:-1]
    return (N + F + L) * (N * Kb + F * Ks + L + 1) <= _SIMPLEX_MAX_CELLS


def _run_chunked(fn, args: list[np.ndarray], n: int) -> list[np.ndarray]:
    """``fn`` on chunks of one of the ``_CHUNKS`` sizes (padded by repeating a row): at
    most two compiled shapes per economy shape, never one per call."""
    sizes = _CHUNKS if jax.default_backend() == "cpu" else _CHUNKS_ACCEL
    size = sizes[0] if n <= sizes[0] else sizes[-1]
    outs = [out for _, _, out in map_chunks(
        lambda idx: fn(*(jnp.asarray(a[idx]) for a in args)), n, size, floor=size)]
    return [np.concatenate(z) for z in zip(*outs)]


def _lp_certified(A: MenuArrays, a, r, p, lam, mu) -> np.ndarray:
    """float64 check of an LP answer: weights on the simplex and feasible, and zero
    duality gap against the FULL-menu dual ``g(p)`` (so ``p`` and the weights are optimal)."""
    X, V, bm, Y, C, sm = A
    a1 = (1.0 + a)[:, None, None]
    u = np.where(bm, V - a1 * np.einsum("inkl,il->ink", X, p), -np.inf)
    w = np.where(sm, np.einsum("ifkl,il->ifk", Y, p) - C, -np.inf)
    dual = u.max(-1).sum(-1) / (1.0 + a) + w.max(-1).sum(-1) - np.einsum("il,il->i", p, r)
    primal = (lam * V).sum((-1, -2)) / (1.0 + a) - (mu * C).sum((-1, -2))
    use = np.einsum("ink,inkl->il", lam, X) + r - np.einsum("ifk,ifkl->il", mu, Y)
    vs = 1.0 + np.maximum(np.abs(V).max((-1, -2)), np.abs(C).max((-1, -2)))
    qs = 1.0 + np.maximum(X.max((1, 2, 3)) * X.shape[1], Y.max((1, 2, 3)) * Y.shape[1])
    simplex = (np.abs(lam.sum(-1) - 1.0).max(-1) <= 1e-9) & (np.abs(mu.sum(-1) - 1.0).max(-1) <= 1e-9)
    return (np.isfinite(p).all(-1) & (p >= 0).all(-1) & simplex
            & (dual - primal <= 1e-9 * vs * (X.shape[1] + Y.shape[1]))
            & (use.max(-1) <= 1e-9 * qs))


def _solve_lps(D: _Prepared, idx: np.ndarray, a: np.ndarray, r: np.ndarray, backend: str,
               solver_options: dict) -> tuple[np.ndarray, ...]:
    """Convexified LPs for instances (economy ``idx``, markup ``a``, reserve ``r``).

    Returns ``(lp_ok, p, lam, mu, n_fallback)``: ``lp_ok`` = an optimal vertex was found
    (float64-certified for the device simplex; HiGHS status otherwise)."""
    A = D.A.take(idx)
    X, V, bm, Y, C, sm = A
    n = idx.size
    if backend == "device" and D.simplex and not solver_options:
        vs, qs = D.vs[idx], D.qs[idx]
        N, Kb, L = X.shape[1:]
        F, Ks = C.shape[1:]
        max_iter = 4 * (N + F + L + N * Kb + F * Ks + L)
        with jax.enable_x64(True):       # scoped: the global flag is untouched
            pn, lam, mu, st, _ = _run_chunked(
                functools.partial(_simplex_batch, max_iter=max_iter),
                [X / qs[:, None, None, :], V / vs[:, None, None], bm, Y / qs[:, None, None, :],
                 C / vs[:, None, None], sm, a, r / qs], n)
        p = pn * vs[:, None] / qs
        ok = (st == 0) & _lp_certified(A, a, r, p, lam, mu)
        # Not certified (iteration cap, round-off) -> HiGHS decides; rare.  "Infeasible"
        # (status 1) does not depend on the markup, so HiGHS checks ONE instance per
        # (economy, reserve) and only a refuted claim sends the others to HiGHS too.

        def highs(sel):
            sub = MenuEconomy.from_arrays(A.take(sel))
            ce = convexified_equilibrium(sub, markup=a[sel], reserve=r[sel], method="lp")
            ok[sel] = np.asarray(ce.converged)
            p[sel] = np.nan_to_num(np.asarray(ce.prices, float))
            lam[sel] = np.asarray(ce.buyer_weights, float)
            mu[sel] = np.asarray(ce.seller_weights, float)

        inf = np.nonzero(st == 1)[0]
        if inf.size:
            key = np.concatenate([idx[inf, None].astype(float), r[inf]], 1)
            _, first, inv = np.unique(key, axis=0, return_index=True, return_inverse=True)
            highs(inf[first])
            refuted = ok[inf[first]][inv.reshape(-1)]
            st[inf[refuted]] = 2
        bad = np.nonzero(~ok & (st != 1))[0]
        if bad.size:
            highs(bad)
        return ok, p, lam, mu, bad.size
    opts = dict(solver_options)
    if backend == "device":
        method = "smoothed" if opts else "auto"
        if "chunk_size" not in opts:
            # bucket the flat batch to a power of two: one compiled shape per bucket
            opts["chunk_size"] = padded_size(n, floor=8, cap=4096)
    else:
        method = "lp"
    ce = convexified_equilibrium(MenuEconomy.from_arrays(A), markup=a, reserve=r,
                                 method=method, **opts)
    return (np.asarray(ce.converged), np.nan_to_num(np.asarray(ce.prices, float)),
            np.asarray(ce.buyer_weights, float), np.asarray(ce.seller_weights, float), 0)


def _consistent_budget(A: MenuArrays, a, p, cb, cs):
    """float64: (largest demand/supply-set violation, budget) of pure allocations
    ``cb, cs`` at seller prices ``p`` and markup ``a`` (flat batch)."""
    X, V, bm, Y, C, sm = A
    beta = (1.0 + a)[:, None] * p
    ub = np.where(bm, V - np.einsum("inkl,il->ink", X, beta), -np.inf)
    us = np.where(sm, np.einsum("ifkl,il->ifk", Y, p) - C, -np.inf)
    gb = ub.max(-1) - np.take_along_axis(ub, cb[..., None], -1)[..., 0]
    gs = us.max(-1) - np.take_along_axis(us, cs[..., None], -1)[..., 0]
    x = np.take_along_axis(X, cb[..., None, None], 2)[:, :, 0].sum(1)
    y = np.take_along_axis(Y, cs[..., None, None], 2)[:, :, 0].sum(1)
    gap = np.maximum(gb.max(-1, initial=0.0), gs.max(-1, initial=0.0))
    return gap, np.einsum("il,il->i", beta, x) - np.einsum("il,il->i", p, y)


def _reprice(D: _Prepared, idx, a, p0, cand_b, cand_s, cand_ok):
    """Best prices for each candidate rounding (instances where the LP prices fail).

    The LP's dual prices are often not unique (a degenerate vertex has a whole face of
    optimal prices, and different solvers return different points of it), and budget
    feasibility depends on WHICH price is used.  So for every physically feasible candidate
    rounding ``omega`` we solve the small LP ``max budget(p)`` over all prices that keep
    ``omega`` in everyone's demand/supply sets
    (:func:`jaxwalras.kernels.simplex.max_budget_prices`); every answer is re-verified
    in float64.  Returns ``(ok, p, cb, cs, budget)`` per instance."""
    ii, cc = np.nonzero(cand_ok)
    n = idx.size
    ok = np.zeros(n, bool)
    P = p0.copy()
    CB = cand_b[:, 0].copy()
    CS = cand_s[:, 0].copy()
    BUD = np.full(n, -np.inf)
    if ii.size == 0:
        return ok, P, CB, CS, BUD
    e = idx[ii]
    A = D.A.take(e)
    X, V, bm, Y, C, sm = A
    vs, qs = D.vs[e], D.qs[e]
    cb, cs, ac = cand_b[ii, cc], cand_s[ii, cc], a[ii]
    Xn, Yn = X / qs[:, None, None, :], Y / qs[:, None, None, :]
    Vn, Cn = V / vs[:, None, None], C / vs[:, None, None]
    Xh = np.take_along_axis(Xn, cb[..., None, None], 2)               # held options
    Vh = np.take_along_axis(Vn, cb[..., None], 2)
    Yh = np.take_along_axis(Yn, cs[..., None, None], 2)
    Ch = np.take_along_axis(Cn, cs[..., None], 2)
    pn0 = p0[ii] * qs / vs[:, None]
    pmax = 1e3 * (1.0 + pn0.max(-1))
    with jax.enable_x64(True):       # scoped: the global flag is untouched
        pn, st = _run_chunked(_polish_batch, [Xh - Xn, Vh - Vn, bm, Yn - Yh, Cn - Ch, sm,
                                              Xh[:, :, 0].sum(1), Yh[:, :, 0].sum(1), ac, pmax],
                              ii.size)
    pp = pn * vs[:, None] / qs
    gap, bud = _consistent_budget(A, ac, pp, cb, cs)
    stol = 1e-8 * (1.0 + vs) * (1.0 + np.abs(pp).max(-1))
    good = (st == 0) & (gap <= stol) & np.isfinite(bud)
    bud = np.where(good, bud, -np.inf)
    # best candidate per instance
    order = np.lexsort((-bud, ii))
    first = np.ones(order.size, bool)
    first[1:] = ii[order][1:] != ii[order][:-1]
    sel = order[first]
    t = ii[sel]
    BUD[t] = bud[sel]
    P[t], CB[t], CS[t] = pp[sel], cb[sel], cs[sel]
    ok[t] = np.isfinite(bud[sel])
    return ok, P, CB, CS, BUD


def _evaluate(D: _Prepared, idx: np.ndarray, a: np.ndarray, R: np.ndarray, backend: str,
              max_combinations: int, solver_options: dict, reprice: bool = True) -> _Eval:
    """Convexify + round a flat list of (economy, markup) instances in ONE batched call.

    An instance is budget feasible when the rounding at the LP prices has no deficit or,
    failing that, when some candidate rounding has no deficit at its best prices
    (:func:`_reprice`), so the answer does not depend on which optimal dual prices the
    LP solver happened to return."""
    lp_ok, p, wb, ws, _ = _solve_lps(D, idx, a, R[idx], backend, solver_options)
    A = D.A.take(idx)
    cb, cs, feas, exc, bud, _, _, cand = round_flat(
        A, p, a, wb, ws, sellers_only=False, max_combinations=max_combinations,
        top_k=_POLISH_TOP_K)
    btol = -1e-9 * D.bscale[idx]
    ok = lp_ok & feas & (bud >= btol)
    redo = np.nonzero(reprice & lp_ok & feas & ~ok)[0]
    if redo.size:
        ok2, p2, cb2, cs2, bud2 = _reprice(D, idx[redo], a[redo], p[redo], cand[0][redo],
                                           cand[1][redo], cand[2][redo])
        ok2 &= bud2 >= btol[redo]
        r = redo[ok2]
        ok[r], p[r], cb[r], cs[r], bud[r] = True, p2[ok2], cb2[ok2], cs2[ok2], bud2[ok2]
        exc[r] = (np.take_along_axis(A.Y[r], cs[r][..., None, None], 2)[:, :, 0].sum(1)
                  - np.take_along_axis(A.X[r], cb[r][..., None, None], 2)[:, :, 0].sum(1))
    return _Eval(ok, lp_ok, p, cb, cs, exc, bud, a)


def _search(D: _Prepared, todo: np.ndarray, R: np.ndarray, backend: str, n_grid: int,
            max_markup: float, min_markup: float, refine_rounds: int, n_refine: int,
            max_combinations: int, solver_options: dict):
    """Least feasible markup per economy ``todo`` by a batched grid + refinement.

    Phase 1 evaluates ``{0} + geomspace(min_markup, max_markup, n_grid)`` for every economy
    in ONE call; phase 2 refines ``refine_rounds`` times between the last infeasible and the
    first feasible point (``n_refine`` points per economy per round, one call per round).
    Returns ``(found, best (_Eval per economy), certified, lower, lp_ok0, evaluations)``."""
    b = todo.size
    grid = np.concatenate([[0.0], np.geomspace(min_markup, max_markup, n_grid)])
    G = grid.size
    ev = _evaluate(D, np.tile(todo, G), np.repeat(grid, b), R, backend, max_combinations,
                   solver_options)
    ev = _Eval(*(v.reshape((G, b) + v.shape[1:]) for v in ev))
    evals = np.full(b, G, np.int64)
    found = ev.ok.any(0)
    j = np.argmax(ev.ok, 0)
    cols = np.arange(b)
    best = _Eval(*(v[j, cols].copy() for v in ev))
    certified = found & (j == 0)                      # alpha = 0 is trivially the least
    lower = np.where(found & (j > 0), grid[np.maximum(j - 1, 0)], 0.0)
    lp_ok0 = ev.lp_ok[0]
    rows = np.nonzero(found & (j > 0))[0]
    lo, hi = grid[j[rows] - 1], grid[j[rows]]
    fr = np.arange(1, n_refine + 1) / (n_refine + 1)
    for _ in range(refine_rounds):
        if rows.size == 0:
            break
        A = lo[None, :] + (hi - lo)[None, :] * fr[:, None]              # (n_refine, r)
        ev = _evaluate(D, np.tile(todo[rows], n_refine), A.reshape(-1), R, backend,
                       max_combinations, solver_options)
        ev = _Eval(*(v.reshape((n_refine, rows.size) + v.shape[1:]) for v in ev))
        evals[rows] += n_refine
        anyok = ev.ok.any(0)
        jj = np.argmax(ev.ok, 0)
        rc = np.arange(rows.size)
        newlo = np.where(jj > 0, A[np.maximum(jj - 1, 0), rc], lo)
        upd = np.nonzero(anyok)[0]
        for bk, ek in zip(best, ev):
            bk[rows[upd]] = ek[jj[upd], upd]
        lo = np.where(anyok, newlo, A[-1])     # none feasible inside: hi stays, lo moves up
        hi = np.where(anyok, A[jj, rc], hi)
        lower[rows] = lo
    return found, best, certified, lower, lp_ok0, evals


def _prepare(A: MenuArrays) -> _Prepared:
    X, V, bm, Y, C, sm = A
    vs = np.maximum(np.abs(V).max((-1, -2)), np.abs(C).max((-1, -2)))
    vs = np.where(vs > 0, vs, 1.0)
    qs = np.maximum(X.max((1, 2)), Y.max((1, 2)))
    qs = np.where(qs > 0, qs, 1.0)
    bscale = 1.0 + max(np.abs(V).max(initial=0.0), np.abs(C).max(initial=0.0)) * max(V.shape[1], C.shape[1])
    return _Prepared(A, vs, qs, np.full(V.shape[0], bscale), _simplex_fits(X, Y))


def _finish_markup(A: MenuArrays, alpha, p, cb, cs, R, certified, lower, status, evals,
                   batch) -> MarkupResult:
    """Verify the definition in float64 and assemble the result."""
    X, V, bm, Y, C, sm = A
    wb = np.zeros(V.shape)
    np.put_along_axis(wb, cb[..., None], 1.0, -1)
    ws = np.zeros(C.shape)
    np.put_along_axis(ws, cs[..., None], 1.0, -1)
    x = np.einsum("bnk,bnkl->bl", wb, X)
    y = np.einsum("bfk,bfkl->bl", ws, Y)
    px, py = np.einsum("bl,bl->b", p, x), np.einsum("bl,bl->b", p, y)
    # float round-off can leave a budget "deficit" of ~1e-16 at an exactly binding markup:
    # raise alpha by a few ulps so that (1+alpha) p.x >= p.y holds exactly in float64
    for _ in range(4):
        short = py - (1.0 + alpha) * px
        fix = (short > 0) & (px > 0) & (short <= 1e-9 * (1.0 + py))
        if not fix.any():
            break
        alpha = np.where(fix, np.nextafter(alpha + short / np.where(px > 0, px, 1.0), np.inf), alpha)
    beta = (1.0 + alpha)[:, None] * p
    wbnd = bound_terms(A, p, wb, ws)
    # definition checks: demand sets at beta, supply sets at p, feasibility, budget
    vscale = 1.0 + max(np.abs(V).max(initial=0.0), np.abs(C).max(initial=0.0))
    ub = np.where(bm, V - np.einsum("bnkl,bl->bnk", X, beta), -np.inf)
    us = np.where(sm, np.einsum("bfkl,bl->bfk", Y, p) - C, -np.inf)
    gap_b = ub.max(-1) - np.take_along_axis(ub, cb[..., None], -1)[..., 0]
    gap_s = us.max(-1) - np.take_along_axis(us, cs[..., None], -1)[..., 0]
    tol = 1e-7 * vscale
    budget = np.einsum("bl,bl->b", beta, x) - np.einsum("bl,bl->b", p, y)
    ok = ((gap_b <= tol).all(1) & (gap_s <= tol).all(1) & wbnd.feasible
          & (budget >= -1e-9 * vscale * max(V.shape[1], 1)) & (status == Status.OK))
    status = np.where((status == Status.OK) & ~ok, Status.NOT_CERTIFIED, status)
    sh = lambda z: np.asarray(z).reshape(batch + np.shape(z)[1:])  # noqa: E731
    return MarkupResult(
        markup=sh(alpha), prices=sh(p), buyer_prices=sh(beta), buyer_choice=sh(cb),
        seller_choice=sh(cs), excess_supply=sh(y - x), budget_surplus=sh(budget),
        welfare=sh(wbnd.welfare), welfare_bound=sh(wbnd.bound), reserve=sh(R),
        certified_minimal=sh(certified & ok), markup_lower=sh(lower), converged=sh(ok),
        status=sh(status.astype(np.int64)), iterations=sh(evals.astype(np.int64)))


def _resolve(method: str, backend: str, exact_single_good: Any) -> tuple[str, str]:
    if method in ("device", "lp"):
        new = "device" if method == "device" else "host"
        warn_deprecated(f'method="{method}"', f'backend="{new}"', stacklevel=4)
        method, backend = "auto", new
    check_choice(method, "method", ("auto", "grid", "scan"))
    check_choice(backend, "backend", ("auto", "device", "host"))
    if exact_single_good is not None:
        warn_deprecated("exact_single_good=", 'method="grid" (or "scan")', stacklevel=4)
        if not exact_single_good and method == "auto":
            method = "grid"
    return method, ("device" if backend == "auto" else backend)


def markup_mechanism(economy: MenuEconomy, reserve: Any = "adaptive", *,
                     method: str = "auto", backend: str = "auto", n_grid: int = 16,
                     max_markup: float = 4.0, min_markup: float = 1e-4,
                     refine_rounds: int = 4, n_refine: int = 4,
                     max_combinations: int = 4096, exact_single_good: bool | None = None,
                     **solver_options: Any) -> MarkupResult:
    """The markup mechanism: the least markup ``alpha >= 0`` with a budget-feasible outcome.

    For each economy: solve the convexified economy at markup ``alpha`` with auctioneer
    demand ``R`` (the LP of ``convexified_equilibrium(economy, markup, reserve=R)``), round
    the ``<= L`` mixing agents to options in their demand/supply sets so that production
    covers consumption, choosing the rounding with the largest budget surplus; ``alpha`` is
    feasible when that surplus is ``>= 0`` at the LP prices or, failing that, at the best
    prices for some candidate rounding (re-pricing: the LP's optimal prices need not be
    unique, and any prices that keep the rounded allocation in everyone's demand/supply sets
    make a markup outcome).

    Parameters
    ----------
    economy : MenuEconomy
        Batch shape ``B``.
    reserve : {"adaptive", "none", "worst_case"} or array_like
        ``"adaptive"`` (default: try ``s * L * delta`` for ``s`` in 0, 1/8, 1/4, 1/2, 1,
        stopping at the first level with a budget-feasible markup), ``"none"`` (0),
        ``"worst_case"`` (``L * delta``, see :func:`jaxwalras.worst_case_reserve`), or an
        array broadcastable to ``B + (L,)`` (auctioneer demand per good, ``>= 0``).
    method : {"auto", "grid", "scan"}
        ``"grid"``: ``alpha = 0`` and a geometric grid of ``n_grid`` markups in
        ``[min_markup, max_markup]``, all evaluated in ONE batched call (markups x
        economies), then ``refine_rounds`` linear sub-grids of ``n_refine`` points between
        the last infeasible and the first feasible point (defaults: 17 + 16 evaluations per
        economy, final bracket ~0.2% of the markup).  Because feasibility is not monotone
        the grid answer is certified minimal only when it is 0.  ``"scan"``: the exact
        breakpoint scan for one good with all-or-nothing buyers and one linear
        integer-production seller; it minimises over ALL markup outcomes, so ``reserve``
        plays no role and is reported as 0.  ``"auto"``: the scan where every economy of
        the batch has that structure, else the grid.
    backend : {"auto", "device", "host"}
        Where the convexified LPs of the grid are solved: ``"device"`` (default for
        ``"auto"``): economies with a small LP tableau (``(N+F+L) (N Kb + F Ks + L + 1)
        <= 4096`` cells) and no ``solver_options`` by the batched dense dual simplex in
        JAX, certified in float64 (HiGHS for the rare uncertified ones), larger ones by
        ``convexified_equilibrium(method="auto")``; ``"host"``: HiGHS, one LP at a time.
        The search, rounding and re-pricing are the same for both, and so are the answers
        whenever the two solvers return the same optimal vertex.
    n_grid, max_markup, min_markup, refine_rounds, n_refine : markup search grid.
    max_combinations : int
        Rounding enumeration cap before the exact MILP fallback.
    exact_single_good : bool, optional
        Deprecated: ``False`` means ``method="grid"``.
    **solver_options
        Options of :func:`jaxwalras.convexified_equilibrium`'s smoothed device solver;
        given, they select it for every size.

    Returns
    -------
    MarkupResult
        ``converged`` is True only where every condition of the definition was re-verified
        in float64 (demand/supply sets, production covers consumption, no budget deficit).

    Raises
    ------
    TypeError, ValueError
        Bad economy, options or reserve (the message names the argument).

    References
    ----------
    P. Milgrom and M. Watt, "Linear pricing mechanisms for markets without convexity",
    EC 2022 (markup mechanisms; Table 1).

    Examples
    --------
    >>> import jaxwalras as jw
    >>> mk = jw.markup_mechanism(jw.examples.milgrom_watt_table1())
    >>> float(mk.prices[0]), round(float(mk.buyer_prices[0]), 3), int(mk.seller_choice[0])
    (0.5, 0.629, 4)
    """
    method, backend = _resolve(method, backend, exact_single_good)
    if not isinstance(n_grid, (int, np.integer)) or n_grid < 2:
        raise ValueError(f"n_grid: must be an integer >= 2, got {n_grid!r}")
    if not isinstance(n_refine, (int, np.integer)) or n_refine < 1:
        raise ValueError(f"n_refine: must be a positive integer, got {n_refine!r}")
    if not isinstance(refine_rounds, (int, np.integer)) or refine_rounds < 0:
        raise ValueError(f"refine_rounds: must be a non-negative integer, got {refine_rounds!r}")
    if not (np.isfinite(max_markup) and np.isfinite(min_markup) and 0 < min_markup < max_markup):
        raise ValueError(f"min_markup/max_markup: need 0 < min_markup < max_markup, got "
                         f"{min_markup!r}, {max_markup!r}")
    eco, batch, B = flat_economy(economy)
    A = eco.host_arrays()
    L = eco.n_goods
    levels = reserve_levels(reserve, eco, batch, B, sellers_only=False)   # validates
    if method in ("auto", "scan"):
        struct = table1_structure(A)
        if struct is None and method == "scan":
            raise ValueError("method: 'scan' needs every economy to have one good, "
                             "all-or-nothing buyers (menus {0, q}) and one seller producing "
                             "integer multiples of a unit at a constant marginal cost; use "
                             "method='grid' or 'auto'")
        if struct is not None:
            alpha, p, cb, cs, cert = table1_markup(A, struct)
            R = np.zeros((B, L))
            status = np.where(np.isfinite(alpha), Status.OK, Status.NO_SOLUTION)
            return _finish_markup(A, alpha, p, cb, cs, R, cert, np.where(cert, alpha, 0.0),
                                  status, np.ones(B, np.int64), batch)
    D = _prepare(A)
    alpha = np.zeros(B)
    p = np.zeros((B, L))
    cb = np.zeros(A.V.shape[:2], np.int64)
    cs = np.zeros(A.C.shape[:2], np.int64)
    Rused = np.zeros((B, L))
    cert = np.zeros(B, bool)
    lower = np.zeros(B)
    evals = np.zeros(B, np.int64)
    status = np.full(B, Status.NO_SOLUTION)
    lp_seen = np.zeros(B, bool)       # some reserve level had a solvable LP
    todo = np.arange(B)
    for R in levels:
        if todo.size == 0:
            break
        found, best, c_, lo, lp_ok0, ne = _search(
            D, todo, R, backend, int(n_grid), float(max_markup), float(min_markup),
            int(refine_rounds), int(n_refine), int(max_combinations), solver_options)
        evals[todo] += ne
        g = todo[found]
        alpha[g] = best.alpha[found]
        p[g] = best.p[found]
        cb[g] = best.cb[found]
        cs[g] = best.cs[found]
        Rused[g] = R[g]
        cert[g] = c_[found]
        lower[g] = lo[found]
        status[g] = Status.OK
        nf = todo[~found]
        lp_seen[todo[lp_ok0]] = True
        for b in nf[~lp_ok0[~found] & ~lp_seen[nf]]:   # no LP solved at any level so far
            status[b] = (Status.SOLVER_FAILED if menu_lp_feasible(A.take(b), R[b])
                         else Status.INFEASIBLE)
        todo = nf
    return _finish_markup(A, alpha, p, cb, cs, Rused, cert, lower, status, evals, batch)
