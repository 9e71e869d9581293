"""Projected Newton / first-order solver for the entropic-smoothed dual of a convexified economy.

Minimises ``g_tau(p) = sum_n tau lse_k(u[n,k]/tau) + sum_f tau lse_k(w[f,k]/tau) - p.R`` over
``p >= 0`` (see :mod:`jaxwalras.kernels.menu`) with projected Newton steps (default) or
projected Adam (optax), annealing ``tau``
geometrically over ``stages``; each stage is a fixed-length ``lax.scan`` of ``steps``
iterations followed by a convergence check (true duality gap of the logit weights made
feasible), and an economy that has converged is frozen.  The outer stage loop is a
``lax.while_loop`` that stops when every economy in the batch is done, so a batch is never
iterated past its slowest member's need and no economy is iterated past its own.

Everything is computed in normalised units (values by the largest |value|/|cost|, each
good by its largest bundle entry) so that one set of step sizes fits all economies.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from . import menu

__all__ = ["DeviceSolution", "solve_smoothed_dual", "solve_batch", "feasible_logit_weights",
           "normalisation", "typical_agent_scale", "newton_steps"]

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


def typical_agent_scale(V: Array, bm: Array, C: Array, sm: Array, alpha: Array,
                        vs: Array) -> Array:
    """The (lower) median agent's money scale relative to ``vs``, in ``[1e-3, 1]``.

    An agent's scale is its largest ``|value|`` (buyers, divided by ``1 + alpha``) or
    ``|cost|`` (sellers) over its options; agents whose options are all worth 0 (padding)
    are left out, so padding does not move it.  The smoothing of
    :func:`solve_smoothed_dual` is measured in this unit: with the economy's largest
    ``|value|`` as the unit, a few large sellers (whose costs grow with the market they
    supply) would make the smoothing coarse for every buyer, and the prices the less
    accurate the larger the market."""
    sb, ss = menu.agent_values(V, bm, C, sm)
    s = jnp.concatenate([sb / (1.0 + alpha), ss]) / vs
    pos = s > 0
    k = pos.sum()
    srt = jnp.sort(jnp.where(pos, s, jnp.inf))
    med = srt[jnp.maximum((k - 1) // 2, 0)]
    # floor: the smoothing must stay above float32 round-off of the normalised surpluses
    return jnp.where(k > 0, jnp.clip(med, _MIN_TAU_UNIT, 1.0), 1.0).astype(V.dtype)


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


# ---------------------------------------------------------------------------------------
# projected Newton on g_tau, in a goods-major layout
# ---------------------------------------------------------------------------------------
# Agents' options are stored as (L, K, N) (goods, options, agents): the agent axis is the
# minor one, so every per-option operation (surplus, max / sum over options) vectorises
# over agents, and the L-term inner products are L fused multiply-adds instead of a tiny
# matrix product.  One iteration = one "full" pass (smoothed value, gradient, Hessian and
# the exact dual for the certificate) + a parallel line search on the segment to the
# projected Newton point, whose trials reuse the pass's surpluses.
_TRIALS = (1.0, 0.5, 0.2, 0.05)
_MIN_TAU_UNIT = 1e-3  # smallest typical-agent scale (relative to the largest |value|)
_MAX_STEP = 0.5      # cap on a Newton step (normalised price units, max-norm)


def newton_steps(n_goods: int) -> int:
    """Default Newton steps per smoothing level for ``n_goods`` goods:
    ``ceil(sqrt(L / 16))`` (1 up to 16 goods, 2 up to 64, 3 up to 144).

    The smoothing shrinks by a fixed factor per level, and a path-following method's
    Newton step only keeps up with a shrink of about ``1 - c / sqrt(nu)`` for a problem of
    size ``nu`` (Nesterov and Nemirovskii, "Interior-Point Polynomial Algorithms in
    Convex Programming", SIAM, 1994, Ch. 3); with more goods the iterate falls
    off the path of smoothed optima and the line search starts to reject.  The constant
    16 is measured: on random economies of 1,000 buyers, one step per level makes the whole
    solve (device and exact finish) fastest up to 15 goods, two from 20 to 50, three at 100.
    """
    return max(1, math.ceil(math.sqrt(n_goods / 16)))


def _tau_unit(V, bm, C, sm, alpha, vs, tau_unit: str) -> Array:
    if tau_unit == "economy":
        return jnp.asarray(1.0, V.dtype)
    if tau_unit != "agent":
        raise ValueError(f'tau_unit: expected "agent" or "economy", got {tau_unit!r}')
    return typical_agent_scale(V, bm, C, sm, alpha, vs)


def _dot_goods(Zt: Array, q: Array) -> Array:
    """``sum_l Zt[l] q[l]`` for ``Zt`` (L, K, N)."""
    out = Zt[0] * q[0]
    for l in range(1, Zt.shape[0]):
        out = out + Zt[l] * q[l]
    return out


def _lse_value(s: Array, tau: Array) -> Array:
    """``sum_n tau * logsumexp_k(s[k, n] / tau)`` (options on axis 0)."""
    m = s.max(0)
    return jnp.sum(m + tau * jnp.log(jnp.exp((s - m) / tau).sum(0)))


def _lse_full(s: Array, Zt: Array, tau: Array):
    """Smoothed value, exact max, expected bundle sum (L,) and logit covariance (L, L)."""
    m = s.max(0)
    e = jnp.exp((s - m) / tau)
    tot = e.sum(0)
    lam = e / tot
    val = jnp.sum(m + tau * jnp.log(tot))
    EZ = (lam[None] * Zt).sum(1)                         # (L, N) expected bundle per agent
    Zc = Zt - EZ[:, None, :]
    H = jnp.einsum("lkn,mkn->lm", lam[None] * Zc, Zc)   # sum_n Cov_n(z)
    return val, m.sum(), EZ.sum(1), H, lam


def _solve_newton(X, V, bm, Y, C, sm, alpha, R, *, stages, steps, tau0, tau_min, device_tol,
                  p0, tau_unit) -> DeviceSolution:
    vs, qs = normalisation(X, V, Y, C)
    unit = _tau_unit(V, bm, C, sm, alpha, vs, tau_unit)
    dt = V.dtype
    L = X.shape[-1]
    Xt = jnp.transpose(X / qs, (2, 1, 0))                # (L, Kb, N)
    Yt = jnp.transpose(Y / qs, (2, 1, 0))                # (L, Ks, F)
    Vt = (V / vs / (1.0 + alpha)).T                      # (Kb, N)
    Ct = (C / vs).T
    Vm = jnp.where(bm.T, Vt, -jnp.inf)                   # masked options never chosen
    Cm = jnp.where(sm.T, Ct, jnp.inf)
    Rn = R / qs
    eye = jnp.eye(L, dtype=dt)
    trials = jnp.asarray(_TRIALS, dt)

    def full(q, tau):
        sb, ss = Vm - _dot_goods(Xt, q), _dot_goods(Yt, q) - Cm
        vb, mb, ex, hb, lam = _lse_full(sb, Xt, tau)
        vsl, ms, ey, hs, mu = _lse_full(ss, Yt, tau)
        dual = mb + ms - q @ Rn
        return (vb + vsl - q @ Rn, ey - ex - Rn, (hb + hs) / tau, (lam, mu, dual, ex, ey),
                (sb, ss))

    def certify(aux):
        """Logit weights made feasible (buyers scaled towards option 0) and the relative
        duality gap ``(g(q) - primal) / max(|g|, |primal|, 1/(1+alpha))``."""
        lam, mu, dual, ex, ey = aux
        supply = ey - Rn
        ratio = jnp.where(ex > 0, jnp.clip(supply / jnp.where(ex > 0, ex, 1.0), 0.0, 1.0), 1.0)
        sc = jnp.min(ratio)
        primal = (sc * jnp.sum(jnp.where(bm.T, lam * Vt, 0.0))
                  - jnp.sum(jnp.where(sm.T, mu * Ct, 0.0)))
        denom = jnp.maximum(jnp.maximum(jnp.abs(dual), jnp.abs(primal)), 1.0 / (1.0 + alpha))
        return (dual - primal) / denom, sc, primal

    def newton(q, tau):
        f, g, H, aux, (sb, ss) = full(q, tau)
        free0 = (q > 0) | (g < 0)
        ridge = 1e-6 * jnp.trace(H) / L + 1e-20

        def face_step(free, fixed):
            # Newton step on the face where the ``fixed`` prices move to 0 and the held
            # ones (neither free nor fixed) stay: H_FF d_F = -g_F - H_FA d_A
            d_fixed = jnp.where(fixed, -q, 0.0)
            Hf = (jnp.where(free[:, None] & free[None, :], H, 0.0)
                  + eye * (ridge + jnp.where(free, 0.0, 1.0)))
            d = jnp.linalg.solve(Hf, jnp.where(free, -g - H @ d_fixed, 0.0))
            return jnp.where(free, d, d_fixed)

        def crossing(c):
            free, _, d, k = c
            return jnp.any(free & (q + d < 0)) & (k < L)

        def to_bound(c):
            # prices the step would drive below 0 go to 0 instead and the step is solved
            # again for the others: clipping them after the solve would leave the others'
            # step (which counted on them) pointing uphill
            free, fixed, d, k = c
            hit = free & (q + d < 0)
            free, fixed = free & ~hit, fixed | hit
            return free, fixed, face_step(free, fixed), k + 1

        none = jnp.zeros_like(free0)
        _, _, d, _ = jax.lax.while_loop(crossing, to_bound,
                                        (free0, none, face_step(free0, none), 0))
        d = jnp.where(jnp.all(jnp.isfinite(d)), d, -jnp.where(free0, g, 0.0))
        # flat regions (every agent far from indifference) make H ~ 0: cap the step
        d = d * jnp.minimum(1.0, _MAX_STEP / jnp.maximum(jnp.max(jnp.abs(d)), 1e-30))
        # the projected full step, then a search along the segment to it (feasible by
        # convexity): the surpluses there are ``s(q) - t X.d``, so the trials read two
        # (options x agents) arrays each instead of the L bundle slices
        d = jnp.maximum(q + d, 0.0) - q
        xb, ys = _dot_goods(Xt, d), _dot_goods(Yt, d)
        cands = q[None, :] + trials[:, None] * d[None, :]
        vals = jax.vmap(lambda t, c: _lse_value(sb - t * xb, tau) + _lse_value(ss + t * ys, tau)
                        - c @ Rn)(trials, cands)
        vals = jnp.where(jnp.isfinite(vals), vals, jnp.inf)
        i = jnp.argmin(vals)
        return jnp.where(vals[i] < f, cands[i], q), certify(aux)[0]

    def tau_at(s):
        frac = s / max(stages - 1, 1)
        return (unit * tau0 * (tau_min / tau0) ** frac).astype(dt)

    def body(c):
        q, done, iters, s, rel = c
        tau = tau_at(s)

        def step(cq, _):
            qn, r = newton(cq[0], tau)
            return (qn, cq[0], r), None

        (qn, qprev, rprev), _ = jax.lax.scan(step, (q, q, jnp.asarray(jnp.inf, dt)), None,
                                             length=steps)
        # the certificate of the last step's starting point: stop there if it is good enough
        newly = (~done) & (rprev <= device_tol)
        q = jnp.where(done, q, jnp.where(newly, qprev, qn))
        iters = iters + jnp.where(done, 0, steps)
        return q, done | newly, iters, s + 1, jnp.where(done, rel, rprev)

    def cond(c):
        return (c[3] < stages) & ~c[1]

    q0 = jnp.full((L,), 0.5, dt) if p0 is None else (p0 * qs / vs).astype(dt)
    init = (q0, jnp.array(False), jnp.array(0, jnp.int32), jnp.array(0),
            jnp.asarray(jnp.inf, dt))
    q, done, iters, s, _ = jax.lax.while_loop(cond, body, init)
    tau = tau_at(jnp.maximum(s - 1, 0))
    aux = full(q, tau)[3]
    rel, sc, primal = certify(aux)
    lam, mu = aux[0], aux[1]
    lam = (lam * sc).at[0].add(1.0 - sc)
    return DeviceSolution(prices=q * vs / qs, buyer_weights=lam.T, seller_weights=mu.T,
                          dual=aux[2] * vs, primal=primal * vs, rel_gap=rel,
                          converged=rel <= device_tol, iterations=iters, tau=tau)


def solve_smoothed_dual(X: Array, V: Array, bm: Array, Y: Array, C: Array, sm: Array,
                        alpha: Array, R: Array, *, solver: str = "newton",
                        stages: int | None = None, steps: int | None = None,
                        tau0: float = 0.05, tau_min: float = 1e-4,
                        learning_rate: float = 0.05, device_tol: float = 1e-5,
                        p0: Array | None = None, tau_unit: str | None = None) -> DeviceSolution:
    """Solve ONE economy (vmap for batches); at most ``stages * steps`` iterations.

    Defaults: ``stages=11`` and ``steps=newton_steps(L)`` for Newton (1 up to 16 goods;
    the smoothing shrinks by a factor of about 0.54 from stage to stage and the Newton
    steps follow it: enough for the exact finish to recognise the optimal tie structure),
    ``stages=5, steps=40`` for Adam.

    ``solver="newton"``: projected Newton steps on ``g_tau`` (the L x L Hessian is the
    logit covariance of the bundles / tau; the step capped at ``0.5`` in normalised price
    units) with a parallel line search over a few points of the segment to the projected
    Newton point (Bertsekas, "Nonlinear Programming", Section 2.3) -- an entropic
    interior-point-like path, few iterations per ``tau``.  The step is a Newton step on a
    face of ``p >= 0``: prices at 0 whose gradient is not negative stay, and prices that the
    step would drive below 0 are set to 0 and the step solved again for the rest (until
    none crosses; at most ``L`` solves).  Clipping them after one solve instead can leave
    the other prices' step pointing uphill, and the solve then stalls (with 20 or more
    goods, where many prices cross at once).  Each
    iteration also certifies its starting point (true duality gap of the feasible logit
    weights); after each stage an economy whose certificate is within ``device_tol`` is
    frozen.  ``solver="adam"``: projected optax Adam with step ``learning_rate *
    sqrt(tau/tau0)`` (pure first order; many more iterations for the same accuracy).

    ``tau0`` and ``tau_min`` are in units of the median agent's money scale
    (:func:`typical_agent_scale`, ``tau_unit="agent"``, the default for Newton) or of the
    economy's largest ``|value|`` (``tau_unit="economy"``, the default for Adam, whose
    step sizes are tuned to it).
    """
    if tau_unit is None:
        tau_unit = "agent" if solver == "newton" else "economy"
    if stages is None:
        stages = 11 if solver == "newton" else 5
    if steps is None:
        steps = newton_steps(X.shape[-1]) if solver == "newton" else 40
    if solver == "newton":
        return _solve_newton(X, V, bm, Y, C, sm, alpha, R, stages=stages, steps=steps,
                             tau0=tau0, tau_min=tau_min, device_tol=device_tol, p0=p0,
                             tau_unit=tau_unit)
    vs, qs = normalisation(X, V, Y, C)
    unit = _tau_unit(V, bm, C, sm, alpha, vs, tau_unit)
    Xn, Yn, Rn = X / qs, Y / qs, R / qs
    Vn, Cn = V / vs, C / vs
    L = X.shape[-1]
    dt = Vn.dtype
    pn0 = jnp.full((L,), 0.5, dt) if p0 is None else (p0 * qs / vs).astype(dt)
    opt = optax.adam(1.0)
    grad_fn = jax.grad(menu.smoothed_dual)

    def stage(carry, s):
        pn, st, done, iters, best = carry
        frac = s / jnp.maximum(stages - 1, 1)
        tau = (tau0 * (tau_min / tau0) ** frac).astype(dt)
        lr = (learning_rate * (tau / tau0) ** 0.5).astype(dt)
        tau = (unit * tau).astype(dt)

        def step(c, _):
            q, o = c
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

    init = (pn0, opt.init(pn0), jnp.array(False), jnp.array(0, jnp.int32),
            jnp.asarray(unit * tau0, dt))
    (pn, _, done, iters, tau), _ = jax.lax.while_loop(cond, body, (init, jnp.array(0)))
    lam, mu, dual, primal, rel = _certify(pn, Xn, Vn, bm, Yn, Cn, sm, alpha, Rn, tau)
    return DeviceSolution(prices=pn * vs / qs, buyer_weights=lam, seller_weights=mu,
                          dual=dual * vs, primal=primal * vs, rel_gap=rel,
                          converged=rel <= device_tol, iterations=iters, tau=tau)


def solve_batch(X, V, bm, Y, C, sm, alpha, R, **kw) -> DeviceSolution:
    """vmap of :func:`solve_smoothed_dual` over a leading batch axis."""
    return jax.vmap(lambda *a: solve_smoothed_dual(*a, **kw))(X, V, bm, Y, C, sm, alpha, R)
