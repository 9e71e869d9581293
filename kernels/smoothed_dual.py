"""Projected first-order solver for the entropic-smoothed dual of a convexified economy.

Minimises ``g_tau(p) = sum_n tau lse_k(u[n,k]/tau) + sum_f tau lse_k(w[f,k]/tau) - p.R`` over
``p >= 0`` (see :mod:`jaxwalras.kernels.menu`) with projected Adam (optax), annealing ``tau``
geometrically over ``stages``; each stage is a fixed-length ``lax.scan`` of ``steps``
iterations followed by a convergence check (true duality gap of the logit weights made
feasible), and an economy that has converged is frozen.  The outer stage loop is a
``lax.while_loop`` that stops when every economy in the batch is done, so a batch is never
iterated past its slowest member's need and no economy is iterated past its own.

Everything is computed in normalised units (values by the largest |value|/|cost|, each
good by its largest bundle entry) so that one set of step sizes fits all economies.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from . import menu

__all__ = ["DeviceSolution", "solve_smoothed_dual", "solve_batch", "feasible_logit_weights",
           "normalisation"]

Array = jax.Array


class DeviceSolution(NamedTuple):
    prices: Array          # (..., L) seller prices (original units)
    buyer_weights: Array   # (..., N, Kb) feasible logit weights
    seller_weights: Array  # (..., F, Ks)
    dual: Array            # (...,) g(p) (unsmoothed)
    primal: Array          # (...,) objective of the weights
    rel_gap: Array         # (...,)
    converged: Array       # (...,) bool
    iterations: Array      # (...,) int32
    tau: Array             # (...,) smoothing (normalised units) when stopped


def normalisation(X: Array, V: Array, Y: Array, C: Array) -> tuple[Array, Array]:
    """Per-economy value scale ``vs`` (scalar) and per-good quantity scale ``qs`` (L,)."""
    vs = jnp.maximum(jnp.max(jnp.abs(V)), jnp.max(jnp.abs(C)))
    vs = jnp.where(vs > 0, vs, 1.0)
    qs = jnp.maximum(jnp.max(X, axis=(0, 1)), jnp.max(Y, axis=(0, 1)))
    qs = jnp.where(qs > 0, qs, 1.0)
    return vs, qs


def feasible_logit_weights(p, X, V, bm, Y, C, sm, alpha, R, tau):
    """Logit weights at ``p``; buyers are scaled towards option 0 (the empty bundle) until
    demand plus reserve fits in supply (feasible whenever supply covers the reserve)."""
    lam, mu = menu.smoothed_weights(p, X, V, bm, Y, C, sm, alpha, tau)
    supply = jnp.einsum("fk,fkl->l", mu, Y) - R
    demand = jnp.einsum("nk,nkl->l", lam, X)
    ratio = jnp.where(demand > 0, jnp.clip(supply / jnp.where(demand > 0, demand, 1.0), 0.0, 1.0), 1.0)
    s = jnp.min(ratio)
    lam = lam * s
    lam = lam.at[:, 0].add(1.0 - s)
    return lam, mu


def _certify(p, X, V, bm, Y, C, sm, alpha, R, tau):
    lam, mu = feasible_logit_weights(p, X, V, bm, Y, C, sm, alpha, R, tau)
    dual = menu.dual_value(p, X, V, bm, Y, C, sm, alpha, R)
    primal = menu.primal_value(lam, V, mu, C, alpha)
    denom = jnp.maximum(jnp.maximum(jnp.abs(dual), jnp.abs(primal)), 1.0 / (1.0 + alpha))
    return lam, mu, dual, primal, (dual - primal) / denom


def _grad_hess(q, Xn, Vn, bm, Yn, Cn, sm, alpha, Rn, tau):
    """Gradient (expected excess supply) and Hessian of g_tau (normalised units)."""
    lam, mu = menu.smoothed_weights(q, Xn, Vn, bm, Yn, Cn, sm, alpha, tau)
    EX = jnp.einsum("nk,nkl->nl", lam, Xn)
    EY = jnp.einsum("fk,fkl->fl", mu, Yn)
    g = EY.sum(0) - EX.sum(0) - Rn
    # Cov under the logit weights: E[x x^T] - E[x] E[x]^T, summed over agents, / tau
    H = (jnp.einsum("nk,nkl,nkm->lm", lam, Xn, Xn) - EX.T @ EX
         + jnp.einsum("fk,fkl,fkm->lm", mu, Yn, Yn) - EY.T @ EY) / tau
    return g, H


_TRIALS = (1.0, 0.5, 0.25, 0.1, 0.03, 0.0)


def solve_smoothed_dual(X: Array, V: Array, bm: Array, Y: Array, C: Array, sm: Array,
                        alpha: Array, R: Array, *, solver: str = "newton", stages: int = 5,
                        steps: int = 4, tau0: float = 0.05, tau_min: float = 1e-4,
                        learning_rate: float = 0.05, device_tol: float = 1e-5,
                        p0: Array | None = None) -> DeviceSolution:
    """Solve ONE economy (vmap for batches); at most ``stages * steps`` iterations.

    ``solver="newton"``: projected Newton steps on ``g_tau`` (free coordinates only; the
    L x L Hessian is the logit covariance of the bundles / tau) with a parallel line search
    over a few step lengths -- an entropic interior-point-like path, few iterations per
    ``tau``.  ``solver="adam"``: projected optax Adam with step ``learning_rate *
    sqrt(tau/tau0)`` (pure first order; many more iterations for the same accuracy).
    """
    vs, qs = normalisation(X, V, Y, C)
    Xn, Yn, Rn = X / qs, Y / qs, R / qs
    Vn, Cn = V / vs, C / vs
    L = X.shape[-1]
    dt = Vn.dtype
    pn0 = jnp.full((L,), 0.5, dt) if p0 is None else (p0 * qs / vs).astype(dt)
    opt = optax.adam(1.0)
    grad_fn = jax.grad(menu.smoothed_dual)
    f_tau = lambda q, tau: menu.smoothed_dual(q, Xn, Vn, bm, Yn, Cn, sm, alpha, Rn, tau)  # noqa: E731
    trials = jnp.asarray(_TRIALS, dt)
    eye = jnp.eye(L, dtype=dt)

    def newton_step(q, tau):
        g, H = _grad_hess(q, Xn, Vn, bm, Yn, Cn, sm, alpha, Rn, tau)
        free = (q > 0) | (g < 0)
        both = free[:, None] & free[None, :]
        ridge = 1e-7 * jnp.trace(H) / L + 1e-12
        Hf = jnp.where(both, H, 0.0) + eye * (ridge + jnp.where(free, 0.0, 1.0))
        d = jnp.linalg.solve(Hf, jnp.where(free, -g, 0.0))
        cands = jnp.maximum(q[None, :] + trials[:, None] * d[None, :], 0.0)
        vals = jax.vmap(lambda c: f_tau(c, tau))(cands)
        vals = jnp.where(jnp.isfinite(vals), vals, jnp.inf)
        return cands[jnp.argmin(vals)]

    def stage(carry, s):
        pn, st, done, iters, best = carry
        frac = s / jnp.maximum(stages - 1, 1)
        tau = (tau0 * (tau_min / tau0) ** frac).astype(dt)
        lr = (learning_rate * (tau / tau0) ** 0.5).astype(dt)

        def step(c, _):
            q, o = c
            if solver == "newton":
                return (newton_step(q, tau), o), None
            g = grad_fn(q, Xn, Vn, bm, Yn, Cn, sm, alpha, Rn, tau)
            upd, o = opt.update(g, o, q)
            return (jnp.maximum(q + lr * upd, 0.0), o), None

        (pn_new, st_new), _ = jax.lax.scan(step, (pn, st), None, length=steps)
        pn = jnp.where(done, pn, pn_new)
        st = jax.tree_util.tree_map(lambda a, b: jnp.where(done, a, b), st, st_new)
        iters = iters + jnp.where(done, 0, steps)
        *_, rel = _certify(pn, Xn, Vn, bm, Yn, Cn, sm, alpha, Rn, tau)
        newly = (~done) & (rel <= device_tol)
        best = jnp.where(done, best, tau)
        return (pn, st, done | newly, iters, best), None

    def cond(c):
        (_, _, done, _, _), s = c
        return (s < stages) & ~done

    def body(c):
        carry, s = c
        carry, _ = stage(carry, s)
        return carry, s + 1

    init = (pn0, opt.init(pn0), jnp.array(False), jnp.array(0, jnp.int32), jnp.array(tau0, dt))
    (pn, _, done, iters, tau), _ = jax.lax.while_loop(cond, body, (init, jnp.array(0)))
    lam, mu, dual, primal, rel = _certify(pn, Xn, Vn, bm, Yn, Cn, sm, alpha, Rn, tau)
    return DeviceSolution(prices=pn * vs / qs, buyer_weights=lam, seller_weights=mu,
                          dual=dual * vs, primal=primal * vs, rel_gap=rel,
                          converged=rel <= device_tol, iterations=iters, tau=tau)


def solve_batch(X, V, bm, Y, C, sm, alpha, R, **kw) -> DeviceSolution:
    """vmap of :func:`solve_smoothed_dual` over a leading batch axis."""
    return jax.vmap(lambda *a: solve_smoothed_dual(*a, **kw))(X, V, bm, Y, C, sm, alpha, R)
