"""Menu demand / supply kernels and the (smoothed) dual of the convexified economy.

Pure ``jax.numpy`` functions on ONE economy (vmap them for batches):

* buyer ``n`` option ``k``: surplus ``u[n,k] = V[n,k]/(1+alpha) - p.X[n,k]``
  (equivalently ``V - (1+alpha) p.X`` in money, scaled by ``1/(1+alpha)``);
* seller ``f`` option ``k``: profit ``w[f,k] = p.Y[f,k] - C[f,k]``;
* dual ``g(p) = sum_n max_k u + sum_f max_k w - p.R`` (Milgrom and Watt, 2022) and its
  entropic smoothing ``g_tau`` with ``tau * logsumexp(./tau)`` in place of ``max``; the
  gradient of ``g_tau`` is the expected excess supply ``sum E[Y] - sum E[X] - R``.

Masked (padded) options get surplus ``-inf`` and weight 0.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

#: full float32 accuracy (GPUs otherwise run float32 contractions in TF32)
_EXACT = jax.lax.Precision.HIGHEST

__all__ = ["buyer_surplus", "seller_profit", "menu_gaps", "menu_argmax", "dual_value",
           "smoothed_dual", "smoothed_weights", "excess_supply", "primal_value"]

Array = jax.Array


def buyer_surplus(p: Array, X: Array, V: Array, mask: Array, alpha: Array) -> Array:
    """``V/(1+alpha) - X @ p`` per option (N, Kb); ``-inf`` on masked options."""
    u = V / (1.0 + alpha) - jnp.einsum("nkl,l->nk", X, p, precision=_EXACT)
    return jnp.where(mask, u, -jnp.inf)


def seller_profit(p: Array, Y: Array, C: Array, mask: Array) -> Array:
    """``Y @ p - C`` per option (F, Ks); ``-inf`` on masked options."""
    w = jnp.einsum("fkl,l->fk", Y, p, precision=_EXACT) - C
    return jnp.where(mask, w, -jnp.inf)


def agent_values(V: Array, bm: Array, C: Array, sm: Array) -> tuple[Array, Array]:
    """Each agent's largest ``|value|`` (buyers, (N,)) and ``|cost|`` (sellers, (F,)) over
    its real options."""
    return (jnp.where(bm, jnp.abs(V), 0.0).max(-1), jnp.where(sm, jnp.abs(C), 0.0).max(-1))


def menu_gaps(s: Array) -> Array:
    """Shortfall of each option from the agent's best (0 = in the demand/supply set)."""
    return jnp.max(s, axis=-1, keepdims=True) - s


def menu_argmax(s: Array, tol: float | Array = 0.0) -> tuple[Array, Array]:
    """Chosen option (first argmax) and the tie set ``{k : gap_k <= tol}`` per agent."""
    gaps = menu_gaps(s)
    return jnp.argmax(s, axis=-1), gaps <= tol


def dual_value(p: Array, X: Array, V: Array, bm: Array, Y: Array, C: Array, sm: Array,
               alpha: Array, R: Array) -> Array:
    """Exact dual ``g(p)`` (an upper bound on the convexified welfare for any p >= 0)."""
    u = buyer_surplus(p, X, V, bm, alpha)
    w = seller_profit(p, Y, C, sm)
    return jnp.sum(jnp.max(u, -1)) + jnp.sum(jnp.max(w, -1)) - jnp.dot(p, R)


def smoothed_weights(p: Array, X: Array, V: Array, bm: Array, Y: Array, C: Array, sm: Array,
                     alpha: Array, tau: Array) -> tuple[Array, Array]:
    """Logit choice probabilities ``softmax(u/tau)``, ``softmax(w/tau)``."""
    u = buyer_surplus(p, X, V, bm, alpha)
    w = seller_profit(p, Y, C, sm)
    return jax.nn.softmax(u / tau, axis=-1), jax.nn.softmax(w / tau, axis=-1)


def smoothed_dual(p: Array, X: Array, V: Array, bm: Array, Y: Array, C: Array, sm: Array,
                  alpha: Array, R: Array, tau: Array) -> Array:
    """``g_tau(p) = sum tau lse(u/tau) + sum tau lse(w/tau) - p.R`` (>= g(p))."""
    u = buyer_surplus(p, X, V, bm, alpha)
    w = seller_profit(p, Y, C, sm)
    return (tau * jnp.sum(jax.nn.logsumexp(u / tau, axis=-1))
            + tau * jnp.sum(jax.nn.logsumexp(w / tau, axis=-1)) - jnp.dot(p, R))


def excess_supply(lam: Array, X: Array, mu: Array, Y: Array, R: Array) -> Array:
    """``sum_f mu.Y - sum_n lam.X - R`` per good (L,)."""
    return jnp.einsum("fk,fkl->l", mu, Y) - jnp.einsum("nk,nkl->l", lam, X) - R


def primal_value(lam: Array, V: Array, mu: Array, C: Array, alpha: Array) -> Array:
    """LP objective ``sum lam V/(1+alpha) - sum mu C`` of mixing weights."""
    return jnp.sum(lam * V) / (1.0 + alpha) - jnp.sum(mu * C)
