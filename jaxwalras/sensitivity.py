"""Exact equilibrium prices of convexified economies as JAX-transformable functions.

The convexified economy (Milgrom and Watt, 2022) is the linear programme

    max  sum lam[n,k] V[n,k] / (1+alpha) - sum mu[f,k] C[f,k]
    s.t. sum_k lam[n,k] = 1,  sum_k mu[f,k] = 1,  sum X lam + R + s = sum Y mu,  lam, mu, s >= 0

with ``N + F + L`` rows; the seller prices ``p`` are the duals of the ``L`` goods rows.
At an optimal basis ``B`` the duals solve ``y^T B = c_B^T``: every basic column has zero
reduced cost.  Written out, with ``u_n`` and ``w_f`` the duals of the agents' rows,

* basic ``lam[n,k]``:  ``u_n + p.X[n,k] = V[n,k] / (1+alpha)``;
* basic ``mu[f,k]``:   ``w_f - p.Y[f,k] = -C[f,k]``;
* basic slack ``s_l``: ``p_l = 0``.

Every agent has at least one basic column (its row of ``B`` would be empty otherwise).
Subtracting, for each agent, the equation of one reference basic column ``k0`` eliminates
``u_n`` and ``w_f`` and leaves exactly ``L`` equations in ``p`` alone,

    (X[n,k] - X[n,k0]).p = (V[n,k] - V[n,k0]) / (1+alpha),   (Y[f,k] - Y[f,k0]).p = C[f,k] - C[f,k0],
    p_l = 0,

an ``L x L`` system ``M p = d`` that is non-singular exactly when ``B`` is.  Near a
non-degenerate vertex the optimal basis is locally constant, so the price IS
``p(theta) = M(theta)^{-1} d(theta)`` there: a rational function of the bundles, values,
costs and markup, and independent of the reserve ``R`` (which moves only the primal
``x_B = B^{-1} b``).  Its derivatives are those of the basis, the classical sensitivity
analysis of a linear programme at an optimal basis (Bertsimas and Tsitsiklis, 1997, Ch. 5).

:func:`equilibrium_prices` solves the LP exactly on the host (a ``jax.pure_callback``:
the one-good envelope method, or HiGHS) and reads the basis off the certified vertex;
the prices are returned as ``stop_gradient(p) + (f(theta) - stop_gradient(f(theta)))``
with ``f(theta) = M(theta)^{-1} d(theta)`` assembled from the (possibly traced) inputs.
The value is the certified vertex price, every derivative (of any order, forward or
reverse) is that of the basis, and ``jit`` / ``vmap`` / ``grad`` / ``jacfwd`` / ``jacrev``
compose with it.
"""
from __future__ import annotations

import functools
import warnings
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .typing import ArrayLike
from ._callback import from_wire, from_wire_host, to_wire, to_wire_host
from ._validation import check_choice
from .convexified import convexified_equilibrium
from .economy import MenuArrays, MenuEconomy
from .exact_finish import host_exact_finish
from .highs import menu_lp_feasible
from .kernels.smoothed_dual import solve_batch
from .menu_host import certificate, surpluses, value_scale
from .status import Status

__all__ = ["PriceInfo", "DegeneratePointWarning", "equilibrium_prices"]

_FIELDS = ("buyer_bundles", "buyer_values", "buyer_mask", "seller_bundles", "seller_costs",
           "seller_mask")

#: ``method="auto"`` uses the smoothed device solver (compiled once per shape) from this
#: many economies on, one HiGHS LP per economy below
_SMOOTHED_MIN_BATCH = 64

#: row kinds of the basis system ``M p = d``
_BUYER, _SELLER, _SLACK, _FIXED = 0, 1, 2, 3


class PriceInfo(NamedTuple):
    """What :func:`equilibrium_prices` knows about the point it differentiated
    (``info=True``; leading axes = the broadcast batch).

    Attributes
    ----------
    degenerate : jax.Array of bool, shape (...)
        ``ties | primal_degenerate | singular``: the derivatives returned are those of
        one optimal basis (a one-sided choice, see the Notes of
        :func:`equilibrium_prices`), not the derivative of the price, which need not
        exist there.
    ties : jax.Array of bool, shape (...)
        Some option (or a goods slack) that carries no weight has zero reduced cost: the
        LP has several optimal bases (dual degeneracy), e.g. two agents indifferent at
        the same price or a seller with a linear cost indifferent among all outputs.
    primal_degenerate : jax.Array of bool, shape (...)
        The support of the vertex has fewer than ``L`` price-determining equations (a
        basic variable is zero); the optimal prices may then form a face, and moving
        the reserve can make them jump.
    singular : jax.Array of bool, shape (...)
        Even with all zero-reduced-cost options the equations do not determine every
        price; the undetermined directions are held fixed (derivative 0).
    converged : jax.Array of bool, shape (...)
        The vertex was certified optimal (zero duality gap against the full-menu dual,
        feasible weights), in float64 on the host.  ``converged == (status == 0)``.
    status : jax.Array of int32, shape (...)
        :class:`jaxwalras.Status`: ``OK``, ``INFEASIBLE`` (the reserve exceeds what the
        sellers can produce), ``SOLVER_FAILED`` (also for traced inputs that are not a
        valid economy: negative bundles, non-finite numbers, ``markup <= -1``) or
        ``NOT_CERTIFIED``.  Prices are NaN where it is not ``OK``.
    iterations : jax.Array of int32, shape (...)
        Simplex iterations of the exact solve (0 for the one-good envelope method).
    """

    degenerate: Any
    ties: Any
    primal_degenerate: Any
    singular: Any
    converged: Any
    status: Any
    iterations: Any


class DegeneratePointWarning(UserWarning):
    """:func:`equilibrium_prices` differentiated at a degenerate point without
    ``info=True``: the derivatives there are those of one optimal basis."""


# ----------------------------------------------------------------------------------------
# host side: exact solve and the optimal basis
# ----------------------------------------------------------------------------------------
def _valid(A: MenuArrays, a: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Economies whose (possibly traced, hence unvalidated) data form a valid economy."""
    X, V, bm, Y, C, sm = A
    fin = lambda z, m: np.where(m, np.isfinite(z), True).all(-1).all(-1)  # noqa: E731
    ok = (fin(V, bm) & fin(C, sm) & np.isfinite(X).all((1, 2, 3)) & np.isfinite(Y).all((1, 2, 3))
          & np.isfinite(a) & (a > -1.0) & np.isfinite(r).all(-1))
    ok &= ((X >= 0) | ~bm[..., None]).all((1, 2, 3)) & ((Y >= 0) | ~sm[..., None]).all((1, 2, 3))
    ok &= (X[:, :, 0] == 0).all((1, 2)) & (V[:, :, 0] == 0).all(1) & bm[:, :, 0].all(1)
    ok &= (Y[:, :, 0] == 0).all((1, 2)) & (C[:, :, 0] == 0).all(1) & sm[:, :, 0].all(1)
    return ok


def _host_solve(A: MenuArrays, a: np.ndarray, r: np.ndarray, method: str, P0: np.ndarray | None,
                rtol: float):
    """Exact vertex of every economy: ``(P, LAM, MU, status, iterations)`` (float64)."""
    B = A.n_markets
    L = A.X.shape[-1]
    P = np.full((B, L), np.nan)
    LAM, MU = np.zeros(A.V.shape), np.zeros(A.C.shape)
    status = np.full(B, int(Status.SOLVER_FAILED), np.int32)
    its = np.zeros(B, np.int32)
    good = np.flatnonzero(_valid(A, a, r))
    if good.size == 0:
        return P, LAM, MU, status, its
    sub = A.take(good)
    ag, rg = a[good], r[good]
    if method in ("envelope", "lp"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ce = convexified_equilibrium(MenuEconomy.from_arrays(sub), markup=ag, reserve=rg,
                                         method=method, rtol=rtol, progress=False)
        P[good], LAM[good], MU[good] = ce.prices, ce.buyer_weights, ce.seller_weights
        status[good], its[good] = ce.status, ce.iterations
        return P, LAM, MU, status, its
    assert P0 is not None, "the device methods pass their prices to the exact finish"
    ok, Pg, Lg, Mg, it = host_exact_finish(P0[good], sub, ag, rg)
    cert = certificate(Pg, Lg, Mg, sub, ag, rg)
    qs = np.maximum(sub.X.max((1, 2)), sub.Y.max((1, 2))).max(-1)
    certified = ok & (cert.rel_gap <= rtol) & (cert.infeasibility <= rtol * np.maximum(qs, 1e-300)
                                               * (sub.V.shape[1] + sub.C.shape[1]))
    st = np.where(certified, Status.OK, np.where(ok, Status.NOT_CERTIFIED, Status.SOLVER_FAILED))
    for j in np.flatnonzero(~ok):
        if not menu_lp_feasible(sub.take(j), rg[j]):
            st[j] = Status.INFEASIBLE
    P[good] = np.where(ok[:, None], Pg, np.nan)
    LAM[good], MU[good], status[good], its[good] = Lg, Mg, st, it
    return P, LAM, MU, status, its


def _basis(A: MenuArrays, a: np.ndarray, r: np.ndarray, P: np.ndarray, LAM: np.ndarray,
           MU: np.ndarray, ok: np.ndarray, rtol: float):
    """The ``L`` equations ``M p = d`` of one optimal basis per economy, read off the vertex.

    Returns ``(kind, agent, option, ref)`` (each ``(B, L)`` int32) and the flags ``ties``,
    ``primal_degenerate`` and ``singular`` (``(B,)`` bool).  Rows come first from the
    support of the vertex (options with positive weight other than the agent's reference
    option, goods with positive slack), then from zero-weight options and zero-price goods
    with zero reduced cost (in agent / option order), then ``p_l`` held fixed, each row
    kept only if it is linearly independent of the rows before it.
    """
    X, V, bm, Y, C, sm = A
    B, N, Kb, L = X.shape
    F, Ks = C.shape[1:]
    kind = np.full((B, L), _FIXED, np.int32)
    agent = np.tile(np.arange(L, dtype=np.int32), (B, 1))
    opt = np.zeros((B, L), np.int32)
    ref = np.zeros((B, L), np.int32)
    ties = np.zeros(B, bool)
    pdeg = np.zeros(B, bool)
    sing = np.zeros(B, bool)
    if not ok.any():
        return kind, agent, opt, ref, ties, pdeg, sing
    Pz = np.where(ok[:, None], P, 0.0)
    u, w = surpluses(Pz, A, a)
    vs = value_scale(A, a)
    gb = np.where(bm, u.max(-1, keepdims=True) - u, np.inf)
    gs = np.where(sm, w.max(-1, keepdims=True) - w, np.inf)
    tb = gb <= (rtol * vs * (1.0 + a))[:, None, None]
    ts = gs <= (rtol * vs)[:, None, None]
    pb, ps = bm & (LAM > rtol), sm & (MU > rtol)
    kb0, ks0 = LAM.argmax(-1), MU.argmax(-1)
    qs = np.maximum(X.max((1, 2)), Y.max((1, 2)))
    qs = np.where(qs > 0, qs, 1.0)
    slack = np.einsum("bfk,bfkl->bl", MU, Y) - np.einsum("bnk,bnkl->bl", LAM, X) - r
    scale_q = Y.max(2).sum(1) + X.max(2).sum(1) + np.abs(r)
    pslack = slack > rtol * np.maximum(scale_q, 1e-300)
    tslack = Pz <= rtol * (vs[:, None] / qs)
    # support must lie in the tight set (complementary slackness); else nothing is reliable
    bad = ((pb & ~tb).any((1, 2)) | (ps & ~ts).any((1, 2)) | (pslack & ~tslack).any(1))
    # candidate rows (economy, priority, type, agent, option, reference, row vector)
    cb = np.nonzero(tb & (np.arange(Kb) != kb0[..., None]) & ok[:, None, None])
    cs = np.nonzero(ts & (np.arange(Ks) != ks0[..., None]) & ok[:, None, None])
    cl = np.nonzero(tslack & ok[:, None])
    rb0 = kb0[cb[0], cb[1]]
    rs0 = ks0[cs[0], cs[1]]
    econ = np.concatenate([cb[0], cs[0], cl[0]])
    prio: np.ndarray = np.concatenate([~pb[cb], ~ps[cs], ~pslack[cl]]).astype(np.int8)
    typ: np.ndarray = np.concatenate([np.full(cb[0].size, _BUYER), np.full(cs[0].size, _SELLER),
                          np.full(cl[0].size, _SLACK)]).astype(np.int32)
    ag: np.ndarray = np.concatenate([cb[1], cs[1], cl[1]]).astype(np.int32)
    op: np.ndarray = np.concatenate([cb[2], cs[2], np.zeros(cl[0].size, np.int64)]).astype(np.int32)
    rf: np.ndarray = np.concatenate([rb0, rs0, np.zeros(cl[0].size, np.int64)]).astype(np.int32)
    rows = np.concatenate([X[cb[0], cb[1], cb[2]] - X[cb[0], cb[1], rb0],
                           Y[cs[0], cs[1], cs[2]] - Y[cs[0], cs[1], rs0],
                           np.eye(L)[cl[1]] * qs[cl[0], cl[1]][:, None]]) / qs[econ]
    order = np.lexsort((op, ag, typ, prio, econ))
    econ, prio, typ, ag, op, rf, rows = (z[order] for z in (econ, prio, typ, ag, op, rf, rows))
    starts = np.searchsorted(econ, np.arange(B + 1))
    for b in np.flatnonzero(ok):
        Q = np.zeros((L, L))
        m = 0
        n_pos = n_pos_taken = 0
        for i in range(starts[b], starts[b + 1]):
            if m == L:
                break
            v = rows[i]
            nv = np.linalg.norm(v)
            if prio[i] == 0:
                n_pos += 1
            if nv == 0:
                continue
            res = v / nv - Q[:m].T @ (Q[:m] @ (v / nv))
            nr = np.linalg.norm(res)
            if nr > 1e-9:
                Q[m] = res / nr
                kind[b, m], agent[b, m], opt[b, m], ref[b, m] = typ[i], ag[i], op[i], rf[i]
                n_pos_taken += prio[i] == 0
                m += 1
        ties[b] = bool((prio[starts[b]:starts[b + 1]] == 1).any())
        pdeg[b] = n_pos_taken < L
        for l in range(L):      # directions the tight equations do not determine: fixed
            if m == L:
                break
            e = np.eye(L)[l]
            res = e - Q[:m].T @ (Q[:m] @ e)
            nr = np.linalg.norm(res)
            if nr > 1e-9:
                Q[m] = res / nr
                kind[b, m], agent[b, m], opt[b, m], ref[b, m] = _FIXED, l, 0, 0
                sing[b] = True
                m += 1
        sing[b] |= bool(bad[b]) or n_pos > n_pos_taken
    return kind, agent, opt, ref, ties, pdeg, sing


# ----------------------------------------------------------------------------------------
# device side: the price of a basis, differentiable in every input
# ----------------------------------------------------------------------------------------
def _basis_price(X, V, Y, C, a, ph, kind, agent, opt, ref):
    """``stop_gradient(ph) + f - stop_gradient(f)`` with ``f = M^{-1} d`` of ONE economy,
    ``M`` and ``d`` gathered from the inputs (rows scaled, columns by the quantity scale;
    ``f`` is computed as a correction of ``ph`` so that its value is exact to round-off)."""
    sg = jax.lax.stop_gradient
    N, Kb, L = X.shape
    F, Ks = C.shape
    ib, is_, il = (jnp.clip(agent, 0, n - 1) for n in (N, F, L))
    ob, rb = jnp.clip(opt, 0, Kb - 1), jnp.clip(ref, 0, Kb - 1)
    os_, rs_ = jnp.clip(opt, 0, Ks - 1), jnp.clip(ref, 0, Ks - 1)
    row_b = X[ib, ob] - X[ib, rb]
    rhs_b = (V[ib, ob] - V[ib, rb]) / (1.0 + a)
    row_s = Y[is_, os_] - Y[is_, rs_]
    rhs_s = C[is_, os_] - C[is_, rs_]
    e = jax.nn.one_hot(il, L, dtype=X.dtype)
    isb, iss = (kind == _BUYER)[:, None], (kind == _SELLER)[:, None]
    M = jnp.where(isb, row_b, jnp.where(iss, row_s, e))
    d = jnp.where(kind == _BUYER, rhs_b, jnp.where(kind == _SELLER, rhs_s,
                                                   jnp.where(kind == _FIXED, ph[il], 0.0)))
    qs = sg(jnp.maximum(jnp.max(X, axis=(0, 1)), jnp.max(Y, axis=(0, 1))))
    qs = jnp.where(qs > 0, qs, 1.0)
    Ms = M / qs
    rn = sg(jnp.max(jnp.abs(Ms), axis=1))
    rn = jnp.where(rn > 0, rn, 1.0)[:, None]
    phs = sg(ph)
    corr = jnp.linalg.solve(Ms / rn, ((d - M @ phs) / rn[:, 0])[:, None])[:, 0]
    f = phs + corr / qs
    return phs + (f - sg(f))


@functools.partial(jax.jit, static_argnames=("batch",))
def _assemble(X, V, Y, C, a, ph, kind, agent, opt, ref, *, batch):
    """The prices of the bases of a whole batch (inputs broadcast to ``batch``)."""
    dt = ph.dtype
    B = int(np.prod(batch, dtype=np.int64))
    L = ph.shape[-1]
    fl = lambda z, t: jnp.broadcast_to(jnp.asarray(z, dt), batch + t).reshape((B,) + t)  # noqa: E731
    fi = lambda z: jnp.asarray(z).reshape((B, L))  # noqa: E731
    X, Y = fl(X, X.shape[-3:]), fl(Y, Y.shape[-3:])
    V, C = fl(V, V.shape[-2:]), fl(C, C.shape[-2:])
    p = jax.vmap(_basis_price)(X, V, Y, C, fl(a, ()), fi(ph), fi(kind), fi(agent), fi(opt),
                               fi(ref))
    return p.reshape(batch + (L,))


@functools.partial(jax.jit, static_argnames=("batch",))
def _smoothed_p0(X, V, bm, Y, C, sm, a, r, *, batch):
    """Prices of the smoothed device solver (only a start for the exact finish)."""
    sg = jax.lax.stop_gradient
    dt = jnp.result_type(float)
    B = int(np.prod(batch, dtype=np.int64))
    L = X.shape[-1]
    fl = lambda z, t, d=dt: jnp.broadcast_to(sg(jnp.asarray(z, d)), batch + t).reshape((B,) + t)  # noqa: E731
    p = solve_batch(fl(X, X.shape[-3:]), fl(V, V.shape[-2:]), fl(bm, bm.shape[-2:], jnp.bool_),
                    fl(Y, Y.shape[-3:]), fl(C, C.shape[-2:]), fl(sm, sm.shape[-2:], jnp.bool_),
                    fl(a, ()), fl(r, (L,))).prices
    return p.reshape(batch + (L,))


@jax.jit
def _flags(ties: Any, pdeg: Any, sing: Any, st: Any) -> tuple[Any, Any, Any, Any, Any, Any]:
    ok = st == int(Status.OK)
    return (ok & (ties | pdeg | sing), ties & ok, pdeg & ok, sing & ok, ok, st)


# ----------------------------------------------------------------------------------------
# public entry point
# ----------------------------------------------------------------------------------------
def _check_fields(economy: MenuEconomy) -> dict:
    """The six leaves, with clear errors for wrong dtypes or shapes (e.g. via ``replace``)."""
    f = {k: getattr(economy, k) for k in _FIELDS}
    for k in ("buyer_mask", "seller_mask"):
        dt = jnp.result_type(f[k])
        if dt != jnp.bool_:
            raise TypeError(f"{k}: must be a boolean array (True marks real options), got dtype "
                            f"{dt}; the masks select options, so derivatives with respect to "
                            "them are not defined")
    for k in ("buyer_bundles", "buyer_values", "seller_bundles", "seller_costs"):
        dt = jnp.result_type(f[k])
        if not (jnp.issubdtype(dt, jnp.floating) or jnp.issubdtype(dt, jnp.integer)):
            raise TypeError(f"{k}: must be a real (float) array, got dtype {dt}")
    X, V, bm, Y, C, sm = (f[k] for k in _FIELDS)
    sh = {k: tuple(np.shape(v)) for k, v in f.items()}
    if len(sh["buyer_bundles"]) < 3 or len(sh["seller_bundles"]) < 3:
        raise ValueError(f"buyer_bundles / seller_bundles: need trailing axes (N, K, L), got "
                         f"shapes {sh['buyer_bundles']} and {sh['seller_bundles']}")
    N, Kb, L = sh["buyer_bundles"][-3:]
    F, Ks, L2 = sh["seller_bundles"][-3:]
    want = {"buyer_values": (N, Kb), "buyer_mask": (N, Kb), "seller_costs": (F, Ks),
            "seller_mask": (F, Ks)}
    if L2 != L:
        raise ValueError(f"seller_bundles: has L = {L2} goods but buyer_bundles has L = {L} "
                         "(were the shapes changed through replace?)")
    for k, t in want.items():
        if len(sh[k]) < 2 or sh[k][-2:] != t:
            raise ValueError(f"{k}: trailing shape {sh[k][-2:]} does not match the bundles' "
                             f"{t} (full shape {sh[k]}); were the shapes changed through replace?")
    return f


def _batch_shape(fields: dict, a_shape: tuple, r_shape: tuple) -> tuple[int, ...]:
    tails = {"buyer_bundles": 3, "buyer_values": 2, "buyer_mask": 2, "seller_bundles": 3,
             "seller_costs": 2, "seller_mask": 2}
    shapes = {k: tuple(np.shape(fields[k]))[:len(np.shape(fields[k])) - t] for k, t in tails.items()}
    shapes["markup"] = a_shape
    shapes["reserve"] = r_shape[:-1]
    try:
        return tuple(np.broadcast_shapes(*shapes.values()))
    except ValueError:
        desc = ", ".join(f"{k} {v}" for k, v in shapes.items())
        raise ValueError(f"leading batch axes do not match/broadcast: {desc}") from None


def _is_traced(x: Any) -> bool:
    return isinstance(x, jax.core.Tracer)


def equilibrium_prices(economy: MenuEconomy, markup: ArrayLike = 0.0, reserve: ArrayLike = 0.0, *,
                       info: bool = False, method: str = "auto", rtol: float = 1e-9):
    """Exact convexified equilibrium prices, differentiable by LP sensitivity at the basis.

    Returns the seller prices ``p`` of the certified vertex of the convexified LP (the
    prices :func:`jaxwalras.convexified_equilibrium` certifies) as a JAX function of the
    economy, the markup and the reserve: usable under ``jax.jit``, ``jax.vmap``,
    ``jax.grad``, ``jax.jacfwd`` and ``jax.jacrev``, with the derivatives of the optimal
    basis (module docstring).

    Parameters
    ----------
    economy : MenuEconomy
        Any batch shape; its leaves may be traced JAX arrays (build it with
        :meth:`MenuEconomy.replace`, e.g. ``eco.replace(buyer_values=v)``).  Leaves that
        are not traced are used in float64 on the host whatever JAX's dtype setting.
    markup : array_like or jax.Array, optional
        Broadcastable to the batch; buyers face ``(1 + markup) p``.  May be traced.
    reserve : array_like or jax.Array, optional
        Broadcastable to ``batch + (L,)`` (auctioneer demand per good).  May be traced;
        the derivative with respect to it is 0 wherever the price is differentiable.
    info : bool
        Also return a :class:`PriceInfo` with the degeneracy flags and the certificate.
    method : {"auto", "envelope", "smoothed", "lp"}
        The exact solve: ``"envelope"`` (one good: upper envelopes, no LP),
        ``"smoothed"`` (the smoothed device solver, in the traced computation, then the
        host HiGHS finish of :func:`jaxwalras.exact_finish.host_exact_finish`), ``"lp"``
        (one HiGHS LP per economy), ``"auto"`` (``"envelope"`` for ``L == 1``, else
        ``"smoothed"`` for batches of at least 64 economies and ``"lp"`` below, where
        compiling the device solver would cost more than it saves).
    rtol : float
        Relative tolerance of the certificate and of "zero" (reduced costs relative to the
        value scale, weights, slacks relative to the quantity scale).

    Returns
    -------
    prices : jax.Array, shape (..., L)
        In JAX's default float dtype; NaN where the LP could not be solved (see
        ``PriceInfo.status``).
    info : PriceInfo
        Only with ``info=True``.

    Raises
    ------
    TypeError
        ``economy`` is not a MenuEconomy; a mask is not boolean (derivatives with respect
        to the masks are not defined); a non-numeric field.
    ValueError
        Shapes that do not fit together (e.g. changed through ``replace``); ``L > 1`` with
        ``method="envelope"``; a concrete ``markup <= -1``; a bad ``rtol`` or ``method``.

    Warns
    -----
    DegeneratePointWarning
        With ``info=False``, when some economy is at a degenerate point.

    Notes
    -----
    At a vertex where the optimal basis is unique and strictly complementary (every
    option with zero reduced cost has positive weight, ``L`` price equations in the
    support) the LP price is locally ``M(theta)^{-1} d(theta)`` and the derivatives
    returned are exact.  At a degenerate point (ties: several optimal bases; primal
    degeneracy: a zero basic variable) the price need not be differentiable.  The
    derivative returned there is that of ONE optimal basis: the support of the returned
    vertex, completed by zero-reduced-cost options in agent / option order.  It equals
    the one-sided derivative along every direction in which that basis stays optimal
    (for example a common shift of a linear seller's costs), and may differ from it in
    others.  ``info=True`` reports this in ``PriceInfo.degenerate``; without it a
    :class:`DegeneratePointWarning` is issued.  With respect to the reserve the basis
    derivative is 0.  The smoothed device solver (``method="smoothed"``) only seeds the
    exact finish; the returned vertex is certified on the host in float64.

    References
    ----------
    D. Bertsimas and J. N. Tsitsiklis, *Introduction to Linear Optimization*, Athena
    Scientific, 1997, Ch. 5 (sensitivity analysis at an optimal basis).
    P. Milgrom and M. Watt, "Linear pricing mechanisms for markets without convexity",
    EC 2022 (the convexified economy).

    Examples
    --------
    One good; three buyers want 0.8, 0.9 and 0.5 units at 3.0, 2.8 and 1.2 per unit; one
    seller makes 1, 2 or 3 units at costs 1.0, 2.5, 5.0.  It mixes 1 and 2 units, so the
    price is its marginal cost of the second unit, ``C[2] - C[1]``:

    >>> import jax, jax.numpy as jnp, numpy as np, jaxwalras as jw
    >>> eco = jw.MenuEconomy.single_good([[0.8], [0.9], [0.5]], [[2.4], [2.52], [0.6]],
    ...                                   [[1.0, 2.0, 3.0]], [[1.0, 2.5, 5.0]])
    >>> p, info = jw.equilibrium_prices(eco, info=True)
    >>> float(p[0]), bool(info.degenerate)
    (1.5, False)
    >>> f = lambda c: jw.equilibrium_prices(eco.replace(seller_costs=c))[0]
    >>> jax.grad(f)(jnp.asarray(eco.seller_costs)).tolist()
    [[0.0, -1.0, 1.0, 0.0]]
    """
    if not isinstance(economy, MenuEconomy):
        raise TypeError(f"economy: expected a jaxwalras.MenuEconomy, got {type(economy).__name__}")
    check_choice(method, "method", ("auto", "envelope", "smoothed", "lp"))
    if isinstance(rtol, bool) or not isinstance(rtol, (int, float, np.floating)) \
            or not (np.isfinite(rtol) and 0 < rtol < 1):
        raise ValueError(f"rtol: must be a number in (0, 1), got {rtol!r}")
    rtol = float(rtol)
    if not isinstance(info, bool):
        raise TypeError(f"info: must be True or False, got {info!r}")
    fields = _check_fields(economy)
    N, Kb, L = np.shape(fields["buyer_bundles"])[-3:]
    F, Ks = np.shape(fields["seller_costs"])[-2:]
    if method == "envelope" and L != 1:
        raise ValueError(f"method: 'envelope' is the exact single-good method and needs L == 1 "
                         f"goods, got L = {L}")
    dt = jnp.result_type(float)
    a: Any = markup
    r: Any = reserve
    if not _is_traced(a):
        a = np.asarray(a, np.float64)
        if a.dtype == object or not np.all(np.isfinite(a)) or (a.size and a.min() <= -1):
            raise ValueError(f"markup: must be finite and > -1 (buyers pay (1+markup) p), got "
                             f"{markup!r}")
    if not _is_traced(r):
        r = np.asarray(r, np.float64)
        if not np.all(np.isfinite(r)):
            raise ValueError(f"reserve: must be finite, got {reserve!r}")
    if np.ndim(r) == 0:
        r = r[None]
    if np.shape(r)[-1] not in (1, L):
        raise ValueError(f"reserve: last axis must have size 1 or L={L} (one reserve per "
                         f"good), got shape {np.shape(r)}")
    batch = _batch_shape(fields, np.shape(a), np.shape(r))
    if method == "auto":
        method = "envelope" if L == 1 else (
            "smoothed" if np.prod(batch, dtype=np.int64) >= _SMOOTHED_MIN_BATCH else "lp")
    tails = ((N, Kb, L), (N, Kb), (N, Kb), (F, Ks, L), (F, Ks), (F, Ks), (), (L,))
    leaves = [fields[k] for k in _FIELDS] + [a, r]
    base = [batch + t for t in tails]

    # the exact solve: constants stay float64 numpy on the host; traced leaves go through
    # the callback as they are, and the host aligns vmap's extra leading axes
    dyn_idx = [i for i, z in enumerate(leaves) if _is_traced(z)]
    statics = [None if i in dyn_idx else np.asarray(z) for i, z in enumerate(leaves)]
    isf = [not (i in (2, 5) or jnp.issubdtype(jnp.result_type(z), jnp.bool_)
                or jnp.issubdtype(jnp.result_type(z), jnp.integer)) for i, z in enumerate(leaves)]
    wire = [to_wire(jax.lax.stop_gradient(leaves[i])) if _is_traced(leaves[i]) else None
            for i in range(len(leaves))]
    own = [tuple(np.shape(z)) for z in leaves]
    dyn = [wire[i] for i in dyn_idx]
    if method == "smoothed":
        p0 = _smoothed_p0(*leaves, batch=batch)
        if _is_traced(p0):
            dyn_idx = dyn_idx + [len(leaves)]
            dyn.append(to_wire(jax.lax.stop_gradient(p0)))
            isf.append(True)
            statics.append(None)
        else:
            statics.append(np.asarray(p0, np.float64))
    else:
        statics.append(None)
    base.append(batch + (L,))
    own.append(batch + (L,))

    def host(*vals):
        arrs = list(statics)
        extras = []
        for i, v in zip(dyn_idx, vals):
            v = from_wire_host(v, isf[i])
            e = v.shape[:v.ndim - len(own[i])]
            extras.append(e)
            arrs[i] = v.reshape(e + (1,) * (len(base[i]) - len(own[i])) + own[i])
        full = tuple(np.broadcast_shapes(*extras)) + batch if extras else batch
        Bt = int(np.prod(full, dtype=np.int64))
        tt = list(tails) + [(L,)]
        z = [None if arrs[i] is None else
             np.broadcast_to(arrs[i], full + tt[i]).reshape((Bt,) + tt[i]) for i in range(len(arrs))]
        X, V, bm, Y, C, sm = (z[i].astype(bool if i in (2, 5) else np.float64) for i in range(6))
        A = MenuArrays(X, V, bm, Y, C, sm)
        av, rv = z[6].astype(np.float64), z[7].astype(np.float64)
        P0 = None if z[8] is None else np.asarray(z[8], np.float64)
        P, LAM, MU, st, its = _host_solve(A, av, rv, method, P0, rtol)
        ok = st == Status.OK
        kind, agent, opt, ref, ties, pdeg, sing = _basis(A, av, rv, P, LAM, MU, ok, rtol)
        deg = ok & (ties | pdeg | sing)
        if not info and deg.any():
            warnings.warn(f"equilibrium_prices: {int(deg.sum())} of {Bt} economies are at a "
                          "degenerate point (ties or a zero basic variable); their derivatives "
                          "are those of one optimal basis. Pass info=True to read the flags.",
                          DegeneratePointWarning, stacklevel=2)
        P = np.where(ok[:, None], P, np.nan)
        sh = lambda q, t=(): q.reshape(full + t)  # noqa: E731
        return (to_wire_host(sh(P, (L,)), dt), sh(kind, (L,)), sh(agent, (L,)), sh(opt, (L,)),
                sh(ref, (L,)), sh(ties), sh(pdeg), sh(sing), sh(st.astype(np.int32)),
                sh(its.astype(np.int32)))

    out_types = (jax.ShapeDtypeStruct(batch + (L, np.dtype(dt).itemsize // 4), jnp.uint32),) + tuple(
        jax.ShapeDtypeStruct(batch + (L,), jnp.int32) for _ in range(4)) + tuple(
        jax.ShapeDtypeStruct(batch, jnp.bool_) for _ in range(3)) + (
        jax.ShapeDtypeStruct(batch, jnp.int32), jax.ShapeDtypeStruct(batch, jnp.int32))
    if dyn_idx:
        sg = [jax.lax.stop_gradient(v) for v in dyn]
        res = jax.pure_callback(host, out_types, *sg, vmap_method="expand_dims")
    else:
        res = host()
    ph, kind, agent, opt, ref, ties, pdeg, sing, st, its = res
    ph = from_wire(jnp.asarray(ph), dt)
    X, V, _, Y, C, _, a, _ = leaves
    p = _assemble(X, V, Y, C, a, ph, kind, agent, opt, ref, batch=batch)
    if not info:
        return p
    degenerate, ties, pdeg, sing, ok, st = _flags(ties, pdeg, sing, st)
    return p, PriceInfo(degenerate, ties, pdeg, sing, ok, st, iterations=jnp.asarray(its))
