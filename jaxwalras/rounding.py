"""Shapley--Folkman rounding of convexified equilibria (Milgrom and Watt, 2022; Starr, 1969).

A basic (vertex) optimum of the convexified LP has at most ``L`` agents with more than one
positive weight ("mixing" agents); every other agent already holds a pure option from its
demand (supply) set.  Rounding picks ONE option for each mixing agent, from that agent's
demand set at buyer prices ``(1+alpha) p`` (supply set at ``p``), so that the rounded outcome
is physically feasible.  Each mixing agent moves the balance of good ``l`` by at most
``delta_l`` (the spread of its menu in good ``l``), so with an auctioneer reserve
``R_l >= L * delta_l`` in the LP every choice is feasible (:func:`worst_case_reserve`).
With a smaller reserve the "obvious" choice may fail, so we SEARCH: among all combinations
of the mixing agents' demand/supply-set options, keep the physically feasible ones and
return the best by a score (budget surplus for the markup mechanism, revenue for the
rationing mechanism); when none is feasible we say so (``feasible=False``).

The search is vectorised over the whole batch (numpy, host): the candidate combinations
``K^M`` (``M`` = number of mixing agents, ``<= L`` at a vertex) are enumerated at once for
every economy; only economies whose combination count exceeds ``max_combinations`` fall
back to a tiny per-economy MILP (HiGHS) over the same candidates -- still exact.

References
----------
P. Milgrom and M. Watt, "Linear pricing mechanisms for markets without convexity", EC 2022,
proof of the markup-mechanism theorem.  R. M. Starr, "Quasi-equilibria in markets with
non-convex preferences", Econometrica 37(1), 1969.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

import scipy.sparse as sp

from .typing import ArrayLike
from ._validation import as_float_array, broadcast_batch, warn_deprecated
from .economy import MenuArrays, MenuEconomy
from .highs import solve_milp
from .menu_host import CERT_RTOL, agent_scales, quantity_scale
from .status import Status

__all__ = ["RoundingResult", "shapley_folkman_rounding", "worst_case_reserve",
           "menu_spread", "round_flat"]

_WTOL = 1e-9       # weights above this count as positive


class RoundingResult(NamedTuple):
    """Result of :func:`shapley_folkman_rounding` (leading axes = batch axes).

    Attributes
    ----------
    buyer_choice : ndarray of int, shape (..., N)
        Pure option of each buyer (for ``sellers_only`` rounding: the buyer's largest
        weight, for information only).
    seller_choice : ndarray of int, shape (..., F)
        Pure option of each seller.
    converged : ndarray of bool, shape (...)
        A rounding satisfying the constraints exists and was found (formerly ``feasible``).
    excess_supply : ndarray, shape (..., L)
        ``sum y - sum x`` of the rounded outcome.
    budget_surplus : ndarray, shape (...)
        ``(1+alpha) p.sum x - p.sum y`` of the rounded outcome.
    n_mixing : ndarray of int, shape (...)
        Number of agents that were rounded (mixing agents).
    status : ndarray of int, shape (...)
        ``Status.OK``, or ``Status.NO_SOLUTION`` where no combination satisfies the
        constraints.
    iterations : ndarray of int, shape (...)
        Candidate combinations examined.
    """
    buyer_choice: Any
    seller_choice: Any
    converged: Any
    excess_supply: Any
    budget_surplus: Any
    n_mixing: Any
    status: Any
    iterations: Any

    @property
    def feasible(self) -> Any:
        """Deprecated name of :attr:`converged`."""
        warn_deprecated("RoundingResult.feasible", "RoundingResult.converged")
        return self.converged


def menu_spread(economy: MenuEconomy) -> np.ndarray:
    """``delta_l`` per good: the largest spread ``max_k z_l - min_k z_l`` of any agent's menu.

    Returns ``(..., L)``.  Rounding one agent from a mixture of its options to one of them
    changes its consumption (production) of good ``l`` by at most this spread.
    """
    X = np.asarray(economy.buyer_bundles, float)
    Y = np.asarray(economy.seller_bundles, float)
    bm = np.asarray(economy.buyer_mask)[..., None]
    sm = np.asarray(economy.seller_mask)[..., None]
    def spread(Z, m):
        hi = np.where(m, Z, -np.inf).max(-2)
        lo = np.where(m, Z, np.inf).min(-2)
        return np.maximum(hi - lo, 0.0).max(-2)         # over agents
    return np.maximum(spread(X, bm), spread(Y, sm))


def worst_case_reserve(economy: MenuEconomy, sellers_only: bool = False) -> np.ndarray:
    """The worst-case reserve ``R_l = L * delta_l`` per good.

    Why it is valid: a vertex of the convexified LP has at most ``L`` mixing agents (one
    simplex row each, ``L`` coupling rows); rounding a mixing agent to any of its options moves
    the balance of good ``l`` by at most ``delta_l`` (:func:`menu_spread`); hence the rounded
    net supply is at least ``R_l - L delta_l >= 0`` (Milgrom and Watt, 2022; Starr, 1969).

    Parameters
    ----------
    economy : MenuEconomy
    sellers_only : bool
        Take the spread over the sellers' menus only (the rationing mechanism rounds sellers
        only).

    Returns
    -------
    ndarray, shape (..., L)

    Examples
    --------
    >>> import jaxwalras as jw
    >>> jw.worst_case_reserve(jw.examples.milgrom_watt_table1()).tolist()
    [6.0]
    """
    L = economy.n_goods
    if sellers_only:
        Y = np.asarray(economy.seller_bundles, float)
        sm = np.asarray(economy.seller_mask)[..., None]
        hi = np.where(sm, Y, -np.inf).max(-2)
        lo = np.where(sm, Y, np.inf).min(-2)
        return L * np.maximum(hi - lo, 0.0).max(-2)
    return L * menu_spread(economy)


# ---------------------------------------------------------------------------------------
#: relative tolerance of the rounding's demand/supply sets and balances (a tenth of the
#: mechanisms' final certificate, so that what the rounding accepts passes it)
_RTOL = CERT_RTOL / 10


def round_flat(A: MenuArrays, p, alpha, wb, ws, *, sellers_only: bool,
               max_combinations: int, set_tol: float | None = None, top_k: int = 0):
    """Core, on a flat batch ``B``.  Returns choices, feasible, excess, budget, n_mixing,
    combinations examined.

    With ``top_k > 0`` it also returns the ``top_k`` best physically feasible combinations
    (by the score) as ``(cand_b (B, k, N), cand_s (B, k, F), cand_ok (B, k))`` -- used by
    the markup mechanism to re-price each candidate allocation."""
    X, V, bm, Y, C, sm = A
    B, N, Kb, L = X.shape
    F, Ks = C.shape[-2:]
    # every tolerance is the economy's own (per good) or the agent's own (its values and
    # payments): nothing batch-wide enters one economy's rounding
    sb, ss = agent_scales(A, p, alpha)
    rt = _RTOL if set_tol is None else float(set_tol)
    ftol = _RTOL * quantity_scale(A)                           # (B, L)
    beta = (1.0 + alpha)[:, None] * p                          # buyer prices (B, L)
    pay_b = np.einsum("bnkl,bl->bnk", X, beta)                 # buyer payments
    rec_s = np.einsum("bfkl,bl->bfk", Y, p)                    # seller receipts
    ub = np.where(bm, V - pay_b, -np.inf)
    us = np.where(sm, rec_s - C, -np.inf)
    in_b = bm & ((ub.max(-1, keepdims=True) - ub <= rt * sb[..., None]) | (wb > _WTOL))
    in_s = sm & ((us.max(-1, keepdims=True) - us <= rt * ss[..., None]) | (ws > _WTOL))
    cb0 = np.argmax(wb, -1)
    cs0 = np.argmax(ws, -1)
    mix_b = (wb > _WTOL).sum(-1) > 1
    mix_s = (ws > _WTOL).sum(-1) > 1
    if sellers_only:
        mix_b = np.zeros_like(mix_b)
    # fixed part from non-mixing agents
    xb0 = np.take_along_axis(X, cb0[..., None, None], -2)[..., 0, :]        # (B,N,L)
    ys0 = np.take_along_axis(Y, cs0[..., None, None], -2)[..., 0, :]
    pb0 = np.take_along_axis(pay_b, cb0[..., None], -1)[..., 0]
    rs0 = np.take_along_axis(rec_s, cs0[..., None], -1)[..., 0]
    if sellers_only:
        # buyers keep their convexified consumption: the cap on production of priced goods
        xbar = np.einsum("bnk,bnkl->bl", wb, X)
        lo = np.full((B, L), -np.inf)
        priced = p > 1e-12 * np.abs(p).max(-1, keepdims=True)  # relative to the economy's prices
        hi = np.where(priced, xbar + ftol, np.inf)
        base = np.where(~mix_s[..., None], ys0, 0.0).sum(1)
        base_score = np.where(~mix_s, rs0, 0.0).sum(1)
    else:
        lo = -ftol
        hi = np.full((B, L), np.inf)
        base = (np.where(~mix_s[..., None], ys0, 0.0).sum(1)
                - np.where(~mix_b[..., None], xb0, 0.0).sum(1))
        base_score = (np.where(~mix_b, pb0, 0.0).sum(1) - np.where(~mix_s, rs0, 0.0).sum(1))
    # mixing agents -> candidate tables (B, M, Kc, L)
    nmb = mix_b.sum(1)
    nms = mix_s.sum(1)
    nmix = nmb + nms
    M = int(nmix.max(initial=0))
    cb = cb0.copy()
    cs = cs0.copy()
    feasible = np.ones(B, bool)
    kk = max(int(top_k), 1)
    cand_best = np.zeros((B, kk, max(M, 1)), np.int64)
    cand_ok = np.zeros((B, kk), bool)
    ncomb = np.ones(B, np.int64)
    if M > 0:
        Kc = max(Kb, Ks)
        Zc = np.zeros((B, M, Kc, L))
        Sc = np.zeros((B, M, Kc))
        Vc = np.zeros((B, M, Kc), bool)
        Vc[:, :, 0] = True          # padding slots: a single zero candidate
        kind = np.zeros((B, M), np.int8)   # 0 pad, 1 buyer, 2 seller
        who = np.zeros((B, M), np.int64)
        bb, nn = np.nonzero(mix_b)
        rb = (np.cumsum(mix_b, 1) - 1)[bb, nn]
        Zc[bb, rb, :Kb] = -X[bb, nn]
        Sc[bb, rb, :Kb] = pay_b[bb, nn]
        Vc[bb, rb, :] = False
        Vc[bb, rb, :Kb] = in_b[bb, nn]
        kind[bb, rb] = 1
        who[bb, rb] = nn
        bs, ff = np.nonzero(mix_s)
        rs = (np.cumsum(mix_s, 1) - 1)[bs, ff] + nmb[bs]
        Zc[bs, rs, :Ks] = Y[bs, ff]
        Sc[bs, rs, :Ks] = rec_s[bs, ff] if sellers_only else -rec_s[bs, ff]
        Vc[bs, rs, :] = False
        Vc[bs, rs, :Ks] = in_s[bs, ff]
        kind[bs, rs] = 2
        who[bs, rs] = ff
        best = np.zeros((B, M), np.int64)
        ncand = Vc.sum(-1)
        prod = np.prod(ncand.astype(float), 1)
        ok_enum = prod <= max_combinations
        ncomb = np.minimum(prod, np.iinfo(np.int64).max).astype(np.int64)
        # compact candidates to the front so enumeration only covers real ones
        order = np.argsort(~Vc, axis=-1, kind="stable")
        Zc = np.take_along_axis(Zc, order[..., None], 2)
        Sc = np.take_along_axis(Sc, order, 2)
        Vc = np.take_along_axis(Vc, order, 2)
        idx_e = np.nonzero(ok_enum)[0]
        if idx_e.size:
            Kmax = int(ncand[idx_e].max())
            combos = np.stack(np.unravel_index(np.arange(Kmax ** M), (Kmax,) * M), -1)  # (Cn, M)
            chunk = max(1, int(2e7 // max(1, combos.shape[0] * M * L)))
            for s in range(0, idx_e.size, chunk):
                ii = idx_e[s:s + chunk]
                z = Zc[ii][:, np.arange(M)[None, :], combos]          # (b, Cn, M, L)
                sc = Sc[ii][:, np.arange(M)[None, :], combos].sum(-1)
                val = Vc[ii][:, np.arange(M)[None, :], combos].all(-1)
                net = base[ii][:, None, :] + z.sum(2)
                ok = val & np.all(net >= lo[ii][:, None, :], -1) & np.all(net <= hi[ii][:, None, :], -1)
                sc = np.where(ok, sc, -np.inf)
                j = np.argmax(sc, 1)
                feasible[ii] = ok[np.arange(ii.size), j]
                best[ii] = combos[j]
                if top_k > 0:
                    kc = min(kk, combos.shape[0])
                    jt = np.argsort(-sc, 1, kind="stable")[:, :kc]
                    cand_best[ii, :kc, :M] = combos[jt]
                    cand_ok[ii, :kc] = np.take_along_axis(ok, jt, 1)
        for i in np.nonzero(~ok_enum)[0]:      # rare: too many combinations -> tiny MILP
            feasible[i], best[i] = _milp_choose(base[i], Zc[i], Sc[i], Vc[i], lo[i], hi[i])
            cand_best[i, 0, :M], cand_ok[i, 0] = best[i], feasible[i]
        chosen = np.take_along_axis(order, best[..., None], -1)[..., 0]  # back to option ids
        sel_b = kind == 1
        sel_s = kind == 2
        bI, mI = np.nonzero(sel_b)
        cb[bI, who[bI, mI]] = chosen[bI, mI]
        bI, mI = np.nonzero(sel_s)
        cs[bI, who[bI, mI]] = chosen[bI, mI]
    else:
        net = base
        feasible = np.all((net >= lo) & (net <= hi), -1)
        cand_ok[:, 0] = feasible
    if top_k > 0:
        cand_b = np.repeat(cb0[:, None, :], kk, 1)
        cand_s = np.repeat(cs0[:, None, :], kk, 1)
        if M > 0:
            ch = np.take_along_axis(order[:, None], cand_best[..., None], -1)[..., 0]  # (B,k,M)
            for sel, tgt in ((kind == 1, cand_b), (kind == 2, cand_s)):
                bI, mI = np.nonzero(sel)
                tgt[bI, :, who[bI, mI]] = ch[bI, :, mI]
    x = np.take_along_axis(X, cb[..., None, None], -2)[..., 0, :].sum(1)
    y = np.take_along_axis(Y, cs[..., None, None], -2)[..., 0, :].sum(1)
    if sellers_only:
        x = np.einsum("bnk,bnkl->bl", wb, X)
    budget = np.einsum("bl,bl->b", beta, x) - np.einsum("bl,bl->b", p, y)
    if top_k > 0:
        return cb, cs, feasible, y - x, budget, nmix, ncomb, (cand_b, cand_s, cand_ok)
    return cb, cs, feasible, y - x, budget, nmix, ncomb


def _milp_choose(base, Zc, Sc, Vc, lo, hi):
    """Exact choice of one candidate per mixing agent by a small MILP (HiGHS), on data
    scaled by its own magnitudes; the choice is re-checked in float64."""
    M, Kc, L = Zc.shape
    mi, ki = np.nonzero(Vc)
    nv = mi.size
    A1 = np.zeros((M, nv))
    A1[mi, np.arange(nv)] = 1.0
    A2 = Zc[mi, ki].T                                   # (L, nv)
    lo2 = np.where(np.isfinite(lo), lo - base, -np.inf)
    hi2 = np.where(np.isfinite(hi), hi - base, np.inf)
    qs = np.maximum(np.abs(A2).max(-1), 1e-300)         # per good
    ss = max(np.abs(Sc[mi, ki]).max(initial=0.0), 1e-300)
    res = solve_milp(-Sc[mi, ki] / ss,
                     sp.vstack([sp.csr_matrix(A1), sp.csr_matrix(A2 / qs[:, None])]).tocsr(),
                     np.concatenate([np.ones(M), lo2 / qs]), np.concatenate([np.ones(M), hi2 / qs]),
                     np.ones(nv), time_limit=30.0)
    best = np.zeros(M, np.int64)
    if res.x is None or res.status != "optimal":
        return False, best
    xs = res.x > 0.5
    best[mi[xs]] = ki[xs]
    net = base + Zc[np.arange(M), best].sum(0)
    ok = bool(np.all(net >= lo) and np.all(net <= hi))
    return ok, best


def shapley_folkman_rounding(economy: MenuEconomy, prices: ArrayLike, markup: ArrayLike,
                             buyer_weights: ArrayLike, seller_weights: ArrayLike, *,
                             sellers_only: bool = False,
                             max_combinations: int = 4096) -> RoundingResult:
    """Round a convexified (vertex) solution to pure options (Shapley-Folkman rounding).

    Agents with a single positive weight keep that option.  Each mixing agent gets one
    option from its demand set at ``(1+markup) p`` (supply set at ``p``; tolerance
    ``1e-10`` of the agent's own values and payments) or with positive weight.  Among all
    such combinations (balances to ``1e-10`` of the economy's quantities):

    * default (markup mechanism): require production >= consumption in every good and
      return the combination with the largest budget surplus ``(1+markup) p.sum x - p.sum y``;
    * ``sellers_only=True`` (rationing mechanism): round sellers only, require production
      <= the buyers' convexified consumption in every good with a positive price (so that
      buyers are rationed, never oversupplied), and maximise seller revenue ``p.sum y``.

    ``converged=False`` (``status=NO_SOLUTION``) says that NO combination satisfies the
    constraints (for the given LP solution / reserve).  Inputs broadcast like
    :func:`jaxwalras.convexified_equilibrium` output; results have the broadcast leading
    axes.

    Parameters
    ----------
    economy : MenuEconomy
    prices : array_like, shape (..., L)
        Seller prices of the convexified solution.
    markup : array_like, shape (...)
        Buyers face ``(1 + markup) prices`` (``>= 0``).
    buyer_weights, seller_weights : array_like
        Vertex weights ``(..., N, Kb)`` and ``(..., F, Ks)``.
    sellers_only : bool
        Round sellers only (rationing mechanism).
    max_combinations : int
        Enumeration cap per economy before the exact MILP fallback.

    Returns
    -------
    RoundingResult

    Examples
    --------
    >>> import jaxwalras as jw
    >>> eco = jw.examples.milgrom_watt_table1()
    >>> ce = jw.convexified_equilibrium(eco, markup=0.3, reserve=1.0, method="lp")
    >>> r = jw.shapley_folkman_rounding(eco, ce.prices, 0.3, ce.buyer_weights, ce.seller_weights)
    >>> bool(r.converged), int(r.n_mixing)
    (True, 1)
    """
    if not isinstance(economy, MenuEconomy):
        raise TypeError(f"economy: expected a jaxwalras.MenuEconomy, got {type(economy).__name__}")
    if not isinstance(max_combinations, (int, np.integer)) or max_combinations < 1:
        raise ValueError(f"max_combinations: must be a positive integer, got {max_combinations!r}")
    L, N, F = economy.n_goods, economy.n_buyers, economy.n_sellers
    Kb, Ks = economy.n_buyer_options, economy.n_seller_options
    p = as_float_array(prices, "prices", min_ndim=1, nonnegative=True)
    a = as_float_array(markup, "markup", nonnegative=True)
    wb = as_float_array(buyer_weights, "buyer_weights", min_ndim=2, nonnegative=False)
    ws = as_float_array(seller_weights, "seller_weights", min_ndim=2, nonnegative=False)
    if p.shape[-1] != L:
        raise ValueError(f"prices: last axis must be L={L}, got shape {p.shape}")
    if wb.shape[-2:] != (N, Kb):
        raise ValueError(f"buyer_weights: trailing axes must be (N, Kb)=({N}, {Kb}), got {wb.shape}")
    if ws.shape[-2:] != (F, Ks):
        raise ValueError(f"seller_weights: trailing axes must be (F, Ks)=({F}, {Ks}), got {ws.shape}")
    batch = broadcast_batch({"economy": economy.batch_shape, "prices": p.shape[:-1],
                             "markup": a.shape, "buyer_weights": wb.shape[:-2],
                             "seller_weights": ws.shape[:-2]})
    return _round_batch(economy, batch, p, a, wb, ws, sellers_only=sellers_only,
                        max_combinations=int(max_combinations))


def _round_batch(economy, batch, p, a, wb, ws, *, sellers_only, max_combinations):
    B = int(np.prod(batch, dtype=np.int64))

    def fl(z, tail):
        z = np.asarray(z)
        return np.broadcast_to(z, batch + z.shape[z.ndim - tail:]).reshape((B,) + z.shape[z.ndim - tail:])

    A = economy.host_arrays(batch, flat=True)
    cb, cs, feas, exc, bud, nmix, ncomb = round_flat(
        A, fl(p, 1), fl(a, 0), fl(wb, 2), fl(ws, 2), sellers_only=sellers_only,
        max_combinations=max_combinations)
    status = np.where(feas, Status.OK, Status.NO_SOLUTION).astype(np.int64)
    sh = lambda z: z.reshape(batch + z.shape[1:])  # noqa: E731
    return RoundingResult(sh(cb), sh(cs), sh(feas), sh(exc), sh(bud), sh(nmix), sh(status),
                          sh(ncomb))
