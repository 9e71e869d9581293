"""Workload generators for the markup and rationing mechanisms (Milgrom and Watt, 2022).

* :func:`large_single_good_market` -- the large version of Milgrom & Watt's Table 1:
  ``v_n, q_n ~ U[0, 1]`` (per-unit value, exact quantity), one seller producing integers at
  marginal cost 0.50; up to ``10^6`` buyers, drawn on the device from a PRNG key.
* :func:`fixed_cost_economy` -- several goods, buyers with menus of indivisible bundles
  (complementarities: bundles of several goods are worth more than the sum of their parts)
  and sellers with fixed (start-up) costs and integer production plans.
"""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..economy import MenuEconomy

__all__ = ["large_single_good_market", "fixed_cost_economy"]


def _key(key: Any) -> jax.Array:
    if isinstance(key, (int, np.integer)):
        return jax.random.PRNGKey(int(key))
    try:
        return jnp.asarray(key) if not hasattr(key, "dtype") else key
    except Exception:
        raise TypeError(f"key: expected a jax PRNG key or an int seed, got {type(key).__name__}") from None


def _host_rng(key: Any) -> np.random.Generator:
    """A numpy generator seeded from a jax PRNG key (or an int): small workloads are drawn
    on the host, where per-shape compilation of jax.random would dominate."""
    if isinstance(key, (int, np.integer)):
        return np.random.default_rng(int(key))
    data = jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else key
    return np.random.default_rng(np.asarray(data).astype(np.uint64).ravel().tolist())


def _uniform53(key: jax.Array, shape: tuple[int, ...]) -> np.ndarray:
    """U[0,1) float64 with 53 random bits, drawn on the device as uint32 pairs (works with
    or without x64; float32 uniforms would tie at N ~ 10^4 and break exact tie-free scans)."""
    bits = np.asarray(jax.random.bits(key, (2,) + shape, dtype=jnp.uint32)).astype(np.uint64)
    return ((bits[0] >> np.uint64(5)) * 67108864.0 + (bits[1] >> np.uint64(6))) / 9007199254740992.0


def large_single_good_market(key: Any, n_buyers: int, *, marginal_cost: float = 0.5,
                             batch_shape: tuple[int, ...] = ()) -> MenuEconomy:
    """Table 1 at scale: ``N`` all-or-nothing buyers, one integer-production seller.

    Buyer ``n`` wants exactly ``q_n`` units at ``v_n`` per unit (menu ``{0, q_n}``, value
    ``q_n v_n``), ``v_n, q_n ~ U[0,1]`` i.i.d., drawn with ``jax.random`` from ``key`` (an int
    seed is accepted).  The seller produces any integer ``0..K`` at ``marginal_cost`` per
    unit, with ``K = floor(max sum q) + 1`` (more than anyone can demand, so the capacity
    never binds).  The theory (Milgrom & Watt) predicts a least markup ``O(1/N)``.

    Examples
    --------
    >>> import jax, jaxwalras as jw
    >>> eco = jw.examples.large_single_good_market(jax.random.PRNGKey(0), 1000)
    >>> eco.n_buyers, eco.n_sellers, eco.n_goods
    (1000, 1, 1)
    """
    if not isinstance(n_buyers, (int, np.integer)) or n_buyers < 1:
        raise ValueError(f"n_buyers: must be a positive integer, got {n_buyers!r}")
    if not (np.isfinite(marginal_cost) and marginal_cost > 0):
        raise ValueError(f"marginal_cost: must be a positive number, got {marginal_cost!r}")
    shape = tuple(int(s) for s in batch_shape) + (int(n_buyers),)
    k1, k2 = jax.random.split(_key(key))
    v = _uniform53(k1, shape)
    q = _uniform53(k2, shape)
    q = np.maximum(q, 1e-6)                     # exact quantities must be positive
    K = int(np.floor(q.sum(-1).max())) + 1
    units = np.arange(K + 1, dtype=np.float64)
    X = np.stack([np.zeros_like(q), q], -1)[..., None]          # (..., N, 2, 1)
    V = np.stack([np.zeros_like(q), q * v], -1)
    Y = units[None, :, None]                                      # (1, K+1, 1)
    C = float(marginal_cost) * units[None, :]
    return MenuEconomy(X, V, Y, C)


def fixed_cost_economy(key: Any, n_buyers: int = 12, n_sellers: int = 3, n_goods: int = 2, *,
                       buyer_options: int = 4, seller_options: int = 4,
                       batch_shape: tuple[int, ...] = ()) -> MenuEconomy:
    """Random multi-good economy with fixed costs and indivisible, complementary bundles.

    Buyers: option bundles have integer quantities in ``{0, 1, 2}`` per good; the value is
    ``sum_l w_l x_l`` (per-unit values ``w ~ U[0.5, 1.5]``) times ``1 + 0.3 (#goods - 1)``
    (complements).  Sellers: plans are ``s * {0,..,3}`` per good with scale ``s`` chosen so that
    capacity is about the total demand; cost = fixed cost ``U[0.5, 2]`` + marginal cost
    ``U[0.3, 0.9]`` per unit.  Option 0 is empty.  Neither side is convex.  ``key``: a jax
    PRNG key or an int seed (drawn on the host with numpy seeded from the key: these are
    small economies, where compiling jax.random per shape would cost more than drawing).
    """
    for nm, val in (("n_buyers", n_buyers), ("n_sellers", n_sellers), ("n_goods", n_goods),
                    ("buyer_options", buyer_options), ("seller_options", seller_options)):
        if not isinstance(val, (int, np.integer)) or val < 1:
            raise ValueError(f"{nm}: must be a positive integer, got {val!r}")
    b = tuple(int(s) for s in batch_shape)
    N, F, L, Kb, Ks = int(n_buyers), int(n_sellers), int(n_goods), int(buyer_options), int(seller_options)
    rng = _host_rng(key)
    Xq = rng.integers(0, 3, b + (N, Kb, L)).astype(np.float64)
    w = rng.uniform(0.5, 1.5, b + (N, 1, L))
    ngoods = (Xq > 0).sum(-1)
    V = (Xq * w).sum(-1) * (1.0 + 0.3 * np.maximum(ngoods - 1, 0))
    scale = max(1.0, np.ceil(N * 1.0 / (F * 1.5)))
    Yq = scale * rng.integers(0, 4, b + (F, Ks, L)).astype(np.float64)
    fixed = rng.uniform(0.5, 2.0, b + (F, 1))
    mc = rng.uniform(0.3, 0.9, b + (F, 1))
    C = np.where(Yq.sum(-1) > 0, fixed + mc * Yq.sum(-1), 0.0)
    Xq[..., 0, :] = 0.0
    V[..., 0] = 0.0
    Yq[..., 0, :] = 0.0
    C[..., 0] = 0.0
    return MenuEconomy(np.round(Xq, 12), np.round(V, 6), Yq, np.round(C, 6))
