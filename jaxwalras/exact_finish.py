"""Exact finishes of the convexified LP: from approximate prices to a certified vertex.

Given approximate prices ``P0`` (the float32 smoothed-dual solution of the device solver),
each economy's LP is restricted to its *candidate* options, those whose shortfall from
the agent's best at the current prices is below ``eps`` times the agent's own money scale;
agents left with one candidate
are constants, so the restricted LP only holds the few near-indifferent agents.  Its
vertex solution is certified against the FULL menus: the duality gap ``g(p) - primal``
(:func:`jaxwalras.menu_host.certificate`) must vanish up to round-off, so a certified
answer is an optimal vertex of the full LP whatever the candidates were.  Economies that
fail get the options near-best at a stability centre added (column generation): the
prices with the lowest dual value seen so far, the restricted LP's or the centre before
(dual stabilisation; Lübbecke and Desrosiers, 2005).

* :func:`host_exact_finish` -- the restricted LPs by HiGHS, many economies per
  block-diagonal call (:func:`jaxwalras.highs.solve_menu_lp_blocks`);
* :func:`device_exact_finish` -- the restricted LPs of a whole batch by the float64 dense
  dual simplex on the device (:mod:`jaxwalras.kernels.restricted_lp`), certified there;
  what it does not certify goes to the host finish.

The vertex property (at most ``L`` mixing agents, every positive weight on a best option)
is what Shapley--Folkman rounding needs (Milgrom and Watt, 2022; Starr, 1969).
"""
from __future__ import annotations

import numpy as np

from ._batching import as_slice, padded_size
from .economy import MenuArrays
from .highs import solve_menu_lp, solve_menu_lp_blocks
from .menu_host import (certificate, dual_value, max_over_options, own_scale, surpluses,
                        welfare_scale)

__all__ = ["host_exact_finish", "device_exact_finish", "DEVICE_FINISH_MAX_AGENTS",
           "DEVICE_FINISH_TABLEAU_BYTES"]

#: largest sub-economy the device finish solves densely (ambiguous agents of one kind)
DEVICE_FINISH_MAX_AGENTS = 64
#: device memory for the dense simplex tableaux of one call of the device finish
DEVICE_FINISH_TABLEAU_BYTES = 1 << 30


def _agent_windows(u: np.ndarray, w: np.ndarray, A: MenuArrays, rel_eps: float
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Candidate windows ``rel_eps * s`` (money, shape ``(..., A, 1)``) from each agent's
    own scale ``s``: largest ``|value|`` plus largest ``|payment|`` over its options (the
    scale of :func:`jaxwalras.menu_host.agent_scales`), read off the surpluses ``u``
    (money, ``V - (1+alpha) p.X``) and profits ``w`` (``p.Y - C``) without a second
    product with the prices."""
    _, V, bm, _, C, sm = A
    sb, ss = own_scale(V, bm, V - u), own_scale(C, sm, w + C)
    return rel_eps * sb[..., None], rel_eps * ss[..., None]


def host_exact_finish(P0: np.ndarray, A: MenuArrays, a: np.ndarray, r: np.ndarray, *,
                      rounds: int = 6, rel_eps: float = 1e-3, cert_tol: float = 1e-10,
                      block: int = 64):
    """Exact prices and vertex weights from approximate prices ``P0`` (host, float64).

    Parameters
    ----------
    P0 : ndarray, shape (B, L)
        Approximate prices (non-finite entries are treated as 0).
    A : MenuArrays
        Flat batch of ``B`` economies.
    a, r : ndarray
        Markups ``(B,)`` and reserves ``(B, L)``.
    rounds : int
        Column-generation rounds before the full LP is solved.
    rel_eps : float
        First candidate threshold, relative to each agent's own money scale (its largest
        ``|value|`` plus its largest payment at the current prices; doubled every round).
        A window relative to the agent, not to the economy, keeps the restricted LPs small
        in large economies, where the largest value of any agent (a large seller's cost)
        can be far above the buyers' values.
    cert_tol : float
        Certificate tolerance: ``gap <= cert_tol * S`` with ``S`` the sum over agents of
        their largest ``|value|`` (buyers over ``1 + markup``) or ``|cost|``: the
        welfare's own scale, so the accuracy asked for does not loosen with the market's
        size or with its largest agent.
    block : int
        Economies per block-diagonal HiGHS call.

    Returns
    -------
    ok, P, LAM, MU, iterations
        ``ok`` (B,) is False where the LP is infeasible or HiGHS failed.

    Notes
    -----
    Each round solves the restricted LPs of up to ``block`` economies as one block-diagonal
    LP with an elastic (costly) extra supply per good, so that one block never fails the
    whole: an economy whose candidates cannot clear the market uses it, and gets its
    buyers' empty options as candidates in the next round.  After ``rounds`` rounds the
    full LP of every economy still open is solved.
    """
    X, V, bm, Y, C, sm = A
    B, L = P0.shape
    P0 = np.where(np.isfinite(P0), np.maximum(P0, 0.0), 0.0).astype(np.float64)
    P = P0.copy()
    LAM = np.zeros(V.shape)
    MU = np.zeros(C.shape)
    ok = np.zeros(B, bool)
    it = np.zeros(B, np.int64)
    vscale = np.maximum(np.abs(V).max((-1, -2)), np.abs(C).max((-1, -2)))
    vscale = np.where(vscale > 0, vscale, 1.0)
    wscale = welfare_scale(A, a)
    # elastic supply cost: far above any price the economy can have
    qscale = np.maximum(max_over_options(X).max(1), max_over_options(Y).max(1))
    qmin = np.where(qscale > 0, qscale, 1.0)
    elastic = 10.0 * np.maximum(P0.max(-1, keepdims=True),
                                vscale[:, None] / (1.0 + a[:, None]) / qmin) + 1.0
    cand_b = np.zeros(bm.shape, bool)
    cand_s = np.zeros(sm.shape, bool)
    todo = np.arange(B)
    # stability centre of the column generation: the prices with the lowest dual value
    # g(p) (an upper bound on the optimum) seen so far, at first the device prices
    P_c, g_c = P0.copy(), np.full(B, np.inf)
    for rnd in range(rounds + 1):
        if todo.size == 0:
            break
        rows = as_slice(todo)    # a view where the rows are contiguous: no copies
        Ar = A.take(rows)
        u, w = surpluses(P[rows], Ar, a[rows])
        eb, es = _agent_windows(u, w, Ar, rel_eps * 2.0 ** rnd)
        cand_b[rows] |= Ar.bm & (u.max(-1, keepdims=True) - u <= eb)
        cand_s[rows] |= Ar.sm & (w.max(-1, keepdims=True) - w <= es)
        if rnd > 0:   # restricted options could not clear the market: buyers may drop out
            short = todo[~ok[todo]]
            cand_b[short, :, 0] = True
        final = rnd == rounds
        if final:  # give up restricting: full LP
            cand_b[todo], cand_s[todo] = bm[todo], sm[todo]

        def solve(t):
            t = as_slice(t)
            sub = MenuArrays(X[t], V[t], cand_b[t], Y[t], C[t], cand_s[t])
            okb, Pb, Lb, Mb, itb = solve_menu_lp_blocks(sub, a[t], r[t],
                                                        None if final else elastic[t])
            if okb.any() or not final:
                ok[t], P[t], LAM[t], MU[t] = okb, Pb, Lb, Mb
                it[t] += itb
            elif len(okb) == 1:
                b = np.arange(B)[t][0]
                ok[b], P[b], LAM[b], MU[b], nit = solve_menu_lp(sub.take(0), float(a[b]), r[b])
                it[b] += nit
            else:  # the joint LP failed (some block infeasible): split it in halves
                t = np.arange(B)[t]
                solve(t[:len(t) // 2])
                solve(t[len(t) // 2:])

        nblk = -(-todo.size // block)
        for t in np.array_split(todo, nblk):
            solve(t)
        cert = certificate(P[rows], LAM[rows], MU[rows], Ar, a[rows], r[rows])
        good = ok[todo] & (cert.gap <= cert_tol * wscale[todo])
        # the next candidates come from the better dual point (the lower g) of the centre
        # and the restricted LP's prices; a failed LP has no usable duals
        g_new = np.where(ok[todo], cert.dual, np.inf)
        if rnd == 0:
            left = todo[~good]
            g_c[left] = dual_value(P0[left], A.take(left), a[left], r[left])
        better = g_new < g_c[todo]
        P_c[todo[better]], g_c[todo[better]] = P[todo[better]], g_new[better]
        P[todo[~good]] = P_c[todo[~good]]
        todo = todo[~good]
    return ok, P, LAM, MU, it


def device_exact_finish(P0: np.ndarray, A: MenuArrays, a: np.ndarray, r: np.ndarray, *,
                        rounds: int = 2, rel_eps: float = 2e-3, cert_tol: float = 1e-10,
                        tableau_bytes: int = DEVICE_FINISH_TABLEAU_BYTES):
    """Exact finish on the device (float64 under a scoped ``jax.enable_x64``).

    Every economy's LP restricted to its near-tied options at ``P0`` is solved by the
    batched dense dual simplex of :mod:`jaxwalras.kernels.restricted_lp` and certified
    there against the full menus.  Economies not certified get another round (at most
    ``rounds`` in all) with the options near-best at the restricted optimum's prices added
    and ``eps`` doubled (the column generation of :func:`host_exact_finish`); later rounds
    only carry the economies still open, padded to a power of 4 (few compiled shapes).
    Economies go to the simplex in pieces whose dense tableaux take at most about
    ``tableau_bytes``.

    Returns
    -------
    ok, P, LAM, MU, dual, primal, infeas
        numpy arrays; economies with ``ok`` False (a restricted LP too large for the static
        sizes, infeasible, or not certified) need the host finish.
    """
    import jax
    import jax.numpy as jnp
    from .kernels.restricted_lp import candidate_counts, restricted_vertex
    X, V, bm, Y, C, sm = A
    B, N, Kb = V.shape
    F, Ks = C.shape[1:]
    L = X.shape[-1]
    ok = np.zeros(B, bool)
    P = np.zeros((B, L))
    LAM = np.zeros(V.shape)
    MU = np.zeros(C.shape)
    dual, primal, infeas = np.zeros(B), np.zeros(B), np.zeros(B)
    P0 = np.asarray(P0, np.float64)
    P1 = P0.copy()
    todo = np.arange(B)
    cap = DEVICE_FINISH_MAX_AGENTS
    with jax.enable_x64(True):       # scoped: the global flag is untouched
        for rnd in range(rounds):
            if todo.size == 0:
                break
            eps = rel_eps * 2.0 ** rnd
            # round 0: the whole batch, without a gather copy when its size is a bucket
            whole = rnd == 0 and B == padded_size(B, base=4, floor=16)
            size = B if whole else padded_size(todo.size, base=4, floor=16)  # few shapes
            idx = np.concatenate([todo, np.full(size - todo.size, todo[0])])
            sub = (lambda z: z) if whole else (lambda z: z[idx])
            args = tuple(jnp.asarray(sub(z)) for z in (X, V, bm, Y, C, sm, a))
            p0, p1, R = jnp.asarray(sub(P0)), jnp.asarray(sub(P1)), jnp.asarray(sub(r))
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


_CANON_CHUNKS = (32, 256)


def _lex_batch():
    import jax
    from .kernels.simplex import lex_min_prices
    global _LEX
    if "_LEX" not in globals():
        _LEX = jax.jit(jax.vmap(lex_min_prices))
    return _LEX


def canonical_rows(n_buyers: int, buyer_options: int, n_sellers: int, seller_options: int,
                   n_goods: int) -> int:
    """Most constraint rows :func:`canonical_prices` may pass to the LP for one economy."""
    extra = n_goods * n_goods
    return (n_buyers + extra) * buyer_options + (n_sellers + extra) * seller_options


def warm_canonical(n_goods: int, max_rows: int, max_batch: int) -> list[tuple[int, ...]]:
    """Compile the canonical-prices LP (:func:`canonical_prices`) for every row bucket up
    to ``max_rows`` (16, 64, 256, ...) and batch chunk up to ``max_batch`` (32, 256)."""
    import jax
    import jax.numpy as jnp
    fn = _lex_batch()
    sizes = [c for c in _CANON_CHUNKS if c == _CANON_CHUNKS[0] or max_batch > _CANON_CHUNKS[0]]
    top = padded_size(max(int(max_rows), 1), base=4, floor=16)
    done: list[tuple[int, ...]] = []
    for size in sizes:
        Mx = 16
        while Mx <= top:
            with jax.enable_x64(True):
                args = (np.zeros((size, Mx, n_goods)), np.ones((size, Mx)),
                        np.zeros((size, Mx), bool), np.ones((size, n_goods)))
                jax.block_until_ready(fn(*(jnp.asarray(z) for z in args)))
            done.append((size, Mx, n_goods))
            Mx *= 4
    return done


def _pinned_prices(E: np.ndarray, e: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which equality systems ``E p = e`` (B, M, L) have rank ``L``, and their solutions.

    Rows are normalised to unit length (zero rows stay zero) and each system is solved by
    its own QR factorisation (the batch only stacks them: a system's answer does not depend
    on the others).  A relative pivot below ``1e-8`` counts as rank-deficient, as does an
    inconsistent (residual above ``1e-9``) or negative solution.  Returns ``(pinned (B,),
    p (B, L))``; ``p`` is meaningful where ``pinned``.
    """
    B, _, L = E.shape
    norm = np.sqrt((E * E).sum(-1))
    nz = norm > 0
    inv = np.where(nz, 1.0 / np.where(nz, norm, 1.0), 0.0)
    E, e = E * inv[..., None], e * inv
    Q, R = np.linalg.qr(E)
    d = np.abs(np.diagonal(R, axis1=-2, axis2=-1))
    pinned = d.min(-1) >= 1e-8 * np.maximum(d.max(-1), 1e-300)
    p = np.zeros((B, L))
    if pinned.any():
        rhs = np.einsum("bml,bm->bl", Q[pinned], e[pinned])
        p[pinned] = np.linalg.solve(R[pinned], rhs[..., None])[..., 0]
    scale = 1.0 + np.abs(p).max(-1)
    resid = np.abs(np.einsum("bml,bl->bm", E, p) - e).max(-1)
    tiny = 1e-12 * scale[:, None]
    pinned &= (resid <= 1e-9 * scale) & (p >= -tiny).all(-1) & np.isfinite(p).all(-1)
    return pinned, np.where(np.abs(p) <= tiny, 0.0, p)


def _equalities(Z: np.ndarray, W: np.ndarray, m: np.ndarray, w: np.ndarray, zs: np.ndarray,
                ws: np.ndarray, E: np.ndarray, e: np.ndarray, fill: np.ndarray) -> None:
    """Append to ``E p = e`` (in place, from row ``fill[b]`` on) one row per positive
    option ``k`` of every agent other than its largest-weight option ``h``:
    ``(Z_h - Z_k) / zs . p = (W_h - W_k) / ws`` in normalised prices ``p`` (``zs`` (B, L):
    the quantity scales; ``ws`` (B,): the money scale, times ``1 + markup`` for buyers).
    At most ``L * L`` rows per economy are kept (a vertex has at most ``L`` mixing
    agents)."""
    L = Z.shape[-1]
    b_, a_, k_ = np.nonzero((w > 1e-9) & m)
    held = np.argmax(np.where(m, w, -1.0), -1)
    h_ = held[b_, a_]
    other = k_ != h_
    b_, a_, k_, h_ = b_[other], a_[other], k_[other], h_[other]
    slot = fill[b_] + np.arange(b_.size) - np.searchsorted(b_, b_, side="left")
    keep = slot < L * L
    b_, a_, k_, h_, slot = b_[keep], a_[keep], k_[keep], h_[keep], slot[keep]
    E[b_, slot] = (Z[b_, a_, h_] - Z[b_, a_, k_]) / zs[b_]
    e[b_, slot] = (W[b_, a_, h_] - W[b_, a_, k_]) / ws[b_]
    np.maximum.at(fill, b_, slot + 1)


def _lex_min_lp(P: np.ndarray, lam: np.ndarray, mu: np.ndarray, A: MenuArrays, a: np.ndarray,
                r: np.ndarray, vs: np.ndarray, qs: np.ndarray, slack: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """The lexicographically smallest optimal prices by LP (normalised units), for vertices
    whose equalities leave a face of optimal prices.  Returns ``(p (B, L), status (B,))``."""
    import jax
    import jax.numpy as jnp
    from ._batching import map_chunks
    X, V, bm, Y, C, sm = A
    B, N, Kb, L = X.shape
    q = qs[:, None, None, :]
    Xn, Yn, Vn, Cn = X / q, Y / q, V / (vs[:, None, None] * (1 + a)[:, None, None]), C / vs[:, None, None]
    # held options: every option with positive weight (the largest first), pseudo-agents
    # for the second, third ... positive options of the (<= L) mixing agents (at most
    # L * L per economy; as many slots as this batch uses: the others would only add
    # invalid rows, which never reach the LP)

    def rows(Z, W, m, w):
        A_, K = m.shape[1:]
        pos = (w > 1e-9) & m
        order = np.argsort(-w, -1, kind="stable")
        held = order[..., 0]
        b_, a_, k_ = np.nonzero(pos)
        first = k_ == held[b_, a_]
        b2, a2, k2 = b_[~first], a_[~first], k_[~first]
        # each economy's extra options numbered in (agent, option) order (b2 is sorted)
        slot = np.arange(b2.size) - np.searchsorted(b2, b2, side="left")
        keep = slot < L * L
        b2, a2, k2, slot = b2[keep], a2[keep], k2[keep], slot[keep]
        P_extra = int(slot.max(initial=-1)) + 1
        agent = np.concatenate([np.broadcast_to(np.arange(A_), (B, A_)),
                                np.zeros((B, P_extra), np.int64)], 1)
        hk = np.concatenate([held, np.zeros((B, P_extra), np.int64)], 1)
        valid = np.concatenate([np.ones((B, A_), bool), np.zeros((B, P_extra), bool)], 1)
        agent[b2, A_ + slot], hk[b2, A_ + slot], valid[b2, A_ + slot] = a2, k2, True
        bb = np.arange(B)[:, None]
        Zh = Z[bb, agent, hk]                               # (B, A', L) held bundle
        Wh = W[bb, agent, hk]
        Za = Z[bb, agent]                                   # (B, A', K, L)
        Wa = W[bb, agent]
        mm = m[bb, agent] & valid[..., None]
        return Zh[:, :, None, :] - Za, Wh[:, :, None] - Wa, mm
    # buyers: (X_k - X_j).p <= (V_k - V_j)/(1+a); sellers: (Y_j - Y_k).p <= C_j - C_k
    Gb, hb, mb = rows(Xn, Vn, bm, lam)
    Gs, hs, ms = rows(-Yn, -Cn, sm, mu)
    scale = lambda h, m: np.abs(np.where(m, h, 0)).max((-1, -2), keepdims=True)  # noqa: E731
    G = np.concatenate([Gb.reshape(B, -1, L), Gs.reshape(B, -1, L)], 1)
    h = np.concatenate([(hb + 1e-12 * scale(hb, mb)).reshape(B, -1),
                        (hs + 1e-12 * scale(hs, ms)).reshape(B, -1)], 1)
    okr = np.concatenate([mb.reshape(B, -1), ms.reshape(B, -1)], 1)
    pn0 = P * qs / vs[:, None]
    pmax = np.where(slack, 0.0, 1e3 * np.maximum(np.abs(pn0).max(-1, keepdims=True), 1.0))
    real = okr & (G != 0).any(-1)

    def near(p):   # constraints (nearly) binding or violated at p, relative per row
        Gp = np.einsum("bml,bl->bm", G, p)
        return real & (h - Gp <= 1e-3 * (np.abs(h) + np.abs(Gp)) + 1e-12)

    # only constraints (nearly) binding at the solver's prices can shape the optimal face,
    # so the LP starts with those; rows binding or violated at its answer are added and it
    # is solved again (a few rounds); rows are compacted to the front in a fixed order
    active = near(pn0)
    size = _CANON_CHUNKS[0] if B <= _CANON_CHUNKS[0] else _CANON_CHUNKS[1]
    fn = _lex_batch()
    pn = pn0.copy()
    st = np.full(B, 2)
    todo = np.arange(B)
    for _ in range(4):
        if todo.size == 0:
            break
        act = active[todo]
        # rows in a bucket (16, 64, 256, ...: few compiled shapes; warm_canonical); the
        # active rows first, in row order; the padding rows are masked out (the kernel
        # zeroes them), so which row pads does not matter: row 0
        Mx = padded_size(int(act.sum(1).max(initial=1)), base=4, floor=16)
        ti, mi = np.nonzero(act)
        slot = np.arange(ti.size) - np.searchsorted(ti, ti, side="left")
        sel = np.zeros((todo.size, Mx), np.int64)
        okp = np.zeros((todo.size, Mx), bool)
        sel[ti, slot], okp[ti, slot] = mi, True
        args = (G[todo[:, None], sel], h[todo[:, None], sel], okp, pmax[todo])
        with jax.enable_x64(True):          # scoped: the global flag is untouched
            parts = [o for _, _, o in map_chunks(
                lambda ix: fn(*(jnp.asarray(z[ix]) for z in args)), todo.size, size, floor=size)]
        pn[todo] = np.concatenate([o[0] for o in parts])
        st[todo] = np.concatenate([o[1] for o in parts])
        more = near(pn)[todo] & ~active[todo]
        active[todo] |= more
        todo = todo[more.any(1) & (st[todo] == 0)]
    return pn, st


def canonical_prices(P: np.ndarray, LAM: np.ndarray, MU: np.ndarray, A: MenuArrays,
                     a: np.ndarray, r: np.ndarray, ok: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray]:
    """The lexicographically smallest optimal prices of certified convexified solutions.

    An optimal vertex ``(lam, mu)`` fixes the set of optimal prices (complementary
    slackness): every option with positive weight is a best option of its agent at ``p``
    (buyers at ``(1+a) p``), and a good with excess supply has price 0.  These equalities
    usually have rank ``L`` (a non-degenerate vertex), and then the set is their single
    solution, found by a small QR solve per economy.  Degenerate LPs have a whole face of
    optimal prices, and which point a solver returns depends on its pivots (for the
    block-diagonal HiGHS finish, on the other economies of the block).  For those this
    picks the lexicographically smallest point of the face
    (:func:`jaxwalras.kernels.simplex.lex_min_prices`, on data scaled by the economy's own
    powers of two), so the prices depend on the economy alone.  Economies not ``ok``, or
    where the canonical prices fail the duality-gap check, keep ``P``.

    Returns
    -------
    prices : ndarray, shape (B, L)
    dual : ndarray, shape (B,)
        ``g(prices)`` (:func:`jaxwalras.menu_host.dual_value`) where ``ok``, NaN elsewhere.
    """
    from .highs import lp_and_quantity_scales
    from .menu_host import weighted_bundles
    out = np.array(P, np.float64, copy=True)
    g_out = np.full(len(out), np.nan)
    idx = np.nonzero(ok)[0]
    if idx.size == 0:
        return out, g_out
    Ai = A if idx.size == len(out) else A.take(idx)
    X, V, bm, Y, C, sm = Ai
    B, N, Kb, L = X.shape
    F = C.shape[1]
    ai, ri, lam, mu = a[idx], r[idx], LAM[idx], MU[idx]
    vs, qs, qscale = lp_and_quantity_scales(Ai, ri)
    # goods with excess supply are free (price 0); the sums run over positive weights only
    d = weighted_bundles(lam, X) + ri
    s_ = weighted_bundles(mu, Y)
    slack = (s_ - d) > 1e-9 * (qscale + np.abs(ri))
    # the equalities every optimal price satisfies (rows: agents' ties, then free goods)
    E = np.zeros((B, L * L + L, L))
    e = np.zeros((B, L * L + L))
    fill = np.zeros(B, np.int64)
    _equalities(X, V, bm, lam, qs, vs * (1 + ai), E, e, fill)
    _equalities(-Y, -C, sm, mu, qs, vs, E, e, fill)
    bs, ls = np.nonzero(slack)
    E[bs, L * L + ls, ls] = 1.0
    pinned, pn = _pinned_prices(E, e)
    st = np.where(pinned, 0, 2)
    rest = np.flatnonzero(~pinned)
    if rest.size:
        pn[rest], st[rest] = _lex_min_lp(P[idx[rest]], lam[rest], mu[rest], Ai.take(rest),
                                         ai[rest], ri[rest], vs[rest], qs[rest], slack[rest])
    pc = pn * vs[:, None] / qs
    # keep the canonical prices only where they are optimal (the same duality gap check)
    primal = (lam * V).sum((-1, -2)) / (1 + ai) - (mu * C).sum((-1, -2))
    g_new = dual_value(pc, Ai, ai, ri)
    vsc = np.maximum(np.abs(V).max((-1, -2)), np.abs(C).max((-1, -2)))
    tol = 1e-12 * vsc * max(N + F, 1)
    valid = (st == 0) & np.isfinite(pc).all(-1) & (pc >= 0).all(-1)
    # the old prices' gap is only needed where the new one is not within round-off of 0
    g_old = g_new.copy()
    unsure = np.flatnonzero(~(valid & (g_new - primal <= tol)))
    if unsure.size:
        g_old[unsure] = dual_value(P[idx[unsure]], Ai.take(unsure), ai[unsure], ri[unsure])
    good = valid & (g_new - primal <= np.maximum(g_old - primal, 0.0) + tol)
    out[idx[good]] = pc[good]
    g_out[idx] = np.where(good, g_new, g_old)
    return out, g_out
