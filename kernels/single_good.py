"""Exact least markup of the Table-1 class, as a batched device kernel.

Market (Milgrom and Watt's Table 1 and its large version): buyer ``n`` wants exactly
``q_n > 0`` units at ``v_n`` per unit (menu ``{0, q_n}``); one seller produces multiples of
``u`` up to ``K u`` at marginal cost ``c`` (``K u > sum q``).  A markup outcome is
``(alpha, p, omega)`` with the seller in its supply set at ``p``, buyers in their demand sets
at ``beta = (1+alpha)p``, ``X <= Y`` and ``beta X >= p Y``.

Case analysis (``X_k`` = total demand of the ``k`` highest-``v`` buyers, ``v`` sorted down):

* ``p < c``: ``Y = 0`` so ``X = 0``; dominated by ``k = 0`` at ``p = c``.
* ``p = c`` (seller indifferent between all multiples of ``u``): with ``k`` buyers served,
  ``Y = u ceil(X_k / u)`` is best and ``beta`` must lie in ``[v_{k+1}, v_k]`` and be
  ``>= c Y / X_k`` and ``>= c``, so ``alpha_k = max(v_{k+1}, c, c Y/X_k)/c - 1`` if that
  ``beta <= v_k``.
* ``p >= c`` with ``Y = K u`` (the only supply when ``p > c``): ``alpha = K u / X_k - 1``,
  feasible iff ``max(v_{k+1}, c K u / X_k) <= v_k`` (then ``p = that / (1+alpha)``).

The minimum over ``k`` and the two branches is the exact least markup (ties in ``v`` are
resolved as prefixes of one order only, so the caller certifies minimality only without
ties).  Pure ``jax.numpy``; batched over leading axes; sort + cumulative sum + elementwise
scan.  Call it under ``jax.enable_x64(True)`` for float64.

References
----------
P. Milgrom and M. Watt, "Linear pricing mechanisms for markets without convexity",
EC 2022, Table 1.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["single_good_min_markup"]


@jax.jit
def single_good_min_markup(v, q, c, u, K):
    """Exact least markup for a batch of single-good markets (see module docstring).

    Parameters (leading batch axes ``...``)
    ----------
    v : (..., N) per-unit values; q : (..., N) quantities (``> 0``; ``0`` = absent buyer,
    give it ``v = -inf``); c, u, K : (...,) marginal cost, production unit, capacity in units.

    Returns
    -------
    alpha (...,), p (...,), beta (...,), k (...,) int (buyers served = the ``k`` highest
    ``v``), y_units (...,) (seller output / ``u``), buys (..., N) bool, feasible (...,) bool.
    """
    order = jnp.argsort(-v, axis=-1)
    vs = jnp.take_along_axis(v, order, -1)
    qs = jnp.take_along_axis(q, order, -1)
    X = jnp.cumsum(qs, -1)                                          # X_1..X_N
    N = v.shape[-1]
    c_ = c[..., None]
    u_ = u[..., None]
    K_ = K[..., None]
    inf = jnp.asarray(jnp.inf, v.dtype)
    v_next = jnp.concatenate([vs[..., 1:], jnp.full(vs.shape[:-1] + (1,), -inf)], -1)
    units = jnp.ceil(X / u_ - 1e-12 * (1.0 + X / u_))               # Y = u * ceil(X/u)
    Xs = jnp.maximum(X, jnp.finfo(v.dtype).tiny)
    # branch p = c
    beta_c = jnp.maximum(jnp.maximum(v_next, c_), c_ * units * u_ / Xs)
    ok_c = (beta_c <= vs) & (X > 0)
    a_c = jnp.where(ok_c, beta_c / c_ - 1.0, inf)
    # branch Y = K u, p >= c
    ratio = K_ * u_ / Xs
    beta_k = jnp.maximum(v_next, c_ * ratio)
    ok_k = (beta_k <= vs) & (X > 0)
    a_k = jnp.where(ok_k, ratio - 1.0, inf)
    use_k = a_k < a_c
    a_all = jnp.minimum(a_c, a_k)
    # k = 0: nobody served, beta >= max(v_1, c)
    a0 = jnp.maximum(vs[..., 0], c) / c - 1.0
    a0 = jnp.maximum(a0, 0.0)
    j = jnp.argmin(a_all, -1)
    a_best = jnp.take_along_axis(a_all, j[..., None], -1)[..., 0]
    take0 = a0 <= a_best
    alpha = jnp.where(take0, a0, a_best)
    k = jnp.where(take0, 0, j + 1)
    uk = jnp.take_along_axis(use_k, j[..., None], -1)[..., 0] & ~take0
    bet_c = jnp.take_along_axis(beta_c, j[..., None], -1)[..., 0]
    bet_k = jnp.take_along_axis(beta_k, j[..., None], -1)[..., 0]
    beta = jnp.where(take0, jnp.maximum(vs[..., 0], c), jnp.where(uk, bet_k, bet_c))
    p = jnp.where(uk, beta / (1.0 + alpha), c)
    y_units = jnp.where(take0, 0.0, jnp.where(
        uk, K, jnp.take_along_axis(units, j[..., None], -1)[..., 0]))
    rank_ok = jnp.arange(N) < k[..., None]
    buys = jnp.zeros(v.shape, bool)
    buys = jax.vmap(lambda b, o, r: b.at[o].set(r))(
        buys.reshape(-1, N), order.reshape(-1, N), rank_ok.reshape(-1, N)).reshape(v.shape)
    feasible = jnp.isfinite(alpha)
    return alpha, p, beta, k, y_units, buys, feasible
