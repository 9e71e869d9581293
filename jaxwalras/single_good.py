"""Exact one-good paths: the convexified equilibrium by upper envelopes, and the least
markup of the Table-1 class by a breakpoint scan.

With one good (``L = 1``) the dual of the convexified economy is a convex piecewise-linear
function of the scalar price whose kinks are the edges of the agents' upper envelopes
(concave hulls of their menus), so the equilibrium follows from sorting those edges, with
no LP (:func:`convexified_one_good`).  For Milgrom and Watt's Table-1 class (one good,
all-or-nothing buyers, one seller producing integer multiples at a constant marginal cost)
the least budget-feasible markup follows from a case analysis over the buyers served,
scanned in one sort (:func:`table1_markup`, the numpy twin of
:func:`jaxwalras.kernels.single_good.single_good_min_markup`).

References
----------
P. Milgrom and M. Watt, "Linear pricing mechanisms for markets without convexity",
EC 2022 (Table 1 and the large-market example).
"""
from __future__ import annotations

import numpy as np

from .economy import MenuArrays

__all__ = ["convexified_one_good", "table1_structure", "table1_scan_numpy", "table1_markup"]


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
    for r in rows:                         # pathological rows: monotone chain
        ks = np.nonzero(al[r])[0]
        hull: list[int] = []
        for k in ks:
            while len(hull) >= 2:
                h0, h1 = hull[-2], hull[-1]
                if (ws[r, h1] - ws[r, h0]) * (zs[r, k] - zs[r, h0]) <= \
                        (ws[r, k] - ws[r, h0]) * (zs[r, h1] - zs[r, h0]):
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


def segment_cumsum(v: np.ndarray, seg: np.ndarray, B: int) -> np.ndarray:
    """Cumulative sums of ``v`` restarted at every segment (``seg`` sorted, ``0..B-1``).

    Each segment is summed on its own (rows of a padded matrix, one bucket of powers-of-two
    lengths at a time), so its sums are the same whatever the other segments hold."""
    out = np.empty(v.shape, np.float64)
    if v.size == 0:
        return out
    counts = np.bincount(seg, minlength=B)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    size = np.where(counts > 0, 2 ** np.ceil(np.log2(np.maximum(counts, 1))).astype(np.int64), 0)
    for M in np.unique(size[size > 0]):
        rows = np.nonzero(size == M)[0]
        col = np.arange(M)
        valid = col[None, :] < counts[rows, None]
        idx = starts[rows, None] + np.where(valid, col[None, :], 0)
        cs = np.cumsum(np.where(valid, v[idx], 0.0), axis=1)
        out[idx[valid]] = cs[valid]
    return out


def convexified_one_good(A: MenuArrays, a: np.ndarray, r: np.ndarray):
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
    X, V, bm, Y, C, sm = A
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
    # by economy, then price; equal prices keep their order inside the economy, so an
    # economy's sweep does not depend on the other economies of the batch
    order = np.lexsort((price, econ))
    price, jump, econ = price[order], jump[order], econ[order]
    nonpos = price <= 0.0
    e0 = e_inf + np.bincount(econ, weights=np.where(nonpos, jump, 0.0), minlength=B)
    # running excess supply over the positive-price edges, summed per economy (never across
    # economies: no cancellation against the batch-mates' sums)
    run = e0[econ] + segment_cumsum(np.where(nonpos, 0.0, jump), econ, B)
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


# --- single-good exact path ------------------------------------------------------------
def table1_structure(A: MenuArrays):
    """Detect (per economy) one good, all-or-nothing buyers, one linear integer seller.

    Returns None if any economy does not fit, else ``(v, q, c, u, K, seller_index)``.
    """
    X, V, bm, Y, C, sm = A
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
    # linear in the unit count, to a tolerance relative to each economy's own numbers
    if np.any(np.abs(y - u[:, None] * ks) > 1e-12 * np.abs(y).max(-1, keepdims=True)):
        return None
    c = cst[:, 1] / u
    if np.any(c <= 0) or np.any(np.abs(cst - c[:, None] * u[:, None] * ks)
                                > 1e-12 * np.abs(cst).max(-1, keepdims=True)):
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


def table1_scan_numpy(v, q, c, u, K):
    """The same exact scan as :func:`jaxwalras.kernels.single_good.single_good_min_markup`,
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


def table1_markup(A: MenuArrays, struct, backend: str | None = None):
    """Exact least markup of every economy of the Table-1 class ``struct``
    (:func:`table1_structure`): the breakpoint scan, in numpy on the CPU backend (its sort
    beats XLA's there) and as the device kernel elsewhere.  Returns ``(alpha, p (B, 1),
    buyer_choice, seller_choice, certified)``."""
    import jax
    C = A.C
    v, q, c, u, K, f = struct
    B, N = v.shape
    backend = backend or jax.default_backend()
    if backend == "cpu":
        alpha, p, beta, k, yu, buys, feas = table1_scan_numpy(v, q, c, u, K)
    else:
        import jax.numpy as jnp
        from .kernels.single_good import single_good_min_markup
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
    near = np.abs(vt - vs[:, :-1]) <= 1e-12 * np.abs(vs[:, :-1])     # relative: scale-free
    relevant = (near & np.isfinite(vt) & (vt >= (c * (1 - 1e-12))[:, None])
                & (vt <= (beta * (1 + 1e-12))[:, None]))
    certified = feas & (~np.any(relevant, 1) | (alpha == 0))
    return alpha, p[:, None], cb, cs, certified
