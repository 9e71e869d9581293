"""Host-side functions say so under JAX tracing.

Most public functions of the library run exact steps on the host (max flows, HiGHS LPs and
MILPs, float64 certificates), so they cannot be traced by ``jax.jit``, ``jax.vmap`` or
``jax.grad``.  :func:`host_function` wraps such a function so that a traced argument gives
one clear error that names the jittable alternative, instead of a raw tracer error from deep
inside numpy.  :data:`HOST_FUNCTIONS` is the one table of which public function is which.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, TypeVar

import jax

__all__ = ["host_function", "HOST_FUNCTIONS", "JITTABLE", "has_tracer"]

F = TypeVar("F", bound=Callable[..., Any])

_KERNELS = "the device kernels in jaxwalras.kernels"

#: public host function -> what to use under jit / vmap / grad instead
HOST_FUNCTIONS: dict[str, str] = {
    "buyer_optimal_equilibrium": "jaxwalras.kernels.greedy (bundles, long steps, jumps) and "
                                 "jaxwalras.kernels.cuts (left-most cuts), which are jittable",
    "reoptimize": "jaxwalras.kernels.greedy and jaxwalras.kernels.cuts",
    "preferred_bundles": "jaxwalras.kernels.greedy.preferred_bundles (one market; vmap it)",
    "indirect_utility": "jaxwalras.kernels.greedy.preferred_bundles(...).utility (one "
                        "market; vmap it)",
    "lyapunov": "jaxwalras.preferred_bundles(...).utility summed with s.p (jittable)",
    "check_walrasian": "a host call after the traced computation",
    "is_walrasian": "a host call after the traced computation",
    "lp_min_walrasian_prices": "jaxwalras.buyer_optimal_equilibrium outside jit",
    "is_buyer_optimal": "a host call after the traced computation",
    "convexified_equilibrium": "jaxwalras.smoothed_equilibrium (differentiable, jittable)",
    "demand_gaps": "jaxwalras.kernels.menu.buyer_surplus / seller_profit (jittable)",
    "dual_objective": "jaxwalras.kernels.menu.dual_value (jittable)",
    "shapley_folkman_rounding": "a host call on the solution of smoothed_equilibrium",
    "worst_case_reserve": "a host call before tracing",
    "markup_mechanism": "jaxwalras.smoothed_equilibrium for differentiable outcomes",
    "rationing_mechanism": "jaxwalras.smoothed_equilibrium for differentiable outcomes",
    "welfare_bound": "a host call after the traced computation",
    "efficient_allocation": "a host call (it solves a MILP)",
    "uplift": "a host call after the traced computation",
    "load_pglib_uc": "a host call before tracing (it reads a file)",
    "optimal_allocation": "jaxwalras.kernels.setfunc.welfare_dp (jittable)",
    "walrasian_equilibrium": "jaxwalras.kernels.setfunc.item_demand / lyapunov (jittable)",
    "ascending_auction": "jaxwalras.kernels.setfunc.ascending_auction (jittable)",
    "combinatorial_walrasian_equilibrium": "jaxwalras.kernels.setfunc.cwe_dynamics "
                                           "(jittable)",
    "best_item_price_welfare": "a host call (it enumerates allocations)",
    "check_cwe": "a host call after the traced computation",
    "allocation_welfare": "jnp.take_along_axis on the value table (jittable)",
    "is_gross_substitutes": "a host call",
    "item_demand": "jaxwalras.kernels.setfunc.item_demand (jittable)",
    "posted_markup_outcomes": "jaxwalras.per_good_smoothed_equilibrium (jittable)",
    "evaluate_markups": "jaxwalras.per_good_smoothed_equilibrium or "
                        "jaxwalras.smoothed_equilibrium (jittable)",
    "tune_markups": "a host call (it runs optax and the exact mechanisms)",
    "policy_markups": "the rule's formula in jax.numpy (uniform: a; per good: a_l; "
                      "inverse_n: c / N)",
    "exact_markup_quantile": "a host call on exact least markups",
    "tune_reserves": "a host call (it runs optax and the exact mechanisms)",
    "evaluate_reserves": "jaxwalras.smoothed_equilibrium with reserve=-R (jittable)",
    "reserve_thresholds": "a host call (it runs the exact mechanisms)",
    "bundle_demand": "jaxwalras.kernels.setfunc.bundle_demand (jittable)",
    "resolve_devices": "a host call before tracing (it picks devices)",
    "use_devices": "a host call before tracing (a with block around the host calls)",
    "warmup": "a host call before tracing (it compiles the batched kernels)",
}

#: public functions that CAN be traced by jax.jit / vmap / grad
JITTABLE = ("smoothed_equilibrium", "equilibrium_prices", "buyer_optimal_prices",
            "per_good_smoothed_equilibrium")


def has_tracer(*trees: Any) -> bool:
    """Whether any leaf of the given pytrees is a JAX tracer."""
    return any(isinstance(leaf, jax.core.Tracer)
               for tree in trees for leaf in jax.tree_util.tree_leaves(tree))


def host_function(fn: F, alternative: str | None = None) -> F:
    """``fn`` raising one clear ``TypeError`` when called with traced arguments."""
    alt = alternative or HOST_FUNCTIONS.get(fn.__name__, _KERNELS)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if has_tracer(args, kwargs):
            raise TypeError(
                f"jaxwalras.{fn.__name__} runs exact host steps (numpy, max flows, HiGHS, "
                f"float64 certificates) and cannot be traced by jax.jit / jax.vmap / "
                f"jax.grad: call it outside the transformation (it is batched already: pass "
                f"the whole batch); under jit use {alt}")
        return fn(*args, **kwargs)

    wrapper.__jaxwalras_host__ = True  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]
