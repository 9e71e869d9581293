"""The markup mechanism's grid search for economies with several goods (Milgrom and Watt, 2022).

For a fixed markup ``alpha`` the convexified economy (values scaled by ``1/(1+alpha)``,
auctioneer reserve ``R``) is solved to a vertex and rounded (:func:`jaxwalras.rounding.round_flat`);
``alpha`` is feasible when some rounding of the mixing agents is physically feasible and
has no budget deficit at the LP prices or, failing that, at its best supporting prices
(re-pricing: the LP's optimal prices need not be unique).  Budget feasibility is NOT
monotone in ``alpha``, so the search evaluates ``{0}`` plus a geometric grid of markups
for every economy in ONE batched call, then refines between the last infeasible and the
first feasible grid point.  Small LPs are solved exactly on the device by a batched dense
dual simplex (:func:`jaxwalras.kernels.simplex.convexified_lp_simplex`), each answer
certified in float64 against the full-menu dual (HiGHS takes the rare rest); larger ones
go through :func:`jaxwalras.convexified_equilibrium`.

Every tolerance is per economy (its own value and quantity scales) or per agent (its own
values and payments, :func:`jaxwalras.menu_host.agent_scales`); nothing batch-wide enters
one economy's decisions.
"""
from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ._batching import map_chunks, padded_size
from .convexified import convexified_equilibrium
from .economy import MenuArrays, MenuEconomy
from .kernels.simplex import convexified_lp_simplex, max_budget_prices
from .menu_host import CERT_RTOL, agent_scales, outcome_check, quantity_scale
from .rounding import round_flat

__all__ = ["prepare", "search", "Prepared", "Evaluation"]

#: relative tolerance of the search's own checks (a tenth of the final certificate's)
_SEARCH_RTOL = CERT_RTOL / 10

class Prepared(NamedTuple):
    """Per-economy arrays and scales shared by every search phase (computed once)."""
    A: MenuArrays
    vs: np.ndarray          # value scale per economy (largest |value| or |cost|)
    qs: np.ndarray          # quantity scale per economy and good (largest bundle entry)
    qsum: np.ndarray        # quantity_scale: most of each good the economy can move
    simplex: bool           # the LPs are small enough for the dense device simplex


_Prepared = Prepared


class Evaluation(NamedTuple):
    """Evaluation of a flat list of (economy, markup) instances."""
    ok: np.ndarray
    lp_ok: np.ndarray
    p: np.ndarray
    cb: np.ndarray
    cs: np.ndarray
    exc: np.ndarray
    bud: np.ndarray
    alpha: np.ndarray

    def take(self, idx: Any) -> "Evaluation":
        return Evaluation(*(f[idx] for f in self))


_Eval = Evaluation


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


_polish_batch = jax.jit(jax.vmap(functools.partial(max_budget_prices, slack=0.0)))


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
    vs = np.maximum(np.abs(V).max((-1, -2)), np.abs(C).max((-1, -2)))     # own scales only
    qs = quantity_scale(A) + np.abs(r)
    simplex = (np.abs(lam.sum(-1) - 1.0).max(-1) <= 1e-9) & (np.abs(mu.sum(-1) - 1.0).max(-1) <= 1e-9)
    return (np.isfinite(p).all(-1) & (p >= 0).all(-1) & simplex
            & (dual - primal <= 1e-9 * vs * (X.shape[1] + Y.shape[1]))
            & (use <= 1e-9 * qs).all(-1))


def _solve_lps(D: Prepared, idx: np.ndarray, a: np.ndarray, r: np.ndarray, backend: str,
               solver_options: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
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
            ce = convexified_equilibrium(sub, markup=a[sel], reserve=r[sel], method="lp",
                                         progress=False)
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
                                 method=method, progress=False, **opts)
    return (np.asarray(ce.converged), np.nan_to_num(np.asarray(ce.prices, float)),
            np.asarray(ce.buyer_weights, float), np.asarray(ce.seller_weights, float), 0)


def _reprice(D: Prepared, idx, a, p0, cand_b, cand_s, cand_ok):
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
    # bounds and slack in normalised units, relative to the economy's and each agent's scale
    pmax = 1e3 * np.maximum(pn0.max(-1), 1.0)
    sb, ss = agent_scales(MenuArrays(Xn, Vn, bm, Yn, Cn, sm), pn0, ac)
    slack_b = 1e-12 * sb[..., None]
    slack_s = 1e-12 * ss[..., None]
    with jax.enable_x64(True):       # scoped: the global flag is untouched
        pn, st = _run_chunked(_polish_batch, [Xh - Xn, Vh - Vn + slack_b, bm, Yn - Yh,
                                              Cn - Ch + slack_s, sm, Xh[:, :, 0].sum(1),
                                              Yh[:, :, 0].sum(1), ac, pmax], ii.size)
    pp = pn * vs[:, None] / qs
    chk = outcome_check(A, ac, pp, cb, cs, rtol=_SEARCH_RTOL)
    bud = chk.budget
    good = ((st == 0) & chk.buyers_ok & chk.sellers_ok & chk.prices_ok & np.isfinite(bud))
    bud = np.where(good, bud, -np.inf)
    pay = np.abs(np.einsum("il,il->i", (1.0 + ac)[:, None] * pp, chk.x)) + \
        np.abs(np.einsum("il,il->i", pp, chk.y))
    bud = np.where(bud >= -_SEARCH_RTOL * pay, bud, -np.inf)
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


def _evaluate(D: Prepared, idx: np.ndarray, a: np.ndarray, R: np.ndarray, backend: str,
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
    chk = outcome_check(A, a, p, cb, cs, rtol=_SEARCH_RTOL)
    ok = (lp_ok & feas & chk.feasible & chk.budget_ok & chk.buyers_ok & chk.sellers_ok
          & chk.prices_ok)
    redo = np.nonzero(reprice & lp_ok & feas & ~ok)[0]
    if redo.size:
        ok2, p2, cb2, cs2, bud2 = _reprice(D, idx[redo], a[redo], p[redo], cand[0][redo],
                                           cand[1][redo], cand[2][redo])
        r = redo[ok2]
        ok[r], p[r], cb[r], cs[r], bud[r] = True, p2[ok2], cb2[ok2], cs2[ok2], bud2[ok2]
        exc[r] = (np.take_along_axis(A.Y[r], cs[r][..., None, None], 2)[:, :, 0].sum(1)
                  - np.take_along_axis(A.X[r], cb[r][..., None, None], 2)[:, :, 0].sum(1))
    return _Eval(ok, lp_ok, p, cb, cs, exc, bud, a)


def search(D: Prepared, todo: np.ndarray, R: np.ndarray, backend: str, n_grid: int,
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


def prepare(A: MenuArrays) -> Prepared:
    """Per-economy scales of a flat batch (each economy's own; nothing batch-wide).

    The value scale is rounded to a power of two, so normalising by it is exact and a
    change of the money unit changes the normalised LPs by rounding only."""
    X, V, bm, Y, C, sm = A
    vs = np.maximum(np.abs(V).max((-1, -2)), np.abs(C).max((-1, -2)))
    vs = np.where(vs > 0, 2.0 ** np.round(np.log2(np.where(vs > 0, vs, 1.0))), 1.0)
    qs = np.maximum(X.max((1, 2)), Y.max((1, 2)))
    qs = np.where(qs > 0, qs, 1.0)
    return Prepared(A, vs, qs, quantity_scale(A), _simplex_fits(X, Y))


_prepare = prepare




_search = search
