"""Device exact finish of the convexified LP: a batched restricted vertex solve.

Given approximate prices ``p0`` (e.g. the float32 smoothed-dual solution), every agent's
*candidate* options are those within ``rel_eps`` times the agent's own money scale (largest
value plus largest payment) of its best surplus at ``p0`` (or at a second price vector
``p1``: column generation).  Agents with
one candidate are held fixed at it (their bundles move into the reserve); the others -- few,
because at the LP optimum at most ``L`` agents mix and near-ties are rare -- form a small
sub-economy ("the restricted LP")::

    max  sum_{n amb} lam V/(1+alpha) - sum_{f amb} mu C
    s.t. sum_k lam[n,k] = 1, sum_k mu[f,k] = 1       (ambiguous agents, candidates only)
         sum X lam - sum Y mu <= -R'                  (R' = R + fixed demand - fixed supply)

solved exactly (float64 dense dual simplex, :func:`convexified_lp_simplex`) for a whole batch
at once.  Its basic optimum plus the fixed agents is a vertex of the full LP's feasible set
restricted to candidate options; it is optimal for the FULL LP iff the duality gap
``g(p) - primal`` vanishes, where ``g`` is the dual over the FULL menus -- so every answer is
certified here, on the device, against the full menus (the same certificate the host finish
uses).  Economies that overflow the static sizes, hit an infeasible restricted LP or fail the
certificate are flagged for the host (HiGHS) finish.

The static sizes (ambiguous buyers ``NA``, sellers ``FA``, candidates per agent ``KC``) come
from :func:`candidate_counts`, so a batch is solved at the size it needs (rounded up to
buckets by the caller to bound recompilation).

Pure ``jax.numpy``; call under ``jax.enable_x64(True)`` (float64 pivots and certificates).
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from .simplex import convexified_lp_simplex
from .menu import (agent_values, buyer_surplus, dual_value, excess_supply, menu_argmax,
                   primal_value, seller_profit)

__all__ = ["candidate_counts", "restricted_vertex", "RestrictedVertex"]


class RestrictedVertex(NamedTuple):
    prices: jax.Array          # (..., L)
    buyer_weights: jax.Array   # (..., N, Kb)  vertex weights
    seller_weights: jax.Array  # (..., F, Ks)
    dual: jax.Array            # (...,) g(p) over the full menus
    primal: jax.Array          # (...,)
    infeasibility: jax.Array   # (...,) max over goods of excess demand (>= 0)
    ok: jax.Array              # (...,) bool: certified optimal for the full LP
    iterations: jax.Array      # (...,) simplex pivots


def _scales(X, V, Y, C):
    vscale = jnp.maximum(jnp.abs(V).max((-1, -2)), jnp.abs(C).max((-1, -2)))
    vscale = jnp.where(vscale > 0, vscale, 1.0)
    qscale = jnp.maximum(X.max((-1, -2, -3)), Y.max((-1, -2, -3)))
    qscale = jnp.where(qscale > 0, qscale, 1.0)
    return vscale, qscale


def _welfare_scale(V, bm, C, sm, alpha):
    """``sum_n max_k |V| / (1+alpha) + sum_f max_k |C|``: the certificate's scale (as
    :func:`jaxwalras.menu_host.welfare_scale`)."""
    sb, ss = agent_values(V, bm, C, sm)
    return sb.sum() / (1.0 + alpha) + ss.sum()


def _own_scale(s, W, m, sign):
    """An agent's own scale from its payoffs ``s`` and values ``W`` (masked options ``m``):
    largest ``|W|`` plus largest ``|W - s|`` (buyers, ``sign=1``: the payment ``p.X``) or
    ``|W + s|`` (sellers, ``sign=-1``: the revenue ``p.Y``), shape (A, 1)."""
    pay = jnp.where(m, jnp.abs(W - sign * s), 0.0).max(-1, keepdims=True)
    return jnp.where(m, jnp.abs(W), 0.0).max(-1, keepdims=True) + pay


def _candidates(p, X, V, bm, Y, C, sm, alpha, rel_eps):
    """Candidate masks: options within ``rel_eps`` times the agent's own scale of its best
    (buyers in surplus units ``V/(1+alpha) - p.X``)."""
    u = buyer_surplus(p, X, V, bm, alpha)
    w = seller_profit(p, Y, C, sm)
    _, cb = menu_argmax(u, rel_eps * _own_scale(u, V / (1.0 + alpha), bm, 1.0))
    _, cs = menu_argmax(w, rel_eps * _own_scale(w, C, sm, -1.0))
    return cb, cs


def _union_candidates(p0, p1, X, V, bm, Y, C, sm, alpha, rel_eps):
    cb, cs = _candidates(p0, X, V, bm, Y, C, sm, alpha, rel_eps)
    cb1, cs1 = _candidates(p1, X, V, bm, Y, C, sm, alpha, rel_eps)
    return cb | cb1, cs | cs1


def _one_counts(p0, p1, X, V, bm, Y, C, sm, alpha, rel_eps):
    cb, cs = _union_candidates(p0, p1, X, V, bm, Y, C, sm, alpha, rel_eps)
    nb, ns = cb.sum(-1), cs.sum(-1)
    return ((nb > 1).sum(), (ns > 1).sum(),
            jnp.maximum(jnp.where(nb > 1, nb, 0).max(initial=0),
                        jnp.where(ns > 1, ns, 0).max(initial=0)))


@jax.jit
def candidate_counts(p0, p1, X, V, bm, Y, C, sm, alpha, rel_eps):
    """Per economy: (ambiguous buyers, ambiguous sellers, most candidates of one agent) for
    the candidates near-best at ``p0`` or at ``p1``."""
    return jax.vmap(_one_counts, in_axes=(0,) * 9 + (None,))(
        p0.astype(V.dtype), p1.astype(V.dtype), X, V, bm, Y, C, sm, alpha, rel_eps)


def _one_vertex(p0, p1, X, V, bm, Y, C, sm, alpha, R, rel_eps, cert_tol, NA, FA, KC,
                max_iter):
    N, Kb, L = X.shape
    F, Ks, _ = Y.shape
    dt = V.dtype
    vscale, qscale = _scales(X, V, Y, C)
    cb, cs = _union_candidates(p0, p1, X, V, bm, Y, C, sm, alpha, rel_eps)
    nb, ns = cb.sum(-1), cs.sum(-1)
    ambb, ambs = nb > 1, ns > 1
    lam_fix = (cb & (nb == 1)[:, None]).astype(dt)
    mu_fix = (cs & (ns == 1)[:, None]).astype(dt)
    Rp = R + jnp.einsum("nk,nkl->l", lam_fix, X) - jnp.einsum("fk,fkl->l", mu_fix, Y)
    overflow = ((ambb.sum() > NA) | (ambs.sum() > FA)
                | (jnp.where(ambb, nb, 0).max(initial=0) > KC)
                | (jnp.where(ambs, ns, 0).max(initial=0) > KC))

    def pick(amb, cand, Z, W, A):
        """The first ``A`` ambiguous agents, each with its first ``KC`` candidates."""
        idx = jnp.argsort(~amb, stable=True)[:A]                   # (A,)
        valid = amb[idx]
        slots = jnp.argsort(~cand[idx], axis=-1, stable=True)[:, :KC]   # (A, KC)
        m = jnp.take_along_axis(cand[idx], slots, -1) & valid[:, None]
        Zs = jnp.where(m[..., None], jnp.take_along_axis(Z[idx], slots[..., None], 1), 0.0)
        Ws = jnp.where(m, jnp.take_along_axis(W[idx], slots, -1), 0.0)
        return idx, valid, slots, m, Zs, Ws

    ib, vb, kb, mb, Xs, Vs = pick(ambb, cb, X, V, NA)
    i_s, vs_, ks, ms, Ys, Cs = pick(ambs, cs, Y, C, FA)
    pn, lam_s, mu_s, status, it = convexified_lp_simplex(
        Xs / qscale, Vs / vscale, mb, Ys / qscale, Cs / vscale, ms, alpha, Rp / qscale,
        max_iter=max_iter)
    p = pn * vscale / qscale
    lam = lam_fix.at[ib[:, None], kb].add(jnp.where(vb[:, None], lam_s, 0.0))
    mu = mu_fix.at[i_s[:, None], ks].add(jnp.where(vs_[:, None], mu_s, 0.0))
    # certificate against the FULL menus
    dual = dual_value(p, X, V, bm, Y, C, sm, alpha, R)
    primal = primal_value(lam, V, mu, C, alpha)
    infeas = jnp.maximum(-excess_supply(lam, X, mu, Y, R), 0.0).max(initial=0.0)
    ok = ((status == 0) & ~overflow & jnp.all(jnp.isfinite(p))
          & (dual - primal <= cert_tol * _welfare_scale(V, bm, C, sm, alpha))
          & (infeas <= 1e-9 * (vscale + 1.0) * max(1, N)))
    return RestrictedVertex(p, lam, mu, dual, primal, infeas, ok, it)


def restricted_vertex(p0, p1, X, V, bm, Y, C, sm, alpha, R, *, NA: int, FA: int, KC: int,
                      rel_eps: float = 1e-3, cert_tol: float = 1e-10,
                      max_iter: int = 256) -> RestrictedVertex:
    """Exact vertex optimum of a batch of convexified LPs near prices ``p0`` (leading axis =
    batch; see the module docstring); candidates are the options near-best at ``p0`` or at
    ``p1`` (pass ``p1 = p0`` for one price vector; a second round passes the first round's
    prices, which adds the options that the restricted optimum says are missing).
    ``NA``/``FA``: ambiguous buyers/sellers solved per economy, ``KC``: candidates per
    agent (static).  ``ok`` flags the economies certified
    optimal against their full menus; the others need another finish."""
    def f(*a):
        return _one_vertex(*a, rel_eps, cert_tol, NA, FA, KC, max_iter)
    return jax.vmap(f)(p0.astype(V.dtype), p1.astype(V.dtype), X, V, bm, Y, C, sm, alpha, R)


restricted_vertex = jax.jit(restricted_vertex,
                            static_argnames=("NA", "FA", "KC", "rel_eps", "cert_tol", "max_iter"))
