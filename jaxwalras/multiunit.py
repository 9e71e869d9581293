"""Multi-unit matching markets (seed 001; DESIGN §1): the market type and its kernels' API."""
from __future__ import annotations

from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxwalras._validation import as_int_array, broadcast_batch
from jaxwalras.kernels import greedy as _greedy

__all__ = ["MultiUnitMarket", "stack_markets", "preferred_bundles", "PreferredBundles",
           "indirect_utility", "lyapunov"]

# Values, prices and supplies must stay far from int32 overflow in kernel sums
# (sum_j s_j * u_ij) so we bound them at validation time.
MAX_VALUE = 2**24
MAX_UNITS = 2**16


@jax.tree_util.register_pytree_node_class
class MultiUnitMarket:
    """A multi-unit matching market, or a batch of them (leading axes).

    Object ``j`` has integer supply ``s_j >= 0``; buyer ``i`` has integer demand
    ``d_i >= 0`` and integer value ``v_ij >= 0`` per unit of ``j``; buyers have truncated
    additive valuations (DESIGN §1; Vazquez et al., seed 001).

    Args:
      values: ``(..., n, m)`` non-negative integers (at most ``2**24``).
      demands: ``(..., n)`` non-negative integers (at most ``2**16``).
      supplies: ``(..., m)`` non-negative integers (at most ``2**16``).
      Leading batch axes of the three arguments must broadcast to one batch shape.

    Zero buyers, zero objects, zero demands and zero supplies are all valid. The arrays
    are stored as int32 ``jax.Array`` s; the class is a pytree, so markets pass through
    ``jax.jit`` / ``jax.vmap`` and ``jax.tree_util`` functions.

    Example:
      >>> import jaxwalras as jw
      >>> mkt = jw.MultiUnitMarket(values=[[3, 4], [2, 1]], demands=[1, 3], supplies=[1, 1])
      >>> mkt.n_buyers, mkt.n_objects, mkt.batch_shape
      (2, 2, ())
    """

    values: jax.Array
    demands: jax.Array
    supplies: jax.Array

    def __init__(self, values: Any, demands: Any, supplies: Any):
        v = as_int_array(values, "values", min_ndim=2, max_abs=MAX_VALUE)
        d = as_int_array(demands, "demands", min_ndim=1, max_abs=MAX_UNITS)
        s = as_int_array(supplies, "supplies", min_ndim=1, max_abs=MAX_UNITS)
        n, m = v.shape[-2:]
        if d.shape[-1] != n:
            raise ValueError(f"demands: last axis has {d.shape[-1]} entries but values has "
                             f"{n} buyers (values shape {v.shape}, demands shape {d.shape})")
        if s.shape[-1] != m:
            raise ValueError(f"supplies: last axis has {s.shape[-1]} entries but values has "
                             f"{m} objects (values shape {v.shape}, supplies shape {s.shape})")
        batch = broadcast_batch({"values": v.shape[:-2], "demands": d.shape[:-1],
                                 "supplies": s.shape[:-1]})
        self.values = jnp.asarray(np.broadcast_to(v, batch + (n, m)), jnp.int32)
        self.demands = jnp.asarray(np.broadcast_to(d, batch + (n,)), jnp.int32)
        self.supplies = jnp.asarray(np.broadcast_to(s, batch + (m,)), jnp.int32)

    # -- pytree protocol (no validation when JAX rebuilds the object) -----------------
    def tree_flatten(self):
        return (self.values, self.demands, self.supplies), None

    @classmethod
    def tree_unflatten(cls, aux, children):
        obj = object.__new__(cls)
        obj.values, obj.demands, obj.supplies = children
        return obj

    # -- shape helpers -----------------------------------------------------------------
    @property
    def batch_shape(self) -> tuple[int, ...]:
        return tuple(self.values.shape[:-2])

    @property
    def n_buyers(self) -> int:
        return int(self.values.shape[-2])

    @property
    def n_objects(self) -> int:
        return int(self.values.shape[-1])

    def __getitem__(self, idx) -> "MultiUnitMarket":
        if not self.batch_shape:
            raise IndexError("this market has no batch axes to index")
        return jax.tree_util.tree_map(lambda a: a[idx], self)

    def reshape_batch(self, shape: Sequence[int]) -> "MultiUnitMarket":
        shape = tuple(shape)
        n, m = self.n_buyers, self.n_objects
        return MultiUnitMarket.tree_unflatten(None, (
            self.values.reshape(shape + (n, m)), self.demands.reshape(shape + (n,)),
            self.supplies.reshape(shape + (m,))))

    def numpy(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(values, demands, supplies)`` as int64 numpy arrays."""
        return (np.asarray(self.values, np.int64), np.asarray(self.demands, np.int64),
                np.asarray(self.supplies, np.int64))

    def __repr__(self) -> str:
        return (f"MultiUnitMarket(batch_shape={self.batch_shape}, n_buyers={self.n_buyers}, "
                f"n_objects={self.n_objects})")


def stack_markets(markets: Sequence[MultiUnitMarket]) -> MultiUnitMarket:
    """Stack single markets of different sizes into one padded batch ``(len(markets), ...)``.

    Padding buyers have zero demand and padding objects zero supply (and all-zero values),
    so they change nothing: buyer-optimal prices of padding objects are 0 and padding
    buyers receive nothing.
    """
    markets = list(markets)
    if not markets:
        raise ValueError("markets: need at least one market to stack")
    for k, mk in enumerate(markets):
        if not isinstance(mk, MultiUnitMarket):
            raise TypeError(f"markets[{k}]: expected MultiUnitMarket, got {type(mk).__name__}")
        if mk.batch_shape:
            raise ValueError(f"markets[{k}]: stack single markets, got batch shape {mk.batch_shape}")
    n = max(mk.n_buyers for mk in markets)
    m = max(mk.n_objects for mk in markets)
    B = len(markets)
    v = np.zeros((B, n, m), np.int64)
    d = np.zeros((B, n), np.int64)
    s = np.zeros((B, m), np.int64)
    for k, mk in enumerate(markets):
        vk, dk, sk = mk.numpy()
        v[k, :vk.shape[0], :vk.shape[1]] = vk
        d[k, :dk.shape[0]] = dk
        s[k, :sk.shape[0]] = sk
    return MultiUnitMarket(v, d, s)


class PreferredBundles(_greedy.Bundles):
    """Greedy preferred-bundle structure (see :func:`preferred_bundles`)."""


def _check_prices(market: MultiUnitMarket, prices: Any, name: str = "prices") -> jax.Array:
    p = as_int_array(prices, name, min_ndim=1, max_abs=MAX_VALUE)
    if p.shape[-1] != market.n_objects:
        raise ValueError(f"{name}: last axis has {p.shape[-1]} entries, the market has "
                         f"{market.n_objects} objects")
    batch = broadcast_batch({"market": market.batch_shape, name: p.shape[:-1]})
    if batch != market.batch_shape:
        raise ValueError(f"{name}: batch shape {p.shape[:-1]} does not match the market's "
                         f"batch shape {market.batch_shape}")
    return jnp.asarray(np.broadcast_to(p, batch + (market.n_objects,)), jnp.int32)


@jax.jit
def _bundles_flat(v, d, s, p):
    return jax.vmap(_greedy.preferred_bundles)(v, d, s, p)


def preferred_bundles(market: MultiUnitMarket, prices: Any) -> PreferredBundles:
    """Greedy preferred-bundle structure of every buyer at integer ``prices``.

    Runs as one jitted, vmapped device kernel over the whole batch. Returns
    ``strict`` (F, ``(..., n, m)`` bool), ``marginal`` (M), ``r`` (units from M in case A),
    ``mu`` (marginal payoff), ``utility`` (indirect utility ``V_i(p)``) and ``case_a``.
    See DESIGN §1 and :mod:`jaxwalras.kernels.greedy` for the definitions.

    Example:
      >>> import jaxwalras as jw
      >>> mkt = jw.MultiUnitMarket([[5, 3]], demands=[2], supplies=[1, 1])
      >>> b = jw.preferred_bundles(mkt, [0, 0])
      >>> b.strict.tolist(), int(b.utility[0])
      ([[True, True]], 8)
    """
    if not isinstance(market, MultiUnitMarket):
        raise TypeError(f"market: expected MultiUnitMarket, got {type(market).__name__}")
    p = _check_prices(market, prices)
    batch = market.batch_shape
    n, m = market.n_buyers, market.n_objects
    B = int(np.prod(batch, dtype=np.int64))
    out = _bundles_flat(market.values.reshape(B, n, m), market.demands.reshape(B, n),
                        market.supplies.reshape(B, m), p.reshape(B, m))
    return PreferredBundles(*(x.reshape(batch + x.shape[1:]) for x in out))


def indirect_utility(market: MultiUnitMarket, prices: Any) -> jax.Array:
    """``V_i(p)``, shape ``(..., n)``."""
    return preferred_bundles(market, prices).utility


def lyapunov(market: MultiUnitMarket, prices: Any) -> np.ndarray:
    """``Lyap(p) = sum_j s_j p_j + sum_i V_i(p)`` (int64, shape ``batch_shape``).

    Walrasian prices are exactly its minimisers over ``p >= 0``; the buyer-optimal prices
    are the least minimiser (DESIGN §1).
    """
    p = np.asarray(_check_prices(market, prices), np.int64)
    util = np.asarray(indirect_utility(market, p), np.int64)
    return (np.asarray(market.supplies, np.int64) * p).sum(-1) + util.sum(-1)
