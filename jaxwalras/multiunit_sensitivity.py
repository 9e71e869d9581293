"""Buyer-optimal Walrasian prices of multi-unit markets as functions of real-valued values.

With integer values the buyer-optimal prices ``p*`` are integers (Eickhoff et al., 2024)
and, as a function of the values, piecewise constant: their derivative is 0 almost
everywhere and says nothing.  The meaningful object is the same definition over the
reals: for real values ``v_ij >= 0`` the Walrasian price vectors still form a lattice
(truncated additive valuations are gross substitutes; Gul and Stacchetti, 1999), they are
the ``p``-parts of the optimal dual solutions of the allocation LP

    max  sum v_ij x_ij   s.t.  sum_j x_ij <= d_i,  sum_i x_ij <= s_j,  0 <= x_ij <= s_j

(its dual is the Lyapunov LP ``min sum s_j p_j + sum_i (d_i u_i + sum_j s_j w_ij)``,
``p_j + u_i + w_ij >= v_ij``; Shapley and Shubik, 1971, for unit demands), and the least
one, ``p*(v)``, is piecewise LINEAR in ``v``, equal to the integer auction prices when
``v`` is integral.  Its derivative says which buyers set which prices.

Given an optimal allocation ``x*`` (a vertex of the transportation polytope, integral),
complementary slackness turns the optimal dual face into difference constraints:
``p_j + u_i = v_ij`` where ``0 < x_ij < s_j``, ``p_j + u_i >= v_ij`` where ``x_ij < s_j``,
``p_j + u_i <= v_ij`` where ``x_ij > 0``, ``u_i = 0`` for unsaturated buyers, ``p_j = 0``
for unsold objects, ``u, p >= 0``.  With potentials ``pi_i = -u_i`` and a root at 0, the
least solution is ``p_j = -dist(j -> root)`` in the constraint graph (arcs ``j -> i`` of
length ``-v_ij`` where ``x_ij < s_j``, ``i -> j`` of length ``v_ij`` where ``x_ij > 0``,
``j -> root`` of length 0, ``root -> j`` for unsold ``j``, ``root -> i``, and ``i -> root``
for unsaturated ``i``), a shortest-path problem (Bellman--Ford; no negative cycle because
``x*`` is optimal).  So ``p*_j = v_{i1 j} - v_{i1 j2} + v_{i2 j2} - ...`` along the
shortest path: an alternating chain of buyers ending at an unsold object or an
unsaturated buyer, and ``dp*_j / dv_ik`` is ``+1``, ``-1`` or 0.
"""
from __future__ import annotations

import functools
import warnings
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp

from .typing import ArrayLike
from .highs import dual_simplex
from .multiunit import MultiUnitMarket
from ._callback import from_wire, from_wire_host, to_wire, to_wire_host
from .sensitivity import DegeneratePointWarning
from .status import Status

__all__ = ["MultiUnitPriceInfo", "buyer_optimal_prices"]


class MultiUnitPriceInfo(NamedTuple):
    """Flags of :func:`buyer_optimal_prices` (``info=True``; leading axes = batch).

    Attributes
    ----------
    degenerate : jax.Array of bool, shape (...)
        Two shortest paths with different value chains tie for some object (or the
        optimal allocation is not unique): ``p*`` has a kink there and the derivative
        returned is that of one shortest-path tree (a one-sided choice).
    converged : jax.Array of bool, shape (...)
        ``p*`` was certified in float64: the Lyapunov function at ``p*`` equals the
        optimal welfare (so ``p*`` is Walrasian) and ``p* >= 0``.
    status : jax.Array of int32, shape (...)
        :class:`jaxwalras.Status` (``OK``, ``SOLVER_FAILED`` also for traced values that
        are negative or not finite, ``NOT_CERTIFIED``).
    iterations : jax.Array of int32, shape (...)
        Simplex iterations of the allocation LP.
    """

    degenerate: Any
    converged: Any
    status: Any
    iterations: Any


def _lyapunov(v: np.ndarray, d: np.ndarray, s: np.ndarray, p: np.ndarray) -> float:
    """``sum_j s_j p_j + sum_i V_i(p)``: buyer ``i`` takes her ``d_i`` best units, at most
    ``s_j`` of object ``j``, among those with positive payoff ``v_ij - p_j``."""
    tot = float(s @ p)
    pay = v - p[None, :]
    for i in range(v.shape[0]):
        o = np.argsort(-pay[i])
        left = int(d[i])
        for j in o:
            if pay[i, j] <= 0 or left <= 0:
                break
            take = min(left, int(s[j]))
            tot += take * pay[i, j]
            left -= take
    return tot


def _one_market(v: np.ndarray, d: np.ndarray, s: np.ndarray, rtol: float):
    """Least Walrasian prices of ONE market, the signature ``(m, n, m)`` of their value
    chains, degeneracy, status and LP iterations."""
    n, m = v.shape
    sig_p = np.zeros((m, n, m), np.int8)
    if m == 0:
        return np.zeros(0), sig_p, False, int(Status.OK), 0
    if n == 0 or not np.all(np.isfinite(v)) or v.min(initial=0.0) < 0:
        bad = n > 0
        return (np.full(m, np.nan) if bad else np.zeros(m)), sig_p, False, \
            int(Status.SOLVER_FAILED if bad else Status.OK), 0
    # allocation LP: min -v.x  s.t. row sums <= d, column sums <= s (x_ij <= s_j implied)
    k = np.arange(n * m)
    I, J = np.divmod(k, m)
    A = sp.csc_matrix((np.ones(2 * n * m), (np.concatenate([I, n + J]), np.concatenate([k, k]))),
                      shape=(n + m, n * m))
    ok, x, _, nit = dual_simplex(-v.ravel(), A, n + m, np.concatenate([d, s]).astype(float),
                                 np.zeros(0))
    if not ok or x is None:
        return np.full(m, np.nan), sig_p, False, int(Status.SOLVER_FAILED), nit
    x = np.round(x).reshape(n, m)
    vs = max(float(v.max(initial=0.0)), 1e-300)
    # constraint graph: buyers 0..n-1, objects n..n+m-1, root n+m; arc a->b: x_b <= x_a + len
    V = n + m + 1
    R = n + m
    Lm = np.full((V, V), np.inf)
    # the length of arc a->b is sgn[a, b] * v.flat[idx[a, b]] (0 where sgn is 0)
    idx = np.zeros((V, V), np.int64)
    sgn = np.zeros((V, V), np.int64)
    ii, jj = np.nonzero((x < s[None, :]) & (s[None, :] > 0))
    Lm[n + jj, ii] = -v[ii, jj]
    idx[n + jj, ii], sgn[n + jj, ii] = ii * m + jj, -1
    ii, jj = np.nonzero(x > 0)
    Lm[ii, n + jj] = v[ii, jj]
    idx[ii, n + jj], sgn[ii, n + jj] = ii * m + jj, 1
    Lm[n:n + m, R] = 0.0                                       # p_j >= 0
    unsold = x.sum(0) < s
    Lm[R, n + np.flatnonzero(unsold)] = 0.0                    # p_j <= 0 if unsold
    Lm[R, :n] = 0.0                                            # u_i >= 0
    Lm[np.flatnonzero(x.sum(1) < d), R] = 0.0                  # u_i <= 0 if unsaturated
    dist = np.full(V, np.inf)
    dist[R] = 0.0
    succ = np.full(V, -1)
    eps = 1e-12 * vs
    for _ in range(V + 1):
        cand = Lm + dist[None, :]
        best = cand.argmin(1)
        val = cand[np.arange(V), best]
        upd = val < dist - eps
        upd[R] = False
        if not upd.any():
            break
        dist = np.where(upd, val, dist)
        succ = np.where(upd, best, succ)
    else:
        return np.full(m, np.nan), sig_p, False, int(Status.SOLVER_FAILED), nit
    if not np.all(np.isfinite(dist[n:n + m])):
        return np.full(m, np.nan), sig_p, False, int(Status.SOLVER_FAILED), nit
    # signatures along the shortest-path tree (nodes in order of tree depth)
    sig = np.zeros((V, n * m), np.int64)
    depth = np.full(V, -1)
    depth[R] = 0
    for _ in range(V):
        todo = (depth < 0) & (succ >= 0) & (depth[np.maximum(succ, 0)] >= 0)
        if not todo.any():
            break
        for a in np.flatnonzero(todo):
            sig[a] = sig[succ[a]]
            sig[a, idx[a, succ[a]]] += sgn[a, succ[a]]
            depth[a] = depth[succ[a]] + 1
    # a tight arc whose chain differs from the tree's: the derivative is not unique
    fin = np.isfinite(dist)
    with np.errstate(invalid="ignore"):
        tight = (np.isfinite(Lm) & fin[:, None] & fin[None, :]
                 & (np.abs(Lm + dist[None, :] - dist[:, None]) <= rtol * vs))
    ta, tb = np.nonzero(tight)
    diff = sig[ta] - sig[tb]
    diff[np.arange(ta.size), idx[ta, tb]] -= sgn[ta, tb]
    degenerate = bool(np.any(diff != 0))
    p = np.maximum(-dist[n:n + m], 0.0)
    sig_p = (-sig[n:n + m]).reshape(m, n, m).astype(np.int8)
    welfare = float((v * x).sum())
    gap = abs(_lyapunov(v, d, s, p) - welfare)
    cert = gap <= rtol * vs * max(1.0, float(np.minimum(d.sum(), s.sum())))
    return p, sig_p, degenerate, int(Status.OK if cert else Status.NOT_CERTIFIED), nit


def buyer_optimal_prices(market: MultiUnitMarket, values: ArrayLike | None = None, *, info: bool = False,
                         rtol: float = 1e-9):
    """Buyer-optimal (least) Walrasian prices for real-valued values, differentiable.

    Parameters
    ----------
    market : MultiUnitMarket
        Demands and supplies (integers; any batch shape).  Its ``values`` are used when
        ``values`` is not given.
    values : array_like or jax.Array, shape (..., n, m), optional
        Real per-unit values ``>= 0`` (may be traced); broadcast against the market's
        batch.
    info : bool
        Also return a :class:`MultiUnitPriceInfo`.
    rtol : float
        Relative tolerance of ties (relative to the largest value) and of the certificate.

    Returns
    -------
    prices : jax.Array, shape (..., m)
        The least Walrasian prices ``p*(v)`` (float; NaN where the status is not OK).
        For integer values they equal :func:`jaxwalras.buyer_optimal_equilibrium`'s.
    info : MultiUnitPriceInfo
        Only with ``info=True``.

    Raises
    ------
    TypeError
        ``market`` is not a MultiUnitMarket; demands or supplies that are not integers
        (prices are piecewise constant in them: no derivative), e.g. float tracers.
    ValueError
        ``values`` of the wrong shape, negative or non-finite concrete values.

    Warns
    -----
    DegeneratePointWarning
        With ``info=False``, when some market is at a kink.

    Notes
    -----
    ``p*(v)`` is piecewise linear; between kinks ``p*_j`` is an alternating sum of values
    along a chain of buyers (module docstring), so the derivative is exact and its
    entries are ``-1``, ``0`` or ``1``.  At kinks (two chains tie, or the optimal
    allocation is not unique) the derivative of one shortest-path tree is returned and
    ``degenerate`` is set.  Integer values are often degenerate (ties are common with
    small integers); the derivative is meaningful at generic real values.

    References
    ----------
    K. Eickhoff, S. T. McCormick, B. Peis, N. Rieken and L. Vargas Koch, "A flow-based
    ascending auction to compute buyer-optimal Walrasian prices", Networks 84(2), 2024.
    F. Gul and E. Stacchetti, "Walrasian equilibrium with gross substitutes", Journal of
    Economic Theory 87(1), 1999.
    L. S. Shapley and M. Shubik, "The assignment game I: The core", International Journal
    of Game Theory 1(1), 1971.

    Examples
    --------
    >>> import jax, jax.numpy as jnp, jaxwalras as jw
    >>> mkt = jw.MultiUnitMarket([[10], [4]], demands=[2, 1], supplies=[2])
    >>> v = jnp.array([[10.0], [4.5]])
    >>> float(jw.buyer_optimal_prices(mkt, v)[0])
    4.5
    >>> jax.jacfwd(lambda v: jw.buyer_optimal_prices(mkt, v))(v)[0].ravel().tolist()
    [0.0, 1.0]
    """
    if not isinstance(market, MultiUnitMarket):
        raise TypeError(f"market: expected a jaxwalras.MultiUnitMarket, got {type(market).__name__}")
    if isinstance(rtol, bool) or not isinstance(rtol, (int, float)) or not 0 < rtol < 1:
        raise ValueError(f"rtol: must be a number in (0, 1), got {rtol!r}")
    if not isinstance(info, bool):
        raise TypeError(f"info: must be True or False, got {info!r}")
    d, s = market.demands, market.supplies
    for name, z in (("demands", d), ("supplies", s)):
        if not jnp.issubdtype(jnp.result_type(z), jnp.integer):
            raise TypeError(f"{name}: must be integers, got dtype {jnp.result_type(z)}; the "
                            f"prices are piecewise constant in the {name}, so they have no "
                            "derivative with respect to them")
    n, m = int(np.shape(d)[-1]), int(np.shape(s)[-1])
    dt = jnp.result_type(float)
    v = market.values if values is None else values
    if not isinstance(v, jax.core.Tracer):
        v = np.asarray(v, np.float64)
        if not np.all(np.isfinite(v)) or (v.size and v.min() < 0):
            raise ValueError("values: must be finite and >= 0")
    if np.ndim(v) < 2 or tuple(np.shape(v)[-2:]) != (n, m):
        raise ValueError(f"values: trailing shape must be (n, m) = ({n}, {m}), got "
                         f"{tuple(np.shape(v))}")
    try:
        batch = tuple(np.broadcast_shapes(np.shape(v)[:-2], np.shape(d)[:-1], np.shape(s)[:-1]))
    except ValueError:
        raise ValueError(f"values: leading axes {np.shape(v)[:-2]} do not broadcast against the "
                         f"market's batch {tuple(np.shape(d)[:-1])}") from None
    leaves = [v, d, s]
    base = [batch + (n, m), batch + (n,), batch + (m,)]
    dyn_idx = [i for i, z in enumerate(leaves) if isinstance(z, jax.core.Tracer)]
    statics = [None if i in dyn_idx else np.asarray(z) for i, z in enumerate(leaves)]
    own = [tuple(np.shape(z)) for z in leaves]

    def host(*vals):
        arrs = list(statics)
        extras = []
        for i, z in zip(dyn_idx, vals):
            z = from_wire_host(z, i == 0)
            e = z.shape[:z.ndim - len(own[i])]
            extras.append(e)
            arrs[i] = z.reshape(e + (1,) * (len(base[i]) - len(own[i])) + own[i])
        full = tuple(np.broadcast_shapes(*extras)) + batch if extras else batch
        Bt = int(np.prod(full, dtype=np.int64))
        vv = np.broadcast_to(arrs[0], full + (n, m)).reshape(Bt, n, m).astype(np.float64)
        dd = np.broadcast_to(arrs[1], full + (n,)).reshape(Bt, n).astype(np.int64)
        ss = np.broadcast_to(arrs[2], full + (m,)).reshape(Bt, m).astype(np.int64)
        P = np.zeros((Bt, m))
        SIG = np.zeros((Bt, m, n, m), np.int8)
        deg = np.zeros(Bt, bool)
        st = np.zeros(Bt, np.int32)
        its = np.zeros(Bt, np.int32)
        for b in range(Bt):
            P[b], SIG[b], deg[b], st[b], its[b] = _one_market(vv[b], dd[b], ss[b], rtol)
        okb = st == Status.OK
        if not info and (deg & okb).any():
            warnings.warn(f"buyer_optimal_prices: {int((deg & okb).sum())} of {Bt} markets are "
                          "at a kink of p*(v); their derivatives are those of one shortest-path "
                          "tree. Pass info=True to read the flags.", DegeneratePointWarning,
                          stacklevel=2)
        P = np.where(okb[:, None], P, np.nan)
        return (to_wire_host(P.reshape(full + (m,)), dt), SIG.reshape(full + (m, n, m)),
                (deg & okb).reshape(full), st.reshape(full), its.reshape(full))

    types = (jax.ShapeDtypeStruct(batch + (m, np.dtype(dt).itemsize // 4), jnp.uint32),
             jax.ShapeDtypeStruct(batch + (m, n, m), jnp.int8),
             jax.ShapeDtypeStruct(batch, jnp.bool_), jax.ShapeDtypeStruct(batch, jnp.int32),
             jax.ShapeDtypeStruct(batch, jnp.int32))
    if dyn_idx:
        args = [to_wire(jax.lax.stop_gradient(leaves[i])) if i == 0 else leaves[i]
                for i in dyn_idx]
        ph, sig, deg, st, its = jax.pure_callback(host, types, *args, vmap_method="expand_dims")
    else:
        ph, sig, deg, st, its = host()
    ph = from_wire(jnp.asarray(ph), dt)
    p = _assemble(v, ph, sig, batch=batch)
    if not info:
        return p
    return p, MultiUnitPriceInfo(degenerate=jnp.asarray(deg), converged=jnp.asarray(st) == 0,
                                 status=jnp.asarray(st), iterations=jnp.asarray(its))


@functools.partial(jax.jit, static_argnames=("batch",))
def _assemble(v, ph, sig, *, batch):
    """``stop_gradient(p*) + f - stop_gradient(f)``, ``f_j`` = the value chain of object j."""
    sg = jax.lax.stop_gradient
    dt = ph.dtype
    vf = jnp.broadcast_to(jnp.asarray(v, dt), batch + v.shape[-2:])
    f = jnp.einsum("...jik,...ik->...j", sig.astype(dt), vf)
    return sg(ph) + (f - sg(f))
