"""The logit-smoothed equilibrium of a menu economy with a markup per good.

Buyers face ``(1 + alpha_l) p_l`` for good ``l`` and sellers receive ``p``.  With one
markup for all goods the convexified equilibrium is an LP and its smoothing is the
entropic dual of :mod:`jaxwalras.smoothed`; with a markup per good there is no such
potential, so the logit equilibrium is computed as the root of the expected excess
supply on the priced goods (damped projected Newton under an annealed temperature), and
differentiated by the implicit function theorem at the root (Blondel et al., 2022).
Used by the mechanism tuner (:mod:`jaxwalras.tuning`) for per-good markup policies.
"""
from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .typing import ArrayLike
from .economy import MenuEconomy
from .smoothed import _check_concrete
from .kernels.smoothed_dual import normalisation

__all__ = ["per_good_smoothed_equilibrium"]


def per_good_one(X, V, bm, Y, C, sm, alpha, R, tau, iters):
    """Logit equilibrium of ONE economy with buyer prices ``(1+alpha) * p`` (per good):
    the root ``z(p) = 0`` of the expected excess supply on the goods with a positive price,
    by damped projected Newton under an annealed temperature, then one implicit-function
    step (``p = p* - J_ff^{-1} z_f(p*; theta)``, ``p*`` and ``J`` held constant)."""
    sg = jax.lax.stop_gradient
    vs, qs = normalisation(sg(X), sg(V), sg(Y), sg(C))
    L = X.shape[-1]

    def z(q, X, V, Y, C, alpha, R, t):
        p = q * vs / qs
        u = jnp.where(bm, (V - jnp.einsum("nkl,l->nk", X, (1.0 + alpha) * p)) / vs, -jnp.inf)
        w = jnp.where(sm, (jnp.einsum("fkl,l->fk", Y, p) - C) / vs, -jnp.inf)
        lam, mu = jax.nn.softmax(u / t, -1), jax.nn.softmax(w / t, -1)
        return (jnp.einsum("fk,fkl->l", mu, Y) - jnp.einsum("nk,nkl->l", lam, X) - R) / qs, (lam, mu)

    def newton(q, t):
        args = (sg(X), sg(V), sg(Y), sg(C), sg(alpha), sg(R), t)
        g, _ = z(q, *args)
        J = jax.jacfwd(lambda q: z(q, *args)[0])(q)
        free = (q > 0) | (g < 0)
        Jf = jnp.where(free[:, None] & free[None, :], J, 0.0) + jnp.diag(
            jnp.where(free, 0.0, 1.0) + 1e-9 * (1.0 + jnp.abs(jnp.diag(J))))
        step = jnp.linalg.solve(Jf, jnp.where(free, g, 0.0))
        step = step * jnp.minimum(1.0, 0.5 / (jnp.max(jnp.abs(step)) + 1e-30))
        return jnp.maximum(q - step, 0.0)

    # the temperature falls from 0.2 to tau over the first two thirds, then stays at tau
    frac = jnp.minimum(jnp.arange(1, iters + 1) / (2 * iters // 3 + 1), 1.0)
    ts = tau * (0.2 / tau) ** (1.0 - frac)
    q, _ = jax.lax.scan(lambda q, t: (newton(q, t), None), jnp.full(L, 0.5, X.dtype), ts)
    q = sg(q)
    g, _ = z(q, X, V, Y, C, alpha, R, tau)
    J = sg(jax.jacfwd(lambda q: z(q, X, V, Y, C, alpha, R, tau)[0])(q))
    free = sg((q > 0) | (g < 0))
    Jf = jnp.where(free[:, None] & free[None, :], J, 0.0) + jnp.diag(
        jnp.where(free, 0.0, 1.0) + 1e-9 * (1.0 + jnp.abs(jnp.diag(J))))
    corr = jnp.where(free, jnp.linalg.solve(Jf, jnp.where(free, g, 0.0)), 0.0)
    q = q - jnp.where(jnp.isfinite(corr), corr, 0.0)
    _, (lam, mu) = z(q, X, V, Y, C, alpha, R, tau)
    p = q * vs / qs
    return p, lam, mu


def per_good_smoothed_equilibrium(economy: MenuEconomy, markups: ArrayLike, reserve: ArrayLike = 0.0, *,
                                  tau: float = 1e-2, iters: int = 30):
    """Logit-smoothed equilibrium with a markup per good, differentiable in every input.

    Buyers choose with probabilities ``softmax((V - ((1+alpha)*p).X) / (tau vs))`` and
    sellers with ``softmax((p.Y - C) / (tau vs))`` (``vs`` the economy's value scale); the
    prices clear the expected excess supply on the priced goods.  With one markup for all
    goods this is the logit equilibrium of :func:`jaxwalras.smoothed_equilibrium` up to
    the temperature's ``1 + alpha``.  Derivatives come from the implicit function theorem
    at the root (Blondel et al., 2022), not from the iterations.

    Parameters
    ----------
    economy : MenuEconomy
        Any batch shape; may hold traced arrays.
    markups : array_like, shape broadcastable to ``batch + (L,)``
        May be traced.
    reserve : array_like, optional
        Auctioneer demand per good.
    tau : float
        Temperature relative to the value scale.
    iters : int
        Newton iterations (the temperature is annealed from 0.2 to ``tau`` over them).

    Returns
    -------
    prices : jax.Array, shape (..., L)
    buyer_weights : jax.Array, shape (..., N, Kb)
    seller_weights : jax.Array, shape (..., F, Ks)

    References
    ----------
    M. Blondel et al., "Efficient and modular implicit differentiation", NeurIPS 2022.
    P. Milgrom and M. Watt, "Linear pricing mechanisms for markets without convexity",
    EC 2022.

    Examples
    --------
    >>> import jaxwalras as jw
    >>> eco = jw.examples.milgrom_watt_table1()
    >>> p, lam, mu = jw.per_good_smoothed_equilibrium(eco, 0.0, tau=1e-3)
    >>> round(float(p[0]), 2)
    0.5
    """
    if not isinstance(economy, MenuEconomy):
        raise TypeError(f"economy: expected a jaxwalras.MenuEconomy, got {type(economy).__name__}")
    if isinstance(tau, bool) or not isinstance(tau, (int, float)) or not 0 < tau <= 1:
        raise ValueError(f"tau: must be a number in (0, 1], got {tau!r}")
    if isinstance(iters, bool) or not isinstance(iters, (int, np.integer)) or iters < 1:
        raise ValueError(f"iters: must be an integer >= 1, got {iters!r}")
    _check_concrete(economy, markups, reserve, markup_name="markups")
    dt = jnp.result_type(float)
    L = economy.n_goods
    a = jnp.asarray(markups, dt)
    r = jnp.asarray(reserve, dt)
    a, r = (z[None] if z.ndim == 0 else z for z in (a, r))
    for nm, z in (("markups", a), ("reserve", r)):
        if z.shape[-1] not in (1, L):
            raise ValueError(f"{nm}: last axis must have size 1 or L={L}, got shape {z.shape}")
    batch = tuple(jnp.broadcast_shapes(economy.batch_shape, a.shape[:-1], r.shape[:-1]))
    f = [getattr(economy, k) for k in ("buyer_bundles", "buyer_values", "buyer_mask",
                                       "seller_bundles", "seller_costs", "seller_mask")]
    p, lam, mu = _per_good_flat(*f, a, r, jnp.asarray(float(tau), dt), batch=batch,
                                nb=len(economy.batch_shape), iters=int(iters))
    return (p.reshape(batch + p.shape[1:]), lam.reshape(batch + lam.shape[1:]),
            mu.reshape(batch + mu.shape[1:]))


@functools.partial(jax.jit, static_argnames=("batch", "nb", "iters"))
def _per_good_flat(X, V, bm, Y, C, sm, a, r, tau, *, batch, nb, iters):
    """:func:`per_good_one` over a flat batch (inputs broadcast to ``batch``)."""
    dt = jnp.result_type(float)
    B = int(np.prod(batch, dtype=np.int64))
    L = X.shape[-1]
    fl = lambda z, k: jnp.broadcast_to(  # noqa: E731
        jnp.asarray(z, jnp.bool_ if k else dt), batch + z.shape[nb:] if z.ndim > nb else
        batch + z.shape).reshape((B,) + (z.shape[nb:] if z.ndim > nb else z.shape))
    ins = [fl(X, 0), fl(V, 0), fl(bm, 1), fl(Y, 0), fl(C, 0), fl(sm, 1)]
    ab = jnp.broadcast_to(jnp.asarray(a, dt), batch + (L,)).reshape(B, L)
    rb = jnp.broadcast_to(jnp.asarray(r, dt), batch + (L,)).reshape(B, L)
    return jax.vmap(functools.partial(per_good_one, tau=tau, iters=iters))(*ins, ab, rb)
