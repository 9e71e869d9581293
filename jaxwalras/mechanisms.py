"""Markup and rationing mechanisms for non-convex economies (seed 000; DESIGN §2).

Markup mechanism ``(alpha, p, omega)``: sellers choose from their supply sets at ``p``, buyers
from their demand sets at ``(1+alpha) p``, production covers consumption in every good and
buyers pay at least what sellers receive, ``(1+alpha) p.sum x >= p.sum y``.  For a fixed
``alpha`` we solve the convexified economy (values scaled by ``1/(1+alpha)``, auctioneer
reserve ``R``) with :func:`jaxwalras.convexified_equilibrium` and round its vertex solution
(:func:`jaxwalras.rounding.shapley_folkman_rounding`).  Budget feasibility is NOT monotone
in ``alpha``, so we evaluate many markups in ONE batched call (a markup grid ``(G, 1)`` against
the batch), then refine between the last infeasible and the first feasible grid point.
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


def _evaluate(eco: MenuEconomy, alphas: np.ndarray, R: np.ndarray, method: str,
              max_combinations: int, solver_options: dict) -> dict:
    """Convexify + round for a (G, B) grid of markups in ONE batched LP call."""
    G, B = alphas.shape
    if method == "device" and "chunk_size" not in solver_options:
        # bucket the flat batch to a power of two: one compiled shape per bucket, not per call
        n = G * B
        solver_options = dict(solver_options, chunk_size=int(min(2 ** int(np.ceil(np.log2(max(n, 1)))), 4096)))
    ce = convexified_equilibrium(eco, markup=alphas, reserve=R[None], method=method,
                                 **solver_options)
    X, V, Y, C, bm, sm = _arrays(eco)
    t = lambda z: np.broadcast_to(z, (G,) + z.shape).reshape((G * B,) + z.shape[1:])  # noqa: E731
    p = np.nan_to_num(np.asarray(ce.prices, float).reshape(G * B, -1))
    wb = np.asarray(ce.buyer_weights, float).reshape((G * B,) + V.shape[1:])
    ws = np.asarray(ce.seller_weights, float).reshape((G * B,) + C.shape[1:])
    cb, cs, feas, exc, bud, _ = _round_flat(
        t(X), t(V), t(Y), t(C), t(bm), t(sm), p, alphas.reshape(-1), wb, ws,
        sellers_only=False, max_combinations=max_combinations)
    vscale = 1.0 + max(np.abs(V).max(initial=0.0), np.abs(C).max(initial=0.0)) * max(V.shape[1], C.shape[1])
    conv = np.asarray(ce.converged).reshape(-1)
    ok = conv & feas & (bud >= -1e-9 * vscale)
    sh = lambda z: z.reshape((G, B) + z.shape[1:])  # noqa: E731
    return dict(ok=sh(ok), lp_ok=sh(conv), p=sh(p), cb=sh(cb), cs=sh(cs), exc=sh(exc),
                bud=sh(bud), alpha=alphas)


def _pick(ev: dict, j: np.ndarray, cols: np.ndarray) -> dict:
    return {k: v[j, cols] for k, v in ev.items()}


def _search(eco: MenuEconomy, R: np.ndarray, method: str, n_grid: int, max_markup: float,
            min_markup: float, refine_rounds: int, n_refine: int, max_combinations: int,
            solver_options: dict) -> tuple[np.ndarray, dict, np.ndarray, np.ndarray]:
    """Least feasible markup per economy by batched grid + refinement."""
    B = R.shape[0]
    found = np.zeros(B, bool)
    certified = np.zeros(B, bool)
    lower = np.zeros(B)
    best: dict = {}
    # phase 0: alpha = 0
    ev = _evaluate(eco, np.zeros((1, B)), R, method, max_combinations, solver_options)
    found |= ev["ok"][0]
    certified |= ev["ok"][0]
    best = {k: v[0].copy() for k, v in ev.items() if k != "alpha"}
    best["alpha"] = np.zeros(B)
    # an infeasible convexified LP (reserve above capacity) stays infeasible at every markup
    todo = np.nonzero(~found & ev["lp_ok"][0])[0]
    if todo.size == 0:
        return found, best, certified, lower
    # phase 1: geometric grid (G, 1) against the remaining economies
    grid = np.geomspace(min_markup, max_markup, n_grid)
    sub = eco[todo]
    ev = _evaluate(sub, np.broadcast_to(grid[:, None], (n_grid, todo.size)).copy(), R[todo],
                   method, max_combinations, solver_options)
    anyok = ev["ok"].any(0)
    j = np.argmax(ev["ok"], 0)
    lo = np.where(j > 0, grid[np.maximum(j - 1, 0)], 0.0)
    hi = grid[j]
    cur = _pick(ev, j, np.arange(todo.size))
    idx = todo[anyok]
    keep = np.nonzero(anyok)[0]
    for k in best:
        best[k][idx] = cur[k][keep]
    found[idx] = True
    lower[idx] = lo[keep]
    lo, hi, rows = lo[keep], hi[keep], idx
    # phase 2: refine between last infeasible and first feasible (linear sub-grids)
    for _ in range(refine_rounds):
        if rows.size == 0:
            break
        fr = np.arange(1, n_refine + 1) / (n_refine + 1)
        A = lo[None, :] + (hi - lo)[None, :] * fr[:, None]              # (G, b)
        ev = _evaluate(eco[rows], A, R[rows], method, max_combinations, solver_options)
        anyok = ev["ok"].any(0)
        j = np.argmax(ev["ok"], 0)
        newlo = np.where(j > 0, A[np.maximum(j - 1, 0), np.arange(rows.size)], lo)
        cur = _pick(ev, j, np.arange(rows.size))
        upd = np.nonzero(anyok)[0]
        for k in best:
            best[k][rows[upd]] = cur[k][upd]
        lo = np.where(anyok, newlo, A[-1])     # none feasible inside: hi stays, lo moves up
        hi = np.where(anyok, A[j, np.arange(rows.size)], hi)
        lower[rows] = lo
    return found, best, certified, lower


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
    demand ``R`` (``convexified_equilibrium(economy, markup, reserve=R)``), round the
    ``<= L`` mixing agents to options in their demand/supply sets so that production covers
    consumption, choosing the rounding with the largest budget surplus; ``alpha`` is feasible
    when that surplus is ``>= 0``.  Search: ``alpha = 0`` first (all economies in one call),
    then a geometric grid of ``n_grid`` markups in ``[min_markup, max_markup]`` evaluated as
    ONE batched call (grid x economies), then ``refine_rounds`` linear sub-grids of
    ``n_refine`` points between the last infeasible and the first feasible point (each
    round shrinks the bracket ``n_refine + 1``-fold; defaults: 1 + 16 + 16 evaluations,
    final bracket ~0.2% of the markup).  Because feasibility is not monotone the
    grid answer is certified minimal only when it is 0; for one good with all-or-nothing
    buyers and one linear integer-production seller the exact breakpoint scan is used
    (``exact_single_good``) and the answer is certified (the scan minimises over ALL
    markup outcomes, so ``reserve`` plays no role there and is reported as 0).

    Parameters
    ----------
    economy : MenuEconomy, batch shape ``B``.
    reserve : ``"adaptive"`` (default: try ``s * L * delta`` for ``s`` in 0, 1/8, 1/4, 1/2, 1,
        stopping at the first level with a budget-feasible markup), ``"none"`` (0),
        ``"worst_case"`` (``L * delta``, see :func:`jaxwalras.rounding.worst_case_reserve`), or
        an array broadcastable to ``B + (L,)`` (auctioneer demand per good, ``>= 0``).
    method : passed to :func:`jaxwalras.convexified_equilibrium` (``"device"`` or ``"lp"``).
    n_grid, max_markup, min_markup, refine_rounds, n_refine : markup search grid.
    max_combinations : rounding enumeration cap before the exact MILP fallback.
    solver_options : extra keyword arguments for ``convexified_equilibrium``.

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
        found, best, c_, lo = _search(eco[todo], R[todo], method, int(n_grid), float(max_markup),
                                      float(min_markup), int(refine_rounds), int(n_refine),
                                      int(max_combinations), solver_options)
        for i_loc in (np.nonzero(found)[0],):
            g = todo[i_loc]
            alpha[g] = best["alpha"][i_loc]
            p[g] = best["p"][i_loc]
            cb[g] = best["cb"][i_loc]
            cs[g] = best["cs"][i_loc]
            Rused[g] = R[g]
            cert[g] = c_[i_loc]
            lower[g] = lo[i_loc]
            status[g] = STATUS_OK
        nf = todo[~found]
        lp_bad = ~best["lp_ok"][~found]
        status[nf[lp_bad]] = STATUS_LP_FAILED
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
