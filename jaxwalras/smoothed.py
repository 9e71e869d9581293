"""The entropic-smoothed convexified equilibrium: differentiable in every input.

The dual of the convexified economy (:mod:`jaxwalras.convexified`) with every ``max`` replaced
by ``tau * logsumexp(. / tau)`` is smooth and strictly convex along the directions the
agents' bundles span; its minimiser is a logit (quantal-response) equilibrium whose weights
``softmax(surplus / tau)`` tend to the convexified equilibrium as ``tau -> 0`` (the
smoothing of Nesterov, 2005, applied to the dual of Milgrom and Watt's convexified LP).
Derivatives come from the implicit function theorem at the optimum, not from
differentiating the iterations.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .typing import ArrayLike
from .economy import MenuEconomy
from .kernels import menu
from .kernels.smoothed_dual import normalisation, solve_smoothed_dual

__all__ = ["SmoothedEquilibrium", "smoothed_equilibrium"]


# ----------------------------------------------------------------------------------------
# differentiable smoothed equilibrium (implicit differentiation)
# ----------------------------------------------------------------------------------------
class SmoothedEquilibrium(NamedTuple):
    """Entropic-smoothed convexified equilibrium (differentiable; leading axes = batch).

    Attributes
    ----------
    prices : jax.Array, shape (..., L)
    buyer_weights : jax.Array, shape (..., N, Kb)
        Logit choice probabilities ``softmax(surplus / (tau * value_scale))``.
    seller_weights : jax.Array, shape (..., F, Ks)
    welfare : jax.Array, shape (...)
        ``sum lam V - sum mu C``.
    excess_supply : jax.Array, shape (..., L)
        ``sum mu Y - sum lam X - R`` (zero on goods with a positive price at the smoothed
        optimum).
    """

    prices: Any
    buyer_weights: Any
    seller_weights: Any
    welfare: Any
    excess_supply: Any


def _smoothed_single(X, V, bm, Y, C, sm, alpha, R, *, tau: float, stages: int, steps: int):
    sg = jax.lax.stop_gradient
    sol = solve_smoothed_dual(sg(X), sg(V), bm, sg(Y), sg(C), sm, sg(alpha), sg(R),
                              stages=stages, steps=steps, tau0=max(0.05, tau), tau_min=tau,
                              device_tol=0.0, tau_unit="economy")
    vs, _ = normalisation(X, V, Y, C)   # tau is relative to the value scale (differentiable)
    t = vs * tau
    ps = sg(sol.prices)

    def grad_p(p, X, V, Y, C, alpha, R):
        return jax.grad(menu.smoothed_dual)(p, X, V, bm, Y, C, sm, alpha, R, t)

    G = grad_p(ps, X, V, Y, C, alpha, R)          # depends on the inputs (not on ps)
    H = sg(jax.jacfwd(grad_p)(ps, X, V, Y, C, alpha, R))
    L = ps.shape[0]
    # a good nobody can trade (no real option holds it) is free of charge; a good whose
    # smoothed dual is flat at the solution (zero curvature: every agent far from
    # indifference) has no unique price, so it keeps the solver's price with derivative 0
    traded = sg(jnp.any(jnp.where(bm[..., None], X, 0.0) > 0, (0, 1))
                | jnp.any(jnp.where(sm[..., None], Y, 0.0) > 0, (0, 1)))
    ps = jnp.where(traded, ps, 0.0)
    free = sg(((ps > 0) | (G < 0)) & (jnp.diagonal(H) > 0) & traded)
    both = free[:, None] & free[None, :]
    Hf = jnp.where(both, H, 0.0) + jnp.eye(L, dtype=H.dtype) * (
        jnp.where(free, 0.0, 1.0) + 1e-12 * jnp.trace(jnp.abs(H)) / L)
    # one Newton step from the (stopped) solution: value = solution (up to the residual),
    # derivative = -H_ff^{-1} d/dtheta grad_f g_tau  (implicit function theorem)
    d = jnp.where(free, jnp.linalg.solve(Hf, jnp.where(free, G, 0.0)), 0.0)
    p = ps - d
    # far from convergence (a very small solver budget) H can be near singular and the step
    # overshoot (below 0, or by orders of magnitude): then the value is the solver's own
    # projected price and its derivative 0 -- the step is taken only where it is a small
    # correction (at convergence it is of the order of the solver's residual)
    small = sg(jnp.all(jnp.isfinite(d) & (jnp.abs(d) <= 0.5 * jnp.maximum(jnp.abs(ps), t))
                       & (p >= 0)))
    p = jnp.where(small, p, ps)
    lam, mu = menu.smoothed_weights(p, X, V, bm, Y, C, sm, alpha, t)
    welfare = jnp.sum(lam * V) - jnp.sum(mu * C)
    ex = menu.excess_supply(lam, X, mu, Y, R)
    return SmoothedEquilibrium(p, lam, mu, welfare, ex)


#: magnitudes the smoothed solver accepts in float32 (inputs, their sums and products stay
#: inside float32's range); float64 (``jax.enable_x64``) takes the economy's full range
_F32_MAX, _F32_MIN = 1e35, 1e-35


def _concrete(x: Any) -> bool:
    return not isinstance(x, jax.core.Tracer)


def _check_concrete(economy: MenuEconomy, markup: Any, reserve: Any, *,
                    markup_name: str = "markup") -> None:
    """Validate the arguments that are concrete (traced ones pass through unchecked);
    ``markup_name`` is the caller's name of the markup argument."""
    if _concrete(markup):
        a = np.asarray(markup, dtype=np.float64)
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{markup_name}: must be finite, got {markup!r}")
        if a.size and a.min() <= -1:
            raise ValueError(f"{markup_name}: must be > -1 (buyers pay (1+markup) p), "
                             f"got {markup!r}")
    if _concrete(reserve):
        r = np.asarray(reserve, dtype=np.float64)
        if not np.all(np.isfinite(r)):
            raise ValueError(f"reserve: must be finite, got {reserve!r}")
    leaves = [getattr(economy, f) for f in ("buyer_bundles", "buyer_values", "seller_bundles",
                                            "seller_costs", "buyer_mask", "seller_mask")]
    if not all(_concrete(z) for z in leaves):
        return
    X, V, Y, C, bm, sm = (np.asarray(z) for z in leaves)
    if jnp.result_type(float) == jnp.float32:
        for arr, name in ((X, "buyer_bundles"), (V, "buyer_values"), (Y, "seller_bundles"),
                          (C, "seller_costs")):
            a = np.abs(arr.astype(np.float64))
            bad = (a > _F32_MAX) | ((a > 0) & (a < _F32_MIN))
            if bad.any():
                raise ValueError(f"{name}: found {arr[bad].ravel()[0]!r}; in float32 the smoothed "
                                 f"solver takes magnitudes in [{_F32_MIN:g}, {_F32_MAX:g}] (or "
                                 "0): change the unit of money or quantity, or run it under "
                                 "`with jax.enable_x64(True):`")
    if _concrete(reserve):
        made = np.any(np.where(sm[..., None], Y, 0.0) > 0, (-2, -3))     # batch + (L,)
        # the reserve may carry batch axes of its own (it broadcasts with the economy)
        r, made = np.broadcast_arrays(np.asarray(reserve, np.float64), made)
        bad = (r > 0) & ~made
        if bad.any():
            raise ValueError(f"reserve: a positive reserve {r[bad].ravel()[0]!r} of a good no seller "
                             "can produce; the convexified economy is infeasible")


def smoothed_equilibrium(economy: MenuEconomy, markup: ArrayLike = 0.0, reserve: ArrayLike = 0.0, *,
                         tau: float = 1e-3, stages: int = 6, steps: int = 5
                         ) -> SmoothedEquilibrium:
    """Entropic-smoothed convexified equilibrium, differentiable in every input.

    Minimises ``g_tau(p)`` (the dual with ``max`` replaced by
    ``tau_abs * logsumexp(. / tau_abs)``, ``tau_abs = tau * value_scale``) over ``p >= 0`` on
    the device, then attaches exact first derivatives by implicit differentiation of the
    optimality condition ``grad_f g_tau(p*; theta) = 0`` on the free (positive-price) goods:
    one Newton step ``p = p* - H_ff^{-1} grad_f g_tau(p*; theta)`` with ``p*`` and ``H`` held
    constant, so ``dp/dtheta = -H_ff^{-1} d grad_f/dtheta`` without differentiating the
    iterations.

    Parameters
    ----------
    economy : MenuEconomy
        May hold traced JAX arrays (build it with :meth:`MenuEconomy.replace`).
    markup, reserve : array_like, optional
        May be traced.
    tau : float
        Smoothing relative to the economy's value scale, in ``(0, 1]``.
    stages, steps : int
        Annealing stages and Newton steps per stage of the solver, each ``>= 1``.

    Returns
    -------
    SmoothedEquilibrium
        A pytree of JAX arrays (``prices``, logit ``buyer_weights`` / ``seller_weights``,
        ``welfare``, ``excess_supply``).

    Raises
    ------
    TypeError
        ``economy`` is not a MenuEconomy.
    ValueError
        ``tau`` outside ``(0, 1]``; ``stages`` or ``steps`` not an integer ``>= 1``; a
        concrete ``markup`` that is not finite or ``<= -1``; a concrete ``reserve`` that is
        not finite, or positive for a good no seller can produce; in float32, a value,
        cost or quantity of magnitude outside ``[1e-35, 1e35]`` (zero allowed).  Traced
        arguments are not checked.

    Notes
    -----
    Usable under ``jax.grad`` / ``jax.jit`` / ``jax.vmap``.  Runs in the default JAX float
    dtype (enable x64 for float64).  As ``tau -> 0`` the solution tends to the convexified
    equilibrium (the weights to a tie-splitting mix).  A good that no agent can trade is
    priced 0; where the smoothed dual is flat in a good at the solution (no unique price)
    the solver's price is kept and its derivative is 0.  Negative costs, menus holding only
    option 0 and values anywhere in the accepted range give finite results.

    Examples
    --------
    >>> import jax, jaxwalras as jw
    >>> eco = jw.examples.milgrom_watt_table1()
    >>> s = jw.smoothed_equilibrium(eco, tau=1e-3)
    >>> round(float(s.prices[0]), 2)
    0.5
    """
    if not isinstance(economy, MenuEconomy):
        raise TypeError(f"economy: expected a jaxwalras.MenuEconomy, got {type(economy).__name__}")
    if isinstance(tau, bool) or not isinstance(tau, (int, float, np.integer, np.floating)) \
            or not (np.isfinite(tau) and 0 < tau <= 1):
        raise ValueError(f"tau: must be a number in (0, 1] (relative to the value scale), got {tau!r}")
    for nm, val in (("stages", stages), ("steps", steps)):
        if isinstance(val, bool) or not isinstance(val, (int, np.integer)) or val < 1:
            raise ValueError(f"{nm}: must be an integer >= 1, got {val!r}")
    _check_concrete(economy, markup, reserve)
    bshape = economy.batch_shape
    L = economy.n_goods
    a = jnp.asarray(markup, dtype=jnp.result_type(float))
    r = jnp.asarray(reserve, dtype=jnp.result_type(float))
    if r.ndim == 0:
        r = r[None]
    batch = jnp.broadcast_shapes(bshape, a.shape, r.shape[:-1])
    fields = [jnp.asarray(getattr(economy, f)) for f in
              ("buyer_bundles", "buyer_values", "buyer_mask", "seller_bundles", "seller_costs",
               "seller_mask")]
    dt = jnp.result_type(float)
    fields = [f if f.dtype == bool else f.astype(dt) for f in fields]
    nb = len(bshape)
    fields = [jnp.broadcast_to(f, batch + f.shape[nb:]) for f in fields]
    a = jnp.broadcast_to(a, batch)
    r = jnp.broadcast_to(r, batch + (L,))
    fn: Callable[..., Any] = lambda X, V, bm, Y, C, sm, al, R: _smoothed_single(  # noqa: E731
        X, V, bm, Y, C, sm, al, R, tau=float(tau), stages=int(stages), steps=int(steps))
    for _ in batch:
        fn = jax.vmap(fn)
    return fn(*fields, a, r)
