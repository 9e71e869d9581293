"""Exact outcomes of posted (uniform or per-good) markups in small menu economies.

A *markup outcome* at per-good markups ``alpha in R^L_{>=0}`` is a pure outcome ``omega``
(one option per agent) and seller prices ``p >= 0`` such that every seller's plan is in
its supply set at ``p``, every buyer's bundle is in her demand set at buyer prices
``(1 + alpha) * p`` (per good), production covers consumption plus the reserve in every
good, and the auctioneer runs no deficit, ``((1+alpha) * p).sum x >= p.sum y``: Milgrom and
Watt's markup outcome (2022), with a markup per good instead of one for all.

For a FIXED ``omega`` the conditions on ``p`` are linear, so whether ``omega`` is a markup
outcome is a small LP in ``p`` (maximise the budget surplus over the prices that keep
``omega`` in everyone's demand and supply sets; the batched device dual simplex of
:func:`jaxwalras.kernels.simplex.max_budget_prices`, re-verified in float64 on the host).
:func:`posted_markup_outcomes` enumerates every pure outcome, which is exact and only
feasible for small economies, and returns the markup outcome of largest welfare: the best
that posting these markups can achieve.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .typing import ArrayLike
from ._batching import padded_size
from ._validation import as_float_array
from .economy import MenuEconomy
from .kernels.simplex import max_budget_prices
from .status import Status

__all__ = ["PostedOutcome", "posted_markup_outcomes"]

_max_budget = jax.jit(jax.vmap(max_budget_prices))

#: candidate outcomes per device call (bounds the memory of one call)
_ROWS = 1 << 15


class PostedOutcome(NamedTuple):
    """Result of :func:`posted_markup_outcomes` (leading axes = batch).

    Attributes
    ----------
    feasible : ndarray of bool, shape (...)
        A markup outcome exists at the posted markups.
    welfare : ndarray, shape (...)
        Welfare ``sum V - sum C`` of the best markup outcome (0 where none exists: the
        market does not run).
    revenue : ndarray, shape (...)
        The auctioneer's budget surplus of that outcome at its best prices (0 where none).
    prices : ndarray, shape (..., L)
        Seller prices (NaN where none).
    buyer_choice, seller_choice : ndarray of int, shape (..., N), (..., F)
    converged : ndarray of bool, shape (...)
        Every outcome was decided (the price LP of each candidate tested solved); the
        answer is then exact.  ``converged == (status == 0)``.
    status : ndarray of int, shape (...)
        :class:`jaxwalras.Status`: ``OK`` or ``SOLVER_FAILED`` (some price LP hit its
        iteration cap before a markup outcome was found).
    iterations : ndarray of int, shape (...)
        Candidate outcomes whose price LP was solved.
    """

    feasible: Any
    welfare: Any
    revenue: Any
    prices: Any
    buyer_choice: Any
    seller_choice: Any
    converged: Any
    status: Any
    iterations: Any


def _outcomes(bm: np.ndarray, sm: np.ndarray, cap: int):
    """All pure outcomes of one economy as an ``(M, N + F)`` option-index array."""
    opts = [np.flatnonzero(m) for m in list(bm) + list(sm)]
    sizes = np.array([len(o) for o in opts], np.int64)
    M = int(np.prod(sizes, dtype=np.float64))
    if M > cap:
        raise ValueError(f"economy: {M} pure outcomes exceed max_outcomes={cap}; the posted-"
                         "markup evaluation enumerates them all and is meant for small economies")
    idx = np.indices(tuple(sizes)).reshape(len(opts), -1).T
    return np.stack([o[idx[:, a]] for a, o in enumerate(opts)], 1) if len(opts) else idx


def posted_markup_outcomes(economy: MenuEconomy, markups: ArrayLike, reserve: ArrayLike = 0.0, *,
                           max_outcomes: int = 200_000, rtol: float = 1e-9) -> PostedOutcome:
    """The best markup outcome of every economy at posted (per-good) markups, exactly.

    Parameters
    ----------
    economy : MenuEconomy
        Any batch shape; small (all pure outcomes are enumerated).
    markups : array_like, shape broadcastable to ``batch + (L,)``
        Markup of each good (a scalar or ``(..., 1)`` = one markup for all goods), ``>= 0``.
    reserve : array_like, optional
        Auctioneer demand per good, broadcastable to ``batch + (L,)``, ``>= 0``.
    max_outcomes : int
        Refuse economies with more pure outcomes than this.
    rtol : float
        Tolerance of the float64 verification, relative to the economy's value scale.

    Returns
    -------
    PostedOutcome

    Raises
    ------
    TypeError, ValueError
        Bad economy, negative markups or reserve, an economy with too many outcomes.

    Notes
    -----
    Every pure outcome that covers consumption plus the reserve is a candidate; in order
    of decreasing welfare, the first one for which the price LP (maximise the budget
    surplus over the prices keeping it in all demand and supply sets, ``0 <= p <= 1000``
    times the economy's value / quantity scale) has a solution with no deficit is
    returned, after a float64 check of all four conditions.  With one markup for all goods
    this is the markup outcome of Milgrom and Watt (2022) of largest welfare at that markup.

    References
    ----------
    P. Milgrom and M. Watt, "Linear pricing mechanisms for markets without convexity",
    EC 2022.

    Examples
    --------
    >>> import jaxwalras as jw
    >>> eco = jw.examples.milgrom_watt_table1()
    >>> out = jw.posted_markup_outcomes(eco, 0.2579)
    >>> bool(out.feasible), out.seller_choice.tolist(), round(float(out.welfare), 4)
    (True, [4], 0.4791)
    >>> bool(jw.posted_markup_outcomes(eco, 0.25).feasible)
    False
    """
    if not isinstance(economy, MenuEconomy):
        raise TypeError(f"economy: expected a jaxwalras.MenuEconomy, got {type(economy).__name__}")
    L = economy.n_goods
    al = as_float_array(markups, "markups", nonnegative=True)
    rs = as_float_array(reserve, "reserve", nonnegative=True)
    al = al[None] if al.ndim == 0 else al
    rs = rs[None] if rs.ndim == 0 else rs
    for nm, z in (("markups", al), ("reserve", rs)):
        if z.shape[-1] not in (1, L):
            raise ValueError(f"{nm}: last axis must have size 1 or L={L}, got shape {z.shape}")
    try:
        batch = tuple(np.broadcast_shapes(economy.batch_shape, al.shape[:-1], rs.shape[:-1]))
    except ValueError:
        raise ValueError(f"markups/reserve: leading axes {al.shape[:-1]}, {rs.shape[:-1]} do not "
                         f"broadcast against the economy's batch {economy.batch_shape}") from None
    B = int(np.prod(batch, dtype=np.int64))
    # enumerate each ECONOMY once (markup grids repeat economies), then test (economy,
    # markups) instances in rounds of growing depth, all instances in one device call
    Ae = economy.host_arrays(flat=True)
    Be = Ae.n_markets
    eid = np.broadcast_to(np.arange(Be).reshape(economy.batch_shape), batch).reshape(B)
    X, V, bm, Y, C, sm = Ae
    N, F = V.shape[1], C.shape[1]
    al = np.broadcast_to(al, batch + (L,)).reshape(B, L)
    rs = np.broadcast_to(rs, batch + (L,)).reshape(B, L)
    vs = np.maximum(np.abs(V).max((1, 2)), np.abs(C).max((1, 2)))
    vs = np.where(vs > 0, vs, 1.0)
    qs = np.maximum(X.max((1, 2)), Y.max((1, 2)))
    qs = np.where(qs > 0, qs, 1.0)
    enum = [_outcomes(bm[e], sm[e], int(max_outcomes)) for e in range(Be)]
    M = max(len(o) for o in enum)
    OM = np.zeros((Be, M, N + F), np.int64)          # outcomes, best welfare first
    W = np.full((Be, M), -np.inf)
    EX = np.full((Be, M, L), -np.inf)
    for k, om in enumerate(enum):
        x = X[k][np.arange(N), om[:, :N]].sum(1)
        y = Y[k][np.arange(F), om[:, N:]].sum(1)
        w = V[k][np.arange(N), om[:, :N]].sum(1) - C[k][np.arange(F), om[:, N:]].sum(1)
        o = np.argsort(-w, kind="stable")
        OM[k, :len(o)], W[k, :len(o)], EX[k, :len(o)] = om[o], w[o], (y - x)[o]
    # candidates of each instance: physically feasible with its reserve
    okm = (EX[eid] - rs[:, None, :] >= -(rtol * qs[eid] * (N + F))[:, None, :]).all(-1)
    rank = np.cumsum(okm, 1) - 1
    count = okm.sum(1)
    feas = np.zeros(B, bool)
    welf, rev = np.zeros(B), np.zeros(B)
    P = np.full((B, L), np.nan)
    CB, CS = np.zeros((B, N), np.int64), np.zeros((B, F), np.int64)
    failed = np.zeros(B, bool)
    its = np.zeros(B, np.int64)
    pos = 0
    depth = 16
    with jax.enable_x64(True):       # scoped: the global flag is untouched
        while True:
            live = (pos < count) & ~feas
            if not live.any():
                break
            sel = okm & live[:, None] & (rank >= pos) & (rank < pos + depth)
            inst_all, mi_all = np.nonzero(sel)
            for lo in range(0, inst_all.size, _ROWS):
                inst, mi = inst_all[lo:lo + _ROWS], mi_all[lo:lo + _ROWS]
                e = eid[inst]
                cb, cs = OM[e, mi, :N], OM[e, mi, N:]
                n = inst.size
                size = padded_size(n, base=8, floor=512, cap=_ROWS)
                pad = np.concatenate([np.arange(n), np.zeros(size - n, np.int64)])
                ep, cbp, csp, ap = e[pad], cb[pad], cs[pad], al[inst][pad]
                Xn, Yn = X[ep] / qs[ep][:, None, None, :], Y[ep] / qs[ep][:, None, None, :]
                Vn, Cn = V[ep] / vs[ep][:, None, None], C[ep] / vs[ep][:, None, None]
                Xh = np.take_along_axis(Xn, cbp[..., None, None], 2)
                Vh = np.take_along_axis(Vn, cbp[..., None], 2)
                Yh = np.take_along_axis(Yn, csp[..., None, None], 2)
                Ch = np.take_along_axis(Cn, csp[..., None], 2)
                args = ((1.0 + ap)[:, None, None, :] * (Xh - Xn), Vh - Vn, bm[ep], Yn - Yh, Cn - Ch,
                        sm[ep], (1.0 + ap) * Xh[:, :, 0].sum(1), Yh[:, :, 0].sum(1), np.zeros(size),
                        np.full(size, 1e3))
                pn, st = (np.asarray(z)[:n] for z in _max_budget(*(jnp.asarray(z) for z in args)))
                p = pn * vs[e][:, None] / qs[e]
                good = (st == 0) & _verify(X[e], V[e], bm[e], Y[e], C[e], sm[e], cb, cs, al[inst], p,
                                           vs[e], rtol)
                np.add.at(its, inst, 1)
                np.logical_or.at(failed, inst, st == 2)
                hit = np.flatnonzero(good & ~feas[inst])
                if hit.size:   # first success per instance (candidates are in welfare order)
                    _, first = np.unique(inst[hit], return_index=True)
                    i = hit[first]
                    b = inst[i]
                    feas[b], welf[b], P[b], CB[b], CS[b] = True, W[e[i], mi[i]], p[i], cb[i], cs[i]
                    x = np.take_along_axis(X[e[i]], cb[i][..., None, None], 2)[:, :, 0].sum(1)
                    y = np.take_along_axis(Y[e[i]], cs[i][..., None, None], 2)[:, :, 0].sum(1)
                    rev[b] = (((1.0 + al[b]) * p[i]) * x).sum(-1) - (p[i] * y).sum(-1)
            pos += depth
            depth *= 4
    failed &= ~feas
    status = np.where(failed, Status.SOLVER_FAILED, Status.OK).astype(np.int64)
    sh = lambda z: z.reshape(batch + z.shape[1:])  # noqa: E731
    return PostedOutcome(feasible=sh(feas), welfare=sh(welf), revenue=sh(rev), prices=sh(P),
                         buyer_choice=sh(CB), seller_choice=sh(CS), converged=sh(~failed),
                         status=sh(status), iterations=sh(its))


def _verify(X, V, bm, Y, C, sm, cb, cs, al, p, vs, rtol):
    """float64 check of candidate markup outcomes (flat list)."""
    beta = (1.0 + al) * p
    ub = np.where(bm, V - np.einsum("inkl,il->ink", X, beta), -np.inf)
    us = np.where(sm, np.einsum("ifkl,il->ifk", Y, p) - C, -np.inf)
    gb = ub.max(-1) - np.take_along_axis(ub, cb[..., None], -1)[..., 0]
    gs = us.max(-1) - np.take_along_axis(us, cs[..., None], -1)[..., 0]
    x = np.take_along_axis(X, cb[..., None, None], 2)[:, :, 0].sum(1)
    y = np.take_along_axis(Y, cs[..., None, None], 2)[:, :, 0].sum(1)
    budget = np.einsum("il,il->i", beta, x) - np.einsum("il,il->i", p, y)
    tol = rtol * vs * (X.shape[1] + Y.shape[1])
    return (np.isfinite(p).all(1) & (p >= 0).all(1) & (gb.max(1, initial=0) <= tol)
            & (gs.max(1, initial=0) <= tol) & (budget >= -tol))
