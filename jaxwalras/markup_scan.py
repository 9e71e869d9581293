"""Exact least markup of every one-good menu economy (markup mechanism, Milgrom and Watt 2022).

A markup outcome ``(alpha, p, omega)`` of a one-good economy: seller price ``p >= 0``, buyer
price ``beta = t p`` with ``t = 1 + alpha >= 1``, every seller in its supply set at ``p``,
every buyer in its demand set at ``beta``, production ``Y = sum y`` covering consumption
``X = sum x`` plus the set-aside ``R >= 0`` (``X + R <= Y``) and no budget deficit,
``beta X >= p Y``.  For ``p > 0`` the budget reads ``t >= Y / X``.

**Pieces.**  With one good an agent only ever chooses points of the upper hull of its menu
(buyers: the points ``(x, V)``; sellers: ``(y, -C)``); an edge of that hull has a price
``pi`` (buyers: the value per unit of the edge; sellers: its marginal cost) at which the
agent is indifferent along the whole edge (its two vertices and every menu point on it),
and the agent passes the edge (buyers to its smaller end, sellers to its larger end) at
prices above ``pi``.  Sorting the edge prices of one side and grouping equal ones splits
the price axis into *interval pieces*, closed price intervals on which the side's total
(``Y`` or ``X``) is one vertex sum, and *point pieces*, the tie prices, at which the total
can take every value of the sumset of the tied agents' points on their edges (computed
exactly by a dynamic programme over the tied agents; only values strictly between the
neighbouring vertex sums are new).

**Pairs.**  For a supply piece ``(Y, p in [pl, ph])`` and a demand piece
``(X, beta in [bl, bh])`` with ``X + R <= Y`` the least ``t`` is
``max(Y / X, bl / ph, 1)``, feasible iff it is at most ``bh / pl``; against a point piece
the best value is the nearest one on the right side (largest ``X <= Y - R``, smallest
``Y >= X + R``), because both ``Y / X`` and feasibility improve with it.  The least markup
is the minimum over all pairs (plus ``alpha = 0`` at ``p = 0`` when the largest supply at
``p = 0`` covers the smallest demand there): every markup outcome lies in one pair, so the
minimum is the least markup over ALL pure outcomes, not only over those a convexified
solution rounds to.  Tie sets larger than ``max_tie_set`` are pruned (the outcome stays
valid, minimality is then not claimed) and replaced by their interval hull for a
certified lower bound.

Tolerances (all relative, per economy or per agent, none batch-wide): edge prices within
``1e-11`` (relative) form one tie group; a menu point within ``1e-11`` times its agent's
largest ``|value|`` of a hull edge lies on it; quantities are compared to ``1e-12`` times
the economy's quantity scale.  The outcome is re-verified by the mechanism's float64
certificate with looser tolerances (:func:`jaxwalras.menu_host.outcome_check`).

References
----------
P. Milgrom and M. Watt, "Linear pricing mechanisms for markets without convexity",
EC 2022 (markup mechanisms).
"""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from .economy import MenuArrays
from .single_good import _upper_hulls

__all__ = ["least_markup_one_good", "ScanResult", "SLOPE_RTOL", "POINT_RTOL", "QTY_RTOL"]

#: edge prices within this relative distance are one tie price
SLOPE_RTOL = 1e-11
#: a menu point within this fraction of its agent's largest |value| of a hull edge is on it
POINT_RTOL = 1e-11
#: quantity comparisons, relative to the economy's quantity scale
QTY_RTOL = 1e-12
#: relative slack on the price-range feasibility of a pair
_PRICE_RTOL = 1e-12
#: pruned size of a tie sumset (multi-agent groups only)
MAX_TIE_SET = 1 << 12


class ScanResult(NamedTuple):
    """Least markup of a flat batch (see :func:`least_markup_one_good`)."""
    alpha: np.ndarray        # (B,) least markup found (inf: none within max_markup)
    p: np.ndarray            # (B, 1) seller price
    cb: np.ndarray           # (B, N) buyer options
    cs: np.ndarray           # (B, F) seller options
    exact: np.ndarray        # (B,) bool: alpha is the least markup (no tie set pruned)
    lower: np.ndarray        # (B,) certified lower bound on the least markup
    found: np.ndarray        # (B,) bool


class _Agents(NamedTuple):
    """One side's hulls in price form (buyers: z = x, w = V; sellers: z = y, w = -C)."""
    opt: np.ndarray          # (A, K) option index of hull vertex m (ascending z)
    zv: np.ndarray           # (A, K) vertex quantities
    nv: np.ndarray           # (A,) vertex counts
    e_row: np.ndarray        # (E,) agent of edge
    e_m: np.ndarray          # (E,) edge m joins vertices m, m+1
    e_price: np.ndarray      # (E,) price at which the agent is indifferent along the edge
    e_dz: np.ndarray         # (E,)
    i_row: np.ndarray        # interior points: agent, edge index m, quantity, option
    i_m: np.ndarray
    i_z: np.ndarray
    i_opt: np.ndarray


def _hull_side(z: np.ndarray, w: np.ndarray, alive: np.ndarray, seller: bool) -> _Agents:
    opt, zv, wv, nv = _upper_hulls(z, w, alive)
    A, K = z.shape
    r, m = np.nonzero(np.arange(K - 1)[None, :] < (nv - 1)[:, None]) if K > 1 else \
        (np.zeros(0, np.int64), np.zeros(0, np.int64))
    dz = zv[r, m + 1] - zv[r, m]
    slope = (wv[r, m + 1] - wv[r, m]) / dz
    price = -slope if seller else slope
    # interior points: real options that are not vertices and lie on a hull edge (within a
    # tolerance relative to the agent's own values)
    isv = np.zeros((A, K), bool)
    rows = np.repeat(np.arange(A), K)
    cols = opt.ravel()
    keep = (np.arange(K)[None, :] < nv[:, None]).ravel()
    isv[rows[keep], cols[keep]] = True
    eps = POINT_RTOL * np.where(alive, np.abs(w), 0.0).max(-1)
    ia, ik = np.nonzero(alive & ~isv)
    if ia.size and K > 1:
        zz = z[ia, ik]
        # edge of each point: vertices of its row with z < the point's z (a merge by sort,
        # no (points x K) table)
        vr = rows[keep]
        vz = zv.ravel()[keep]
        recs_row = np.concatenate([vr, ia])
        recs_z = np.concatenate([vz, zz])
        is_v = np.concatenate([np.ones(vr.size, bool), np.zeros(ia.size, bool)])
        order = np.lexsort((is_v, recs_z, recs_row))       # equal z: points first
        before = np.cumsum(is_v[order]) - is_v[order]       # vertices before, all rows
        vstart = np.concatenate([[0], np.cumsum(nv)[:-1]])
        cnt = np.empty(order.size, np.int64)
        cnt[order] = before
        mm = cnt[vr.size:] - vstart[ia] - 1                 # left vertex of the edge
        ok = (mm >= 0) & (mm < nv[ia] - 1)
        mm = np.clip(mm, 0, K - 2)
        zl = zv[ia, mm]
        zr = zv[ia, mm + 1]
        ok &= (zz > zl) & (zz < zr)
        wl = wv[ia, mm]
        wr = wv[ia, mm + 1]
        with np.errstate(invalid="ignore", divide="ignore"):
            line = wl + (wr - wl) * (zz - zl) / (zr - zl)
        ok &= w[ia, ik] >= line - eps[ia]
        ia, ik, mm, zz = ia[ok], ik[ok], mm[ok], zz[ok]
    else:
        ia = ik = mm = np.zeros(0, np.int64)
        zz = np.zeros(0)
    return _Agents(opt, zv, nv, r, m, price, dz, ia, mm, zz, ik)


class _Ties(NamedTuple):
    values: np.ndarray       # sorted achievable offsets (>= 0) of the group's total
    steps: list              # DP back-pointers: per agent (prev index array, option array)
    agents: np.ndarray       # agents of the group, in DP order
    complete: bool           # False when pruned


def _sumset(offsets: list[tuple[np.ndarray, np.ndarray]], scale: float, cap: int) -> _Ties:
    """Exact sumset of per-agent offset sets with back-pointers (pruned to ``cap``)."""
    vals = np.zeros(1)
    steps = []
    complete = True
    res = QTY_RTOL * max(scale, 1e-300)
    for oz, oo in offsets:
        tot = (vals[:, None] + oz[None, :]).ravel()
        prev = np.repeat(np.arange(vals.size), oz.size)
        opt = np.tile(oo, vals.size)
        order = np.argsort(tot, kind="stable")         # ties: the first (prev, option)
        st = tot[order]
        first = np.ones(order.size, bool)
        first[1:] = st[1:] - st[:-1] > res             # values within res: one state
        sel = order[first]
        if len(offsets) > 1 and sel.size > cap:            # prune by rank: keep the spread
            complete = False
            sel = sel[np.unique(np.round(np.linspace(0, sel.size - 1, cap)).astype(np.int64))]
        vals = tot[sel]
        steps.append((prev[sel], opt[sel]))
    return _Ties(vals, steps, np.zeros(0, np.int64), complete)


class _Side(NamedTuple):
    prices: np.ndarray       # (G,) tie prices, ascending (> 0)
    sums: np.ndarray         # (G+1,) totals on interval pieces i = 0..G
    ties: list               # per group: _Ties or None (no value strictly inside)
    lows: np.ndarray         # (G,) total at the low end of each group's tie set
    start: np.ndarray        # (A,) vertex index per agent just above price 0
    sign: int                # +1 sellers (move right past an edge), -1 buyers
    ag: _Agents
    e_group: np.ndarray      # (E,) group of each edge (-1: price <= 0)


def _vertex(side: _Side, piece: int) -> np.ndarray:
    """Vertex index of every agent on interval piece ``piece`` (groups < piece passed)."""
    ag = side.ag
    passed = (side.e_group >= 0) & (side.e_group < piece)
    return side.start + side.sign * np.bincount(ag.e_row[passed], minlength=ag.nv.size)


def _group_starts(ps: np.ndarray) -> np.ndarray:
    """Starts of the tie groups of sorted positive prices: a group holds the prices within
    ``SLOPE_RTOL`` (relative) of its first one (chains of closer prices are re-split)."""
    if ps.size == 0:
        return np.zeros(0, np.int64)
    starts = np.concatenate([[0], np.nonzero(ps[1:] > ps[:-1] * (1.0 + SLOPE_RTOL))[0] + 1])
    ends = np.concatenate([starts[1:], [ps.size]])
    wide = np.nonzero(ps[ends - 1] > ps[starts] * (1.0 + SLOPE_RTOL))[0]
    if wide.size == 0:
        return starts
    out = [starts]
    for w in wide:                      # rare: a chain of near-equal prices
        lo, hi = starts[w], ends[w]
        first = ps[lo]
        for i in range(lo + 1, hi):
            if ps[i] > first * (1.0 + SLOPE_RTOL):
                first = ps[i]
                out.append(np.array([i]))
    return np.unique(np.concatenate(out))


def _side(ag: _Agents, seller: bool, cap: int, qscale: float) -> _Side:
    A = ag.nv.size
    pos = ag.e_price > 0
    pe = ag.e_price[pos]
    order = np.argsort(pe, kind="stable")
    ps = pe[order]
    starts = _group_starts(ps)
    G = starts.size
    g = np.cumsum(np.isin(np.arange(ps.size), starts)) - 1
    prices = ps[starts]
    e_group = np.full(ag.e_price.size, -1)
    idx_pos = np.nonzero(pos)[0]
    e_group[idx_pos[order]] = g
    gdz = np.bincount(g, weights=ag.e_dz[idx_pos[order]], minlength=G) if G else np.zeros(0)
    nonpos = np.bincount(ag.e_row[~pos], minlength=A)
    if seller:
        start = nonpos
        zsum = ag.zv[np.arange(A), start].sum()
        sums = zsum + np.concatenate([[0.0], np.cumsum(gdz)])
    else:
        start = ag.nv - 1 - nonpos
        npos = np.bincount(ag.e_row[pos], minlength=A)
        top = ag.zv[np.arange(A), start - npos].sum()          # after every positive group
        sums = top + np.concatenate([np.cumsum(gdz[::-1])[::-1], [0.0]])
    # tie sets
    ties: list = [None] * G
    lows = sums[:-1] if seller else sums[1:]
    if G:
        e_g = e_group
        int_group = e_g[_edge_id(ag, ag.i_row, ag.i_m)] if ag.i_row.size else np.zeros(0, np.int64)
        multi = np.bincount(e_g[idx_pos], minlength=G) > 1
        has_int = np.bincount(int_group[int_group >= 0], minlength=G) > 0 if int_group.size \
            else np.zeros(G, bool)
        for k in np.nonzero(multi | has_int)[0]:
            ek = np.nonzero(e_g == k)[0]
            agents = np.unique(ag.e_row[ek])
            offs = []
            for a in agents:
                ms = ag.e_m[ek[ag.e_row[ek] == a]]
                lo_v, hi_v = ms.min(), ms.max() + 1                  # run of vertices
                vz = ag.zv[a, lo_v:hi_v + 1]
                vo = ag.opt[a, lo_v:hi_v + 1]
                sel = (ag.i_row == a) & (ag.i_m >= lo_v) & (ag.i_m < hi_v)
                z = np.concatenate([vz, ag.i_z[sel]])
                o = np.concatenate([vo, ag.i_opt[sel]])
                srt = np.argsort(z, kind="stable")
                offs.append((z[srt] - vz[0], o[srt]))
            t = _sumset(offs, qscale, cap)
            ties[k] = t._replace(agents=agents)
    return _Side(prices, sums, ties, lows, start, 1 if seller else -1, ag, e_group)


def _edge_id(ag: _Agents, row: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Index into the edge arrays of edge ``m`` of agent ``row``."""
    first = np.searchsorted(ag.e_row, row)          # edges are listed agent by agent
    return first + m


def _choices(side: _Side, piece: int, tie: tuple[int, int] | None) -> np.ndarray:
    """Option of every agent on interval piece ``piece`` or, with ``tie = (group, value
    index)``, at that tie value."""
    ag = side.ag
    A = ag.nv.size
    out = ag.opt[np.arange(A), _vertex(side, piece)]
    if tie is not None:
        k, j = tie
        t = side.ties[k]
        for d in range(len(t.steps) - 1, -1, -1):
            prev, opt = t.steps[d]
            out[t.agents[d]] = opt[j]
            j = prev[j]
    return out


class _Best(NamedTuple):
    t: float
    p: float
    s_piece: int
    s_tie: Any
    d_piece: int
    d_tie: Any


def _consider(best: _Best | None, t: np.ndarray, feas: np.ndarray, make) -> _Best | None:
    """Keep the smallest feasible ``t`` (first index among near-equal ones)."""
    if not feas.any():
        return best
    tt = np.where(feas, t, np.inf)
    i = int(np.argmin(tt))
    if best is None or tt[i] < best.t * (1.0 - 1e-13):
        return make(i, float(tt[i]))
    return best


def _price_ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a / b`` with ``0/inf = 0``, ``x/0 = inf`` (x > 0), ``0/0 = 0``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        r = a / b
    return np.where(a == 0, 0.0, np.where(b == 0, np.inf, r))


def _build(A: MenuArrays, cap: int) -> tuple[_Side, _Side, float]:
    """Both sides of ONE economy and its quantity tolerance."""
    X, V, bm, Y, C, sm = A
    x = X[..., 0]
    y = Y[..., 0]
    qscale = np.where(bm, x, 0).max(-1).sum() + np.where(sm, y, 0).max(-1).sum()
    D = _side(_hull_side(x, V, bm, seller=False), False, cap, qscale)
    S = _side(_hull_side(y, -C, sm, seller=True), True, cap, qscale)
    return D, S, QTY_RTOL * qscale


def _scan_one(D: _Side, S: _Side, qtol: float, R: float, max_markup: float,
              relaxed: bool = False):
    """Least markup of ONE economy from its two sides (see the module docstring)."""
    gd, gs = D.prices, S.prices
    Xi, Yi = D.sums, S.sums
    bl = np.concatenate([[0.0], gd])
    bh = np.concatenate([gd, [np.inf]])
    pl = np.concatenate([[0.0], gs])
    ph = np.concatenate([gs, [np.inf]])
    tmax = 1.0 + max_markup
    best: _Best | None = None
    # (a) interval x interval, in row blocks of supply pieces (vectorised)
    rows = max(1, (1 << 22) // max(Xi.size, 1))
    for i0 in range(0, Yi.size, rows):
        Yr, phr, plr = Yi[i0:i0 + rows, None], ph[i0:i0 + rows, None], pl[i0:i0 + rows, None]
        lo_t = _price_ratio(bl[None, :], phr)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.maximum(np.maximum(np.where(Xi > 0, Yr / np.where(Xi > 0, Xi, 1.0), np.inf),
                                      lo_t), 1.0)
        zero = (Xi <= 0) & (Yr <= qtol) & (R <= qtol)
        t = np.where(zero, np.maximum(lo_t, 1.0), t)
        feas = (Xi + R <= Yr + qtol) & ((Xi > 0) | zero) & \
            (t <= _price_ratio(bh[None, :], plr) * (1 + _PRICE_RTOL)) & (t <= tmax)
        best = _consider(best, t.ravel(), feas.ravel(), lambda q, tv, i0=i0: _Best(
            tv, 0.0, i0 + q // Xi.size, None, q % Xi.size, None))
    # (b) supply interval x demand tie group
    for k, tie in enumerate(D.ties):
        if tie is None:
            continue
        b = gd[k]
        vals = D.lows[k] + tie.values
        if relaxed and not tie.complete:
            xs = np.minimum(Yi - R + qtol, vals[-1])
            ok = xs >= vals[0]
            ix = np.zeros(Yi.size, np.int64)
        else:
            ix = np.searchsorted(vals, Yi - R + qtol, side="right") - 1
            ok = ix >= 0
            xs = vals[np.maximum(ix, 0)]
        ok &= xs > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.maximum(np.maximum(Yi / np.where(xs > 0, xs, 1.0), _price_ratio(b, ph)), 1.0)
        feas = ok & (t <= _price_ratio(b, pl) * (1 + _PRICE_RTOL)) & (t <= tmax)
        best = _consider(best, t, feas, lambda i, tv, k=k, ix=ix: _Best(
            tv, 0.0, i, None, k + 1, (k, int(ix[i]))))
    # (c) supply tie group x demand interval
    for k, tie in enumerate(S.ties):
        if tie is None:
            continue
        g = gs[k]
        vals = S.lows[k] + tie.values
        need = Xi + R - qtol
        if relaxed and not tie.complete:
            ys = np.maximum(need, vals[0])
            ok = ys <= vals[-1]
            iy = np.zeros(Xi.size, np.int64)
        else:
            iy = np.searchsorted(vals, need, side="left")
            ok = iy < vals.size
            ys = vals[np.minimum(iy, vals.size - 1)]
        ok &= Xi > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.maximum(np.maximum(ys / np.where(Xi > 0, Xi, 1.0), bl / g), 1.0)
        feas = ok & (t <= bh / g * (1 + _PRICE_RTOL)) & (t <= tmax)
        best = _consider(best, t, feas, lambda j, tv, k=k, iy=iy: _Best(
            tv, 0.0, k + 1, (k, int(iy[j])), j, None))
    # (d) supply tie group x demand tie group (fixed prices g, b >= g)
    for ks, ts in enumerate(S.ties):
        if ts is None:
            continue
        yv = S.lows[ks] + ts.values
        for kd, td in enumerate(D.ties):
            if td is None or gd[kd] < gs[ks] * (1 - _PRICE_RTOL):
                continue
            t0 = max(gd[kd] / gs[ks], 1.0)
            if t0 > tmax:
                continue
            xv = D.lows[kd] + td.values
            if relaxed and not (ts.complete and td.complete):
                # interval hulls: X in [x0, x1], Y in [y0, y1], X + R <= Y <= t0 X
                lo = max(xv[0], yv[0] / t0, R / (t0 - 1.0) if t0 > 1 else (0.0 if R <= qtol else np.inf))
                hi = min(xv[-1], yv[-1] - R + qtol)
                if lo <= hi and hi > 0:
                    best = _consider(best, np.array([t0]), np.array([True]),
                                     lambda i, tv, ks=ks, kd=kd: _Best(tv, 0.0, ks + 1, (ks, 0),
                                                                       kd + 1, (kd, 0)))
                continue
            iy = np.searchsorted(yv, xv + R - qtol, side="left")
            ok = (iy < yv.size) & (xv > 0)
            ys = yv[np.minimum(iy, yv.size - 1)]
            feas = ok & (ys <= t0 * xv * (1 + _PRICE_RTOL))
            best = _consider(best, np.full(xv.size, t0), feas, lambda i, tv, ks=ks, kd=kd, iy=iy:
                             _Best(tv, 0.0, ks + 1, (ks, int(iy[i])), kd + 1, (kd, i)))
    # alpha = 0 at p = 0: the largest supply at 0 covers the smallest demand there
    zero_ok = Xi[0] + R <= Yi[0] + qtol
    return best, zero_ok, D, S, (bl, bh, pl, ph)


def _outcome(best: _Best, D: _Side, S: _Side, bounds) -> tuple[float, float, np.ndarray, np.ndarray]:
    bl, bh, pl, ph = bounds
    t = best.t
    if best.s_tie is not None:
        lo_p = hi_p = S.prices[best.s_tie[0]]
    else:
        lo_p, hi_p = pl[best.s_piece], ph[best.s_piece]
    if best.d_tie is not None:
        lo_b = hi_b = D.prices[best.d_tie[0]]
    else:
        lo_b, hi_b = bl[best.d_piece], bh[best.d_piece]
    p = max(lo_p, lo_b / t)
    p = min(p, hi_p) if np.isfinite(hi_p) else p
    cs = _choices(S, best.s_piece, best.s_tie)
    cb = _choices(D, best.d_piece, best.d_tie)
    return t - 1.0, p, cb, cs


def least_markup_one_good(A: MenuArrays, reserve: np.ndarray, max_markup: float, *,
                          max_tie_set: int = MAX_TIE_SET) -> ScanResult:
    """The least markup of every economy of a flat one-good batch, exactly.

    Parameters
    ----------
    A : MenuArrays
        Flat batch ``(B, ...)`` with ``L = 1``.
    reserve : ndarray, shape (B,)
        Set-aside ``R >= 0``: outcomes must have ``Y - X >= R``.
    max_markup : float
        Outcomes with a larger markup are not accepted.
    max_tie_set : int
        Pruning size of multi-agent tie sumsets.

    Returns
    -------
    ScanResult
        Per economy the least markup and one outcome attaining it (``found``), whether
        it is provably least (``exact``: no tie set was pruned), and a certified lower
        bound on the least markup (equal to ``alpha`` when exact; ``inf`` when no outcome
        within ``max_markup`` exists).
    """
    B, N = A.V.shape[:2]
    F = A.C.shape[1]
    alpha = np.full(B, np.inf)
    p = np.zeros((B, 1))
    cb = np.zeros((B, N), np.int64)
    cs = np.zeros((B, F), np.int64)
    exact = np.zeros(B, bool)
    lower = np.full(B, np.inf)
    found = np.zeros(B, bool)
    for b in range(B):
        R = float(reserve[b])
        D, S, qtol = _build(A.take(b), max_tie_set)
        best, zero_ok, D, S, bounds = _scan_one(D, S, qtol, R, max_markup)
        complete = all(t is None or t.complete for t in D.ties + S.ties)
        if zero_ok and (best is None or best.t > 1.0):
            # alpha = 0 at p = 0: sellers at their largest plan at 0, buyers their smallest
            alpha[b], p[b, 0] = 0.0, 0.0
            cs[b] = _choices(S, 0, None)
            cb[b] = _choices(D, 0, None)
            exact[b] = found[b] = True
            lower[b] = 0.0
            continue
        if best is None:
            exact[b] = complete
            lower[b] = np.inf if complete else _relaxed_lower(D, S, qtol, R, max_markup)
            continue
        alpha[b], p[b, 0], cb[b], cs[b] = _outcome(best, D, S, bounds)
        found[b] = True
        lower[b] = alpha[b] if complete else min(alpha[b], _relaxed_lower(D, S, qtol, R,
                                                                          max_markup))
        # least when nothing was pruned, or when the relaxed bound reaches the markup found
        exact[b] = complete or lower[b] >= alpha[b] * (1.0 - 1e-12)
    return ScanResult(alpha, p, cb, cs, exact, lower, found)


def _relaxed_lower(D: _Side, S: _Side, qtol: float, R: float, max_markup: float) -> float:
    """Certified lower bound: pruned tie sets replaced by their interval hulls."""
    best, zero_ok, *_ = _scan_one(D, S, qtol, R, max_markup, relaxed=True)
    if zero_ok:
        return 0.0
    return np.inf if best is None else best.t - 1.0
