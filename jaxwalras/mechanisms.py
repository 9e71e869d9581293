"""Markup and rationing mechanisms for non-convex economies (seed 000; DESIGN §2).

Markup mechanism ``(alpha, p, omega)``: sellers choose from their supply sets at ``p``, buyers
from their demand sets at ``(1+alpha) p``, production covers consumption in every good and
buyers pay at least what sellers receive, ``(1+alpha) p.sum x >= p.sum y``.  For a fixed
``alpha`` we solve the convexified economy (values scaled by ``1/(1+alpha)``, auctioneer
reserve ``R``) and round its vertex solution (:func:`jaxwalras.rounding.shapley_folkman_rounding`).
Budget feasibility is NOT monotone in ``alpha``, so we evaluate many markups in ONE batched
call (``{0}`` plus a geometric grid, against every economy of the batch), then refine between
the last infeasible and the first feasible grid point.
For small economies (``method="device"``) every convexified LP of a call is solved EXACTLY at
once by a batched dense dual simplex on the device
(:func:`jaxwalras.kernels.mechanisms.convexified_lp_simplex`; each answer is certified in
float64 against the full-menu dual, HiGHS takes the rare rest); larger economies go through
:func:`jaxwalras.convexified_equilibrium`.
The LP's optimal prices are often not unique (degenerate vertices have a whole face of dual
optima) and budget feasibility depends on which one is used, so when the LP prices leave a
deficit every candidate rounding is re-priced: the prices that keep it in everyone's
demand/supply sets and maximise the budget surplus, a tiny LP in ``p``
(:func:`jaxwalras.kernels.mechanisms.max_budget_prices`).  The answer then does not depend
on which optimal prices the LP solver returned (HiGHS and the device simplex agree whenever
they return the same optimal vertex).
For one good with all-or-nothing buyers and one linear-cost integer seller (the paper's
example and its large version) an exact breakpoint scan gives the least markup
(:func:`jaxwalras.kernels.mechanisms.single_good_min_markup`).

Rationing mechanism ``(p, omega)``: convexified equilibrium with ``R`` units of auctioneer
SUPPLY, round sellers only (production <= the buyers' convexified demand), re-optimise the
buyers' concave (convexified) allocation of the fixed supply, everyone pays ``p``.

Reference: P. Milgrom and M. Watt, "Linear pricing mechanisms for markets without
convexity" (EC'22 / arXiv 2021), markup and rationing mechanisms, Table 1.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from ._shapes import padded_size
from ._validation import as_float_array
from .convexified import convexified_equilibrium
from .economy import MenuEconomy
from .rounding import _round_flat, worst_case_reserve
from .welfare import _bound_terms

__all__ = ["MarkupResult", "RationingResult", "markup_mechanism", "rationing_mechanism",
           "demo_mechanisms"]

STATUS_OK = 0
STATUS_NO_MARKUP = 1      # no budget-feasible markup <= max_markup at any reserve tried
STATUS_LP_FAILED = 2      # the convexified LP did not converge / was infeasible

_ADAPTIVE_LEVELS = (0.0, 0.125, 0.25, 0.5, 1.0)


class MarkupResult(NamedTuple):
    """Outcome of :func:`markup_mechanism` (leading axes = batch axes).

    Attributes
    ----------
    markup : (...,)             least budget-feasible markup found, ``alpha >= 0``.
    prices : (..., L)           seller prices ``p``.
    buyer_prices : (..., L)     ``(1+alpha) p``.
    buyer_choice : (..., N)     each buyer's option (in its demand set at buyer prices).
    seller_choice : (..., F)    each seller's option (in its supply set at ``p``).
    excess_supply : (..., L)    ``sum y - sum x >= 0``.
    budget_surplus : (...,)     ``(1+alpha) p.sum x - p.sum y >= 0`` (up to 1e-9 x scale).
    welfare : (...,)            ``sum v - sum c`` of the outcome.
    welfare_bound : (...,)      certificate: ``S* - welfare <= welfare_bound`` (bound-form
                                first welfare theorem at the seller prices ``p``).
    reserve : (..., L)          auctioneer reserve used in the convexified LP.
    certified_minimal : (...,)  the markup is proven least (``alpha = 0``, or exact scan).
    markup_lower : (...,)       largest evaluated infeasible markup below ``markup`` (not a
                                proof of minimality: feasibility is not monotone).
    converged : (...,) bool     the outcome satisfies every condition of the definition.
    status : (...,) int         0 ok, 1 no budget-feasible markup <= ``max_markup``,
                                2 convexified LP failed.
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


class RationingResult(NamedTuple):
    """Outcome of :func:`rationing_mechanism` (leading axes = batch axes).

    Attributes
    ----------
    prices : (..., L)            the single price everyone pays.
    buyer_allocation : (..., N, L) each buyer's (convexified) consumption.
    buyer_weights : (..., N, Kb) the buyer's mixture over its menu (concave buyers).
    seller_choice : (..., F)     each seller's pure option (in its supply set at ``p``).
    excess_supply : (..., L)     ``sum y - sum x`` (>= 0).
    budget_surplus : (...,)      ``p.sum x - p.sum y`` (0 = exact budget balance).
    buyer_losses : (..., N)      rationing loss of each buyer at ``p`` (best surplus minus
                                 surplus of its allocation).
    welfare : (...,)             ``sum_n sum_k w V - sum c`` (concave buyer values).
    welfare_bound : (...,)       certificate ``S*_convex-buyers - welfare <= welfare_bound``.
    reserve : (..., L)           auctioneer supply used in the convexified LP.
    converged : (...,) bool      feasible, sellers in supply sets, LPs solved.
    """
    prices: Any
    buyer_allocation: Any
    buyer_weights: Any
    seller_choice: Any
    excess_supply: Any
    budget_surplus: Any
    buyer_losses: Any
    welfare: Any
    welfare_bound: Any
    reserve: Any
    converged: Any


# ---------------------------------------------------------------------------------------
def _flat(economy: MenuEconomy) -> tuple[MenuEconomy, tuple[int, ...], int]:
    if not isinstance(economy, MenuEconomy):
        raise TypeError(f"economy: expected a jaxwalras.MenuEconomy, got {type(economy).__name__}")
    batch = economy.batch_shape
    B = int(np.prod(batch, dtype=np.int64))
    return economy.to_numpy().reshape_batch((B,)), batch, B


def _arrays(eco: MenuEconomy) -> tuple[np.ndarray, ...]:
    return (np.asarray(eco.buyer_bundles, float), np.asarray(eco.buyer_values, float),
            np.asarray(eco.seller_bundles, float), np.asarray(eco.seller_costs, float),
            np.asarray(eco.buyer_mask, bool), np.asarray(eco.seller_mask, bool))


def _reserve_levels(reserve: Any, eco: MenuEconomy, batch: tuple[int, ...], B: int,
                    sellers_only: bool) -> list[np.ndarray]:
    """List of (B, L) reserve levels to try in order."""
    L = eco.n_goods
    if isinstance(reserve, str):
        if reserve not in ("adaptive", "none", "worst_case"):
            raise ValueError(f"reserve: must be 'adaptive', 'none', 'worst_case' or an array "
                             f"broadcastable to batch_shape + (L,) = {batch + (L,)}, got {reserve!r}")
        if reserve == "none":
            return [np.zeros((B, L))]
        wc = np.broadcast_to(worst_case_reserve(eco, sellers_only=sellers_only), (B, L))
        if reserve == "worst_case":
            return [np.array(wc)]
        return [s * wc for s in _ADAPTIVE_LEVELS]
    r = as_float_array(reserve, "reserve", nonnegative=True)
    if r.ndim == 0:
        r = r[None]
    if r.shape[-1] not in (1, L):
        raise ValueError(f"reserve: last axis must have size 1 or L={L}, got shape {r.shape}")
    try:
        r = np.broadcast_to(r, batch + (L,)).reshape(B, L)
    except ValueError:
        raise ValueError(f"reserve: shape {r.shape} does not broadcast to {batch + (L,)}") from None
    return [np.array(r)]


# --- generic search: many markups x economies per call ------------------------------------
# Economies whose LP tableau has at most this many cells are solved EXACTLY on the device by
# the batched dual simplex of :func:`jaxwalras.kernels.mechanisms.convexified_lp_simplex`
# (method="device"); larger ones use :func:`jaxwalras.convexified_equilibrium`.
_SIMPLEX_MAX_CELLS = 4096     # ~ the CPU break-even with the smoothed solver + exact finish
_CHUNKS = (32, 256)           # padded batch sizes of the device LP kernels (one compile each);
_CHUNKS_ACCEL = (32, 2048)    # on accelerators: fewer, larger calls
_SIMPLEX_FNS: dict = {}


def _simplex_fits(X: np.ndarray, Y: np.ndarray) -> bool:
    N, Kb, L = X.shape[-3:]
    F, Ks = Y.shape[-3:-1]
    return (N + F + L) * (N * Kb + F * Ks + L + 1) <= _SIMPLEX_MAX_CELLS


def _run_chunked(fn, args: list[np.ndarray], n: int) -> list[np.ndarray]:
    """Call ``fn`` on fixed-size chunks (``_CHUNKS``, padded by repeating the chunk's first
    row): at most two compiled shapes per economy shape, never one per call."""
    import jax
    sizes = _CHUNKS if jax.default_backend() == "cpu" else _CHUNKS_ACCEL
    size = sizes[0] if n <= sizes[0] else sizes[-1]
    outs = []
    for s0 in range(0, n, size):
        sel = np.arange(s0, s0 + size)
        sel = np.where(sel < n, sel, s0)
        res = fn(*(a[sel] for a in args))
        m = min(size, n - s0)
        outs.append([np.asarray(z)[:m] for z in res])
    return [np.concatenate(z) for z in zip(*outs)]


def _simplex_fn(max_iter: int):
    import jax
    from .kernels.mechanisms import convexified_lp_simplex
    if max_iter not in _SIMPLEX_FNS:
        _SIMPLEX_FNS[max_iter] = jax.jit(jax.vmap(
            lambda *a: convexified_lp_simplex(*a, max_iter=max_iter)))
    return _SIMPLEX_FNS[max_iter]


def _lp_certified(X, V, bm, Y, C, sm, a, r, p, lam, mu) -> np.ndarray:
    """float64 check of an LP answer: weights on the simplex and feasible, and zero
    duality gap against the FULL-menu dual ``g(p)`` (so ``p`` and the weights are optimal)."""
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


def _solve_lps(D: dict, idx: np.ndarray, a: np.ndarray, r: np.ndarray, method: str,
               solver_options: dict) -> tuple[np.ndarray, ...]:
    """Convexified LPs for instances (economy ``idx``, markup ``a``, reserve ``r``).

    Returns ``(lp_ok, p, lam, mu, n_fallback)``: ``lp_ok`` = an optimal vertex was found
    (float64-certified for the device simplex; HiGHS status otherwise)."""
    X, V, Y, C, bm, sm = (D[k][idx] for k in ("X", "V", "Y", "C", "bm", "sm"))
    n = idx.size
    if method == "device" and D["simplex"] and not solver_options:
        import jax
        vs, qs = D["vs"][idx], D["qs"][idx]
        N, Kb, L = X.shape[1:]
        F, Ks = C.shape[1:]
        max_iter = 4 * (N + F + L + N * Kb + F * Ks + L)
        with jax.enable_x64(True):       # scoped: the global flag is untouched
            pn, lam, mu, st, _ = _run_chunked(
                _simplex_fn(max_iter),
                [X / qs[:, None, None, :], V / vs[:, None, None], bm, Y / qs[:, None, None, :],
                 C / vs[:, None, None], sm, a, r / qs], n)
        p = pn * vs[:, None] / qs
        ok = (st == 0) & _lp_certified(X, V, bm, Y, C, sm, a, r, p, lam, mu)
        # Not certified (iteration cap, round-off) -> HiGHS decides; rare.  "Infeasible"
        # (status 1) does not depend on the markup, so HiGHS checks ONE instance per
        # (economy, reserve) and only a refuted claim sends the others to HiGHS too.

        def highs(sel):
            sub = MenuEconomy._unchecked(X[sel], V[sel], Y[sel], C[sel], bm[sel], sm[sel])
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
    if method == "device" and "chunk_size" not in opts:
        # bucket the flat batch to a power of two: one compiled shape per bucket, not per call
        opts["chunk_size"] = padded_size(n, floor=8, cap=4096)
    sub = MenuEconomy._unchecked(X, V, Y, C, bm, sm)
    ce = convexified_equilibrium(sub, markup=a, reserve=r, method=method, **opts)
    return (np.asarray(ce.converged), np.nan_to_num(np.asarray(ce.prices, float)),
            np.asarray(ce.buyer_weights, float), np.asarray(ce.seller_weights, float), 0)


_POLISH_FNS: dict = {}
_POLISH_TOP_K = 8


def _polish_fn():
    import jax
    from .kernels.mechanisms import max_budget_prices
    if "fn" not in _POLISH_FNS:
        _POLISH_FNS["fn"] = jax.jit(jax.vmap(max_budget_prices))
    return _POLISH_FNS["fn"]


def _consistent_budget(X, V, Y, C, bm, sm, a, p, cb, cs):
    """float64: (largest demand/supply-set violation relative to the set tolerance, budget)
    of pure allocations ``cb, cs`` at seller prices ``p`` and markup ``a`` (flat batch)."""
    beta = (1.0 + a)[:, None] * p
    ub = np.where(bm, V - np.einsum("inkl,il->ink", X, beta), -np.inf)
    us = np.where(sm, np.einsum("ifkl,il->ifk", Y, p) - C, -np.inf)
    gb = ub.max(-1) - np.take_along_axis(ub, cb[..., None], -1)[..., 0]
    gs = us.max(-1) - np.take_along_axis(us, cs[..., None], -1)[..., 0]
    x = np.take_along_axis(X, cb[..., None, None], 2)[:, :, 0].sum(1)
    y = np.take_along_axis(Y, cs[..., None, None], 2)[:, :, 0].sum(1)
    gap = np.maximum(gb.max(-1, initial=0.0), gs.max(-1, initial=0.0))
    return gap, np.einsum("il,il->i", beta, x) - np.einsum("il,il->i", p, y)


def _reprice(D: dict, idx, a, p0, cand_b, cand_s, cand_ok):
    """Best prices for each candidate rounding (instances where the LP prices fail).

    The LP's dual prices are often not unique (a degenerate vertex has a whole face of
    optimal prices, and different solvers return different points of it), and budget
    feasibility depends on WHICH price is used.  So for every physically feasible candidate
    rounding ``omega`` we solve the small LP ``max budget(p)`` over all prices that keep
    ``omega`` in everyone's demand/supply sets
    (:func:`jaxwalras.kernels.mechanisms.max_budget_prices`); every answer is re-verified
    in float64.  Returns ``(ok, p, cb, cs, budget)`` per instance."""
    import jax
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
    X, V, Y, C, bm, sm = (D[k][e] for k in ("X", "V", "Y", "C", "bm", "sm"))
    vs, qs = D["vs"][e], D["qs"][e]
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
        pn, st = _run_chunked(_polish_fn(), [Xh - Xn, Vh - Vn, bm, Yn - Yh, Cn - Ch, sm,
                                             Xh[:, :, 0].sum(1), Yh[:, :, 0].sum(1), ac, pmax],
                              ii.size)
    pp = pn * vs[:, None] / qs
    gap, bud = _consistent_budget(X, V, Y, C, bm, sm, ac, pp, cb, cs)
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


def _evaluate(D: dict, idx: np.ndarray, a: np.ndarray, R: np.ndarray, method: str,
              max_combinations: int, solver_options: dict, reprice: bool = True) -> dict:
    """Convexify + round a flat list of (economy, markup) instances in ONE batched call.

    An instance is budget feasible when the rounding at the LP prices has no deficit or,
    failing that, when some candidate rounding has no deficit at its best prices
    (:func:`_reprice`) -- so the answer does not depend on which optimal dual prices the
    LP solver happened to return."""
    lp_ok, p, wb, ws, _ = _solve_lps(D, idx, a, R[idx], method, solver_options)
    X, V, Y, C, bm, sm = (D[k][idx] for k in ("X", "V", "Y", "C", "bm", "sm"))
    cb, cs, feas, exc, bud, _, cand = _round_flat(
        X, V, Y, C, bm, sm, p, a, wb, ws, sellers_only=False,
        max_combinations=max_combinations, top_k=_POLISH_TOP_K)
    btol = -1e-9 * D["bscale"][idx]
    ok = lp_ok & feas & (bud >= btol)
    redo = np.nonzero(reprice & lp_ok & feas & ~ok)[0]
    if redo.size:
        ok2, p2, cb2, cs2, bud2 = _reprice(D, idx[redo], a[redo], p[redo], cand[0][redo],
                                           cand[1][redo], cand[2][redo])
        ok2 &= bud2 >= btol[redo]
        r = redo[ok2]
        ok[r], p[r], cb[r], cs[r], bud[r] = True, p2[ok2], cb2[ok2], cs2[ok2], bud2[ok2]
        exc[r] = (np.take_along_axis(Y[r], cs[r][..., None, None], 2)[:, :, 0].sum(1)
                  - np.take_along_axis(X[r], cb[r][..., None, None], 2)[:, :, 0].sum(1))
    return dict(ok=ok, lp_ok=lp_ok, p=p, cb=cb, cs=cs, exc=exc, bud=bud, alpha=a)


def _search(D: dict, todo: np.ndarray, R: np.ndarray, method: str, n_grid: int,
            max_markup: float, min_markup: float, refine_rounds: int, n_refine: int,
            max_combinations: int, solver_options: dict):
    """Least feasible markup per economy ``todo`` by a batched grid + refinement.

    Phase 1 evaluates ``{0} + geomspace(min_markup, max_markup, n_grid)`` for every economy
    in ONE call; phase 2 refines ``refine_rounds`` times between the last infeasible and the
    first feasible point (``n_refine`` points per economy per round, one call per round).
    Returns ``(found, best (dict of per-economy arrays), certified, lower, lp_ok0)``."""
    b = todo.size
    grid = np.concatenate([[0.0], np.geomspace(min_markup, max_markup, n_grid)])
    G = grid.size
    ev = _evaluate(D, np.tile(todo, G), np.repeat(grid, b), R, method, max_combinations,
                   solver_options)
    ev = {k: v.reshape((G, b) + v.shape[1:]) for k, v in ev.items()}
    found = ev["ok"].any(0)
    j = np.argmax(ev["ok"], 0)
    cols = np.arange(b)
    best = {k: v[j, cols].copy() for k, v in ev.items()}
    certified = found & (j == 0)                      # alpha = 0 is trivially the least
    lower = np.where(found & (j > 0), grid[np.maximum(j - 1, 0)], 0.0)
    lp_ok0 = ev["lp_ok"][0]
    rows = np.nonzero(found & (j > 0))[0]
    lo, hi = grid[j[rows] - 1], grid[j[rows]]
    fr = np.arange(1, n_refine + 1) / (n_refine + 1)
    for _ in range(refine_rounds):
        if rows.size == 0:
            break
        A = lo[None, :] + (hi - lo)[None, :] * fr[:, None]              # (n_refine, r)
        ev = _evaluate(D, np.tile(todo[rows], n_refine), A.reshape(-1), R, method,
                       max_combinations, solver_options)
        ev = {k: v.reshape((n_refine, rows.size) + v.shape[1:]) for k, v in ev.items()}
        anyok = ev["ok"].any(0)
        jj = np.argmax(ev["ok"], 0)
        rc = np.arange(rows.size)
        newlo = np.where(jj > 0, A[np.maximum(jj - 1, 0), rc], lo)
        upd = np.nonzero(anyok)[0]
        for k in best:
            best[k][rows[upd]] = ev[k][jj[upd], upd]
        lo = np.where(anyok, newlo, A[-1])     # none feasible inside: hi stays, lo moves up
        hi = np.where(anyok, A[jj, rc], hi)
        lower[rows] = lo
    return found, best, certified, lower, lp_ok0


def _prepare(X, V, Y, C, bm, sm) -> dict:
    """Per-economy arrays and scales shared by every search phase (computed once)."""
    vs = np.maximum(np.abs(V).max((-1, -2)), np.abs(C).max((-1, -2)))
    vs = np.where(vs > 0, vs, 1.0)
    qs = np.maximum(X.max((1, 2)), Y.max((1, 2)))
    qs = np.where(qs > 0, qs, 1.0)
    bscale = 1.0 + max(np.abs(V).max(initial=0.0), np.abs(C).max(initial=0.0)) * max(V.shape[1], C.shape[1])
    return dict(X=X, V=V, Y=Y, C=C, bm=bm, sm=sm, vs=vs, qs=qs,
                bscale=np.full(V.shape[0], bscale), simplex=_simplex_fits(X, Y))


# --- single-good exact path ------------------------------------------------------------
def _single_good_structure(X, V, Y, C, bm, sm):
    """Detect (per economy) one good, all-or-nothing buyers, one linear integer seller.

    Returns None if any economy does not fit, else (v, q, c, u, K, seller_index, qty_index).
    """
    B, N, Kb, L = X.shape
    F, Ks = C.shape[1:]
    if L != 1 or Kb > 2:
        return None
    active_s = sm.sum(-1) > 1
    if not np.all(active_s.sum(1) == 1):
        return None
    f = np.argmax(active_s, 1)
    y = Y[np.arange(B), f, :, 0]
    cst = C[np.arange(B), f]
    m = sm[np.arange(B), f]
    if not m.all():
        return None
    u = y[:, 1]
    if np.any(u <= 0):
        return None
    ks = np.arange(Ks)
    if not np.allclose(y, u[:, None] * ks, rtol=1e-12, atol=1e-12):
        return None
    c = cst[:, 1] / u
    if not np.allclose(cst, c[:, None] * u[:, None] * ks, rtol=1e-12, atol=1e-12) or np.any(c <= 0):
        return None
    q = np.where(bm[..., 1], X[..., 1, 0], 0.0) if Kb == 2 else np.zeros((B, N))
    w = np.where(bm[..., 1], V[..., 1], 0.0) if Kb == 2 else np.zeros((B, N))
    if np.any((q == 0) & (w > 0)):
        return None
    K = np.full(B, Ks - 1.0)
    if np.any(K * u <= q.sum(1) * (1 + 1e-12)):
        return None
    v = np.where(q > 0, w / np.where(q > 0, q, 1.0), -np.inf)
    return v, q, c, u, K, f


def _single_good_scan_numpy(v, q, c, u, K):
    """The same exact scan as :func:`jaxwalras.kernels.mechanisms.single_good_min_markup`,
    in numpy float64 (used on the CPU backend, where numpy's sort beats XLA's)."""
    order = np.argsort(-v, axis=-1)
    vs = np.take_along_axis(v, order, -1)
    qs = np.take_along_axis(q, order, -1)
    X = np.cumsum(qs, -1)
    B, N = v.shape
    c_, u_, K_ = c[:, None], u[:, None], K[:, None]
    v_next = np.concatenate([vs[:, 1:], np.full((B, 1), -np.inf)], -1)
    units = np.ceil(X / u_ - 1e-12 * (1.0 + X / u_))
    Xs = np.maximum(X, np.finfo(np.float64).tiny)
    with np.errstate(invalid="ignore"):
        beta_c = np.maximum(np.maximum(v_next, c_), c_ * units * u_ / Xs)
        a_c = np.where((beta_c <= vs) & (X > 0), beta_c / c_ - 1.0, np.inf)
        ratio = K_ * u_ / Xs
        beta_k = np.maximum(v_next, c_ * ratio)
        a_k = np.where((beta_k <= vs) & (X > 0), ratio - 1.0, np.inf)
    use_k = a_k < a_c
    a_all = np.minimum(a_c, a_k)
    a0 = np.maximum(np.maximum(vs[:, 0], c) / c - 1.0, 0.0)
    j = np.argmin(a_all, -1)
    r = np.arange(B)
    take0 = a0 <= a_all[r, j]
    alpha = np.where(take0, a0, a_all[r, j])
    k = np.where(take0, 0, j + 1)
    uk = use_k[r, j] & ~take0
    beta = np.where(take0, np.maximum(vs[:, 0], c), np.where(uk, beta_k[r, j], beta_c[r, j]))
    p = np.where(uk, beta / (1.0 + alpha), c)
    yu = np.where(take0, 0.0, np.where(uk, K, units[r, j]))
    buys = np.zeros((B, N), bool)
    np.put_along_axis(buys, order, np.arange(N)[None, :] < k[:, None], -1)
    return alpha, p, beta, k, yu, buys, np.isfinite(alpha)


def _single_good_markup(X, V, Y, C, bm, sm, struct, backend: str | None = None):
    import jax
    v, q, c, u, K, f = struct
    B, N = v.shape
    backend = backend or jax.default_backend()
    if backend == "cpu":
        alpha, p, beta, k, yu, buys, feas = _single_good_scan_numpy(v, q, c, u, K)
    else:
        import jax.numpy as jnp
        from .kernels.mechanisms import single_good_min_markup
        with jax.enable_x64(True):   # scoped: exact float64 scan, the global flag is untouched
            out = single_good_min_markup(jnp.asarray(v), jnp.asarray(q), jnp.asarray(c),
                                         jnp.asarray(u), jnp.asarray(K))
            alpha, p, beta, k, yu, buys, feas = (np.asarray(o) for o in out)
    cb = buys.astype(np.int64)
    cs = np.zeros(C.shape[:2], np.int64)
    cs[np.arange(B), f] = np.round(yu).astype(np.int64)
    vs = np.sort(v, 1)[:, ::-1]
    # (near-)ties let tied buyers be split in ways a prefix scan does not see.  Only ties at
    # a per-unit value in [c, beta*] could support a smaller markup, so only those void the
    # certificate (values below c are never bought at beta >= c; at p = c a tie above beta*
    # forces beta > beta*; the Y = K branch prefers the whole tie group, which is a prefix).
    vt = vs[:, 1:]
    near = np.abs(vt - vs[:, :-1]) <= 1e-12 * np.maximum(1.0, np.abs(vs[:, :-1]))
    relevant = (near & np.isfinite(vt) & (vt >= (c * (1 - 1e-12))[:, None])
                & (vt <= (beta * (1 + 1e-12))[:, None]))
    certified = feas & (~np.any(relevant, 1) | (alpha == 0))
    return alpha, p[:, None], cb, cs, certified


def _finish_markup(X, V, Y, C, bm, sm, alpha, p, cb, cs, R, certified, lower, status,
                   batch) -> MarkupResult:
    """Verify the definition in float64 and assemble the result."""
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
    wbnd = _bound_terms(X, V, Y, C, bm, sm, p, wb, ws)
    # definition checks: demand sets at beta, supply sets at p, feasibility, budget
    vscale = 1.0 + max(np.abs(V).max(initial=0.0), np.abs(C).max(initial=0.0))
    ub = np.where(bm, V - np.einsum("bnkl,bl->bnk", X, beta), -np.inf)
    us = np.where(sm, np.einsum("bfkl,bl->bfk", Y, p) - C, -np.inf)
    gap_b = ub.max(-1) - np.take_along_axis(ub, cb[..., None], -1)[..., 0]
    gap_s = us.max(-1) - np.take_along_axis(us, cs[..., None], -1)[..., 0]
    tol = 1e-7 * vscale
    budget = np.einsum("bl,bl->b", beta, x) - np.einsum("bl,bl->b", p, y)
    ok = ((gap_b <= tol).all(1) & (gap_s <= tol).all(1) & wbnd.feasible
          & (budget >= -1e-9 * vscale * max(V.shape[1], 1)) & (status == STATUS_OK))
    sh = lambda z: np.asarray(z).reshape(batch + np.shape(z)[1:])  # noqa: E731
    return MarkupResult(
        markup=sh(alpha), prices=sh(p), buyer_prices=sh(beta), buyer_choice=sh(cb),
        seller_choice=sh(cs), excess_supply=sh(y - x), budget_surplus=sh(budget),
        welfare=sh(wbnd.welfare), welfare_bound=sh(wbnd.bound), reserve=sh(R),
        certified_minimal=sh(certified & ok), markup_lower=sh(lower), converged=sh(ok),
        status=sh(status))


def markup_mechanism(economy: MenuEconomy, reserve: Any = "adaptive", *,
                     method: str = "device", n_grid: int = 16, max_markup: float = 4.0,
                     min_markup: float = 1e-4, refine_rounds: int = 4, n_refine: int = 4,
                     exact_single_good: bool = True, max_combinations: int = 4096,
                     **solver_options: Any) -> MarkupResult:
    """The markup mechanism: the least markup ``alpha >= 0`` with a budget-feasible outcome.

    For each economy: solve the convexified economy at markup ``alpha`` with auctioneer
    demand ``R`` (the LP of ``convexified_equilibrium(economy, markup, reserve=R)``), round
    the ``<= L`` mixing agents to options in their demand/supply sets so that production
    covers consumption, choosing the rounding with the largest budget surplus; ``alpha`` is
    feasible when that surplus is ``>= 0`` at the LP prices or, failing that, at the best
    prices for some candidate rounding (re-pricing: the LP's optimal prices need not be
    unique, and any prices that keep the rounded allocation in everyone's demand/supply sets
    make a markup outcome).  Search: ``alpha = 0`` and a geometric grid of ``n_grid``
    markups in ``[min_markup, max_markup]``, all evaluated in ONE batched call (markups x
    economies), then ``refine_rounds`` linear sub-grids of ``n_refine`` points between the
    last infeasible and the first feasible point (one batched call each; each round shrinks
    the bracket ``n_refine + 1``-fold; defaults: 17 + 16 evaluations per economy, final
    bracket ~0.2% of the markup).  Because feasibility is not monotone the grid answer is
    certified minimal only when it is 0; for one good with all-or-nothing buyers and one
    linear integer-production seller the exact breakpoint scan is used (``exact_single_good``)
    and the answer is certified (the scan minimises over ALL markup outcomes, so ``reserve``
    plays no role there and is reported as 0).

    ``method="device"``: economies with a small LP tableau (``(N+F+L) (N Kb + F Ks + L + 1)
    <= 4096`` cells) and no ``solver_options`` have all their LPs solved exactly by the
    batched device dual simplex, certified in float64 (HiGHS for the rare uncertified ones);
    larger ones use ``convexified_equilibrium(method="device")``.  ``method="lp"``: HiGHS,
    one LP at a time.  The search, rounding and re-pricing are the same for both, and so
    are the answers whenever the two solvers return the same optimal VERTEX (their optimal
    prices may differ: re-pricing removes that dependence).

    Parameters
    ----------
    economy : MenuEconomy, batch shape ``B``.
    reserve : ``"adaptive"`` (default: try ``s * L * delta`` for ``s`` in 0, 1/8, 1/4, 1/2, 1,
        stopping at the first level with a budget-feasible markup), ``"none"`` (0),
        ``"worst_case"`` (``L * delta``, see :func:`jaxwalras.rounding.worst_case_reserve`), or
        an array broadcastable to ``B + (L,)`` (auctioneer demand per good, ``>= 0``).
    method : ``"device"`` (default) or ``"lp"`` (see above).
    n_grid, max_markup, min_markup, refine_rounds, n_refine : markup search grid.
    max_combinations : rounding enumeration cap before the exact MILP fallback.
    solver_options : extra keyword arguments for ``convexified_equilibrium`` (given with
        ``method="device"``, they select its smoothed device solver for every size).

    Returns
    -------
    MarkupResult; ``converged`` is True only where every condition of the definition was
    re-verified in float64 (demand/supply sets within 1e-7 x value scale, production covers
    consumption, no budget deficit).

    Example
    -------
    >>> import jaxwalras as jw
    >>> mk = jw.markup_mechanism(jw.examples.milgrom_watt_table1())
    >>> float(mk.prices[0]), round(float(mk.buyer_prices[0]), 3), int(mk.seller_choice[0])
    (0.5, 0.629, 4)
    """
    if method not in ("device", "lp"):
        raise ValueError(f"method: must be 'device' or 'lp', got {method!r}")
    if not isinstance(n_grid, (int, np.integer)) or n_grid < 2:
        raise ValueError(f"n_grid: must be an integer >= 2, got {n_grid!r}")
    if not isinstance(n_refine, (int, np.integer)) or n_refine < 1:
        raise ValueError(f"n_refine: must be a positive integer, got {n_refine!r}")
    if not isinstance(refine_rounds, (int, np.integer)) or refine_rounds < 0:
        raise ValueError(f"refine_rounds: must be a non-negative integer, got {refine_rounds!r}")
    if not (np.isfinite(max_markup) and np.isfinite(min_markup) and 0 < min_markup < max_markup):
        raise ValueError(f"min_markup/max_markup: need 0 < min_markup < max_markup, got "
                         f"{min_markup!r}, {max_markup!r}")
    eco, batch, B = _flat(economy)
    X, V, Y, C, bm, sm = _arrays(eco)
    L = eco.n_goods
    if isinstance(reserve, str):
        if reserve not in ("adaptive", "none", "worst_case"):
            _reserve_levels(reserve, eco, batch, B, sellers_only=False)     # raises
    else:
        _reserve_levels(reserve, eco, batch, B, sellers_only=False)         # validates
    if exact_single_good:
        struct = _single_good_structure(X, V, Y, C, bm, sm)
        if struct is not None:
            alpha, p, cb, cs, cert = _single_good_markup(X, V, Y, C, bm, sm, struct)
            R = np.zeros((B, L))
            status = np.where(np.isfinite(alpha), STATUS_OK, STATUS_NO_MARKUP)
            return _finish_markup(X, V, Y, C, bm, sm, alpha, p, cb, cs, R, cert,
                                  np.where(cert, alpha, 0.0), status, batch)
    levels = _reserve_levels(reserve, eco, batch, B, sellers_only=False)
    D = _prepare(X, V, Y, C, bm, sm)
    alpha = np.zeros(B)
    p = np.zeros((B, L))
    cb = np.zeros(V.shape[:2], np.int64)
    cs = np.zeros(C.shape[:2], np.int64)
    Rused = np.zeros((B, L))
    cert = np.zeros(B, bool)
    lower = np.zeros(B)
    status = np.full(B, STATUS_NO_MARKUP)
    todo = np.arange(B)
    for R in levels:
        if todo.size == 0:
            break
        found, best, c_, lo, lp_ok0 = _search(
            D, todo, R, method, int(n_grid), float(max_markup), float(min_markup),
            int(refine_rounds), int(n_refine), int(max_combinations), solver_options)
        g = todo[found]
        alpha[g] = best["alpha"][found]
        p[g] = best["p"][found]
        cb[g] = best["cb"][found]
        cs[g] = best["cs"][found]
        Rused[g] = R[g]
        cert[g] = c_[found]
        lower[g] = lo[found]
        status[g] = STATUS_OK
        nf = todo[~found]
        status[nf[~lp_ok0[~found]]] = STATUS_LP_FAILED
        todo = nf
    return _finish_markup(X, V, Y, C, bm, sm, alpha, p, cb, cs, Rused, cert, lower, status, batch)


# ---------------------------------------------------------------------------------------
def rationing_mechanism(economy: MenuEconomy, reserve: Any = "adaptive", *,
                        method: str = "device", max_combinations: int = 4096,
                        **solver_options: Any) -> RationingResult:
    """The rationing mechanism (one price ``p`` for everyone, buyers may be rationed).

    1. Convexified equilibrium with ``R`` units of auctioneer SUPPLY per good
       (``convexified_equilibrium(economy, reserve=-R)``).
    2. Round the sellers only, to options in their supply sets at ``p``, so that production
       does not exceed the buyers' convexified demand in any priced good (largest revenue).
    3. Re-optimise the buyers' concave (convexified) allocation of the fixed production:
       ``max sum lam V  s.t.  sum X lam <= sum y`` (again through ``convexified_equilibrium``,
       with one aggregate seller offering the fixed production at cost 0).
    4. Everyone pays ``p``; buyers' rationing losses at ``p`` are reported.

    ``reserve``: ``"adaptive"`` (default; ``s * L * delta_sellers`` for ``s`` in 0, 1/8, 1/4,
    1/2, 1, first level at which step 2 is feasible), ``"none"``, ``"worst_case"``, or an array
    broadcastable to ``B + (L,)`` (auctioneer supply ``>= 0``).

    Example
    -------
    >>> import jaxwalras as jw
    >>> ra = jw.rationing_mechanism(jw.examples.milgrom_watt_table1())
    >>> float(ra.prices[0]), int(ra.seller_choice[0]), abs(float(ra.budget_surplus)) < 1e-9
    (0.5, 3, True)
    """
    if method not in ("device", "lp"):
        raise ValueError(f"method: must be 'device' or 'lp', got {method!r}")
    eco, batch, B = _flat(economy)
    X, V, Y, C, bm, sm = _arrays(eco)
    L = eco.n_goods
    levels = _reserve_levels(reserve, eco, batch, B, sellers_only=True)
    p = np.zeros((B, L))
    cs = np.zeros(C.shape[:2], np.int64)
    Rused = np.zeros((B, L))
    done = np.zeros(B, bool)
    todo = np.arange(B)
    for R in levels:
        if todo.size == 0:
            break
        sub = eco[todo]
        ce = convexified_equilibrium(sub, markup=0.0, reserve=-R[todo], method=method,
                                     **solver_options)
        pp = np.nan_to_num(np.asarray(ce.prices, float))
        _, cs_, feas, _, _, _ = _round_flat(
            X[todo], V[todo], Y[todo], C[todo], bm[todo], sm[todo], pp, np.zeros(todo.size),
            np.asarray(ce.buyer_weights, float), np.asarray(ce.seller_weights, float),
            sellers_only=True, max_combinations=max_combinations)
        ok = feas & np.asarray(ce.converged)
        g = todo[ok]
        p[g], cs[g], Rused[g], done[g] = pp[ok], cs_[ok], R[todo][ok], True
        todo = todo[~ok]
    # step 3: buyers re-optimised for the fixed production (one aggregate zero-cost seller)
    ytot = np.take_along_axis(Y, cs[..., None, None], 2)[:, :, 0, :].sum(1)      # (B, L)
    Y2 = np.zeros((B, 1, 2, L))
    Y2[:, 0, 1] = ytot
    eco2 = MenuEconomy._unchecked(X, V, Y2, np.zeros((B, 1, 2)), bm, np.ones((B, 1, 2), bool))
    ce2 = convexified_equilibrium(eco2, markup=0.0, reserve=0.0, method=method, **solver_options)
    wb = np.asarray(ce2.buyer_weights, float)
    ok2 = np.asarray(ce2.converged)
    ws = np.zeros(C.shape)
    np.put_along_axis(ws, cs[..., None], 1.0, -1)
    wbnd = _bound_terms(X, V, Y, C, bm, sm, p, wb, ws)
    xb = np.einsum("bnk,bnkl->bnl", wb, X)
    budget = 0.0 - wbnd.revenue_deficit
    us = np.where(sm, np.einsum("bfkl,bl->bfk", Y, p) - C, -np.inf)
    gap_s = us.max(-1) - np.take_along_axis(us, cs[..., None], -1)[..., 0]
    vscale = 1.0 + max(np.abs(V).max(initial=0.0), np.abs(C).max(initial=0.0))
    conv = done & ok2 & wbnd.feasible & (gap_s <= 1e-7 * vscale).all(1)
    sh = lambda z: np.asarray(z).reshape(batch + np.shape(z)[1:])  # noqa: E731
    return RationingResult(
        prices=sh(p), buyer_allocation=sh(xb), buyer_weights=sh(wb), seller_choice=sh(cs),
        excess_supply=sh(wbnd.excess_supply), budget_surplus=sh(budget),
        buyer_losses=sh(wbnd.buyer_losses), welfare=sh(wbnd.welfare),
        welfare_bound=sh(wbnd.bound), reserve=sh(Rused), converged=sh(conv))


# ---------------------------------------------------------------------------------------
def demo_mechanisms(print_fn: Any = print) -> None:
    """CLI demo: Milgrom & Watt's Table 1 -- pseudo-equilibrium, markup and rationing
    outcomes, the efficient allocation and the welfare-bound certificates (< 5 s on CPU)."""
    from .examples.milgrom_watt import milgrom_watt_table1
    from .welfare import efficient_allocation
    eco = milgrom_watt_table1()
    ce = convexified_equilibrium(eco, method="lp")
    q = np.asarray(eco.buyer_bundles)[:, 1, 0]
    mk = markup_mechanism(eco)
    ra = rationing_mechanism(eco, method="lp")
    opt = efficient_allocation(eco)
    optc = efficient_allocation(eco, convex_buyers=True)
    print_fn("Milgrom & Watt, Table 1: one good, 10 all-or-nothing buyers, one integer seller "
             "at marginal cost 0.50 (no Walrasian equilibrium)")
    print_fn(f"convexified pseudo-equilibrium: p = {float(ce.prices[0]):.2f}, "
             f"{float((np.asarray(ce.buyer_weights)[:, 1] * q).sum()):.2f} units demanded")
    print_fn("| outcome | seller price | buyer price | units | buyers served | budget surplus "
             "| welfare | S* | loss bound |")
    print_fn("|---|---|---|---|---|---|---|---|---|")
    served = ",".join(str(i + 1) for i in np.nonzero(np.asarray(mk.buyer_choice))[0])
    print_fn(f"| markup (alpha={float(mk.markup):.4f}) | {float(mk.prices[0]):.3f} | "
             f"{float(mk.buyer_prices[0]):.4f} | {int(mk.seller_choice[0])} | {served} | "
             f"{float(mk.budget_surplus):.3g} | {float(mk.welfare):.4f} | "
             f"{float(opt.welfare):.4f} | {float(mk.welfare_bound):.4f} |")
    alloc = np.asarray(ra.buyer_allocation)[:, 0]
    rs = ",".join(f"{i + 1}" + ("" if abs(alloc[i] - q[i]) < 1e-9 else f"({alloc[i]:.2f})")
                  for i in np.nonzero(alloc > 1e-9)[0])
    print_fn(f"| rationing | {float(ra.prices[0]):.3f} | {float(ra.prices[0]):.3f} | "
             f"{int(ra.seller_choice[0])} | {rs} | {float(ra.budget_surplus):.3g} | "
             f"{float(ra.welfare):.4f} | {float(optc.welfare):.4f} | "
             f"{float(ra.welfare_bound):.4f} |")
    served = ",".join(str(i + 1) for i in np.nonzero(np.asarray(opt.buyer_choice))[0])
    print_fn(f"| efficient (MILP) | - | - | {int(opt.seller_choice[0])} | {served} | - | "
             f"{float(opt.welfare):.4f} | {float(opt.welfare):.4f} | 0 |")
    print_fn("(rationing: buyers' values are convexified, so its S* is the concave-buyer optimum)")
