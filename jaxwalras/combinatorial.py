"""Combinatorial markets: item-price Walrasian equilibria and bundling (seed 002).

``m`` indivisible items (``m <= 16``), ``n`` buyers with monotone set-function values stored
as dense tables over item bitmasks, ``values[..., i, S]`` (bit ``j`` of ``S`` <=> item ``j``).

* :class:`SetFunctionMarket` -- validated market (pytree), constructors from XOR bids, XOS
  clauses, additive, unit-demand, budget-additive and single-minded valuations.
* :func:`item_demand`, :func:`bundle_demand` -- batched device demand queries.
* :func:`optimal_allocation` -- exact welfare maximisation (subset DP on the device).
* :func:`walrasian_equilibrium` -- exact existence test through the configuration LP
  (Bikhchandani & Mamer 1997), prices from its dual, verified on the host.
* :func:`ascending_auction` -- Gul--Stacchetti ascending auction (gross substitutes).
* :func:`combinatorial_walrasian_equilibrium` -- bundles + bundle prices with at least half
  the welfare of a start allocation (Feldman, Gravin & Lucier, STOC 2013).
* :func:`best_item_price_welfare` -- best welfare of any item-price equilibrium that need
  not clear the market (small markets), the benchmark bundling beats.
"""
from __future__ import annotations

import dataclasses
import functools
import itertools
import math
from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from scipy.optimize import linprog

from . import _validation as _v
from ._shapes import padded_size
from .kernels import setfunc as _k

__all__ = [
    "SetFunctionMarket", "DemandResult", "OptimalAllocationResult", "WalrasianResult",
    "ItemPriceAuctionResult", "CWEResult", "ItemPriceWelfareResult", "item_demand", "bundle_demand",
    "optimal_allocation", "walrasian_equilibrium", "ascending_auction",
    "combinatorial_walrasian_equilibrium", "best_item_price_welfare", "check_cwe",
    "allocation_welfare", "is_gross_substitutes", "demo_combinatorial", "MAX_ITEMS",
]

MAX_ITEMS = 16


# ============================================================================ the market
def _bits(m: int) -> np.ndarray:
    return _k._bits_np(m)


def _set_str(s: int, m: int) -> str:
    return "{" + ",".join(str(j) for j in range(m) if (s >> j) & 1) + "}"


@jax.tree_util.register_pytree_node_class
@dataclasses.dataclass(frozen=True, init=False)
class SetFunctionMarket:
    """Buyers with monotone set-function values over ``m <= 16`` indivisible items.

    ``values`` has shape ``(..., n, 2**m)``: ``values[..., i, S]`` is buyer ``i``'s value for
    the set with bitmask ``S``. Validated on construction: finite, ``v_i(empty) = 0``,
    non-negative and monotone (``v_i(S) <= v_i(S + j)``; free disposal). Any leading axes are
    batch axes. Stored on the host as float64 (exact steps use it; device kernels cast to
    JAX's default float dtype).

    Examples
    --------
    >>> import jaxwalras as jw
    >>> shoes = jw.SetFunctionMarket.from_xor([[({0, 1}, 10)], [({0}, 6), ({1}, 6)]], m=2)
    >>> shoes.values.tolist()
    [[0.0, 0.0, 0.0, 10.0], [0.0, 6.0, 6.0, 6.0]]
    """

    values: np.ndarray

    def __init__(self, values: Any, *, _validate: bool = True) -> None:
        if _validate:
            values = _validate_table(values, "values")
        object.__setattr__(self, "values", values)

    # -- pytree ---------------------------------------------------------------------
    def tree_flatten(self):
        return (self.values,), None

    @classmethod
    def tree_unflatten(cls, aux, children):
        return cls(children[0], _validate=False)

    # -- shape ----------------------------------------------------------------------
    @property
    def n(self) -> int:
        """Number of buyers."""
        return int(self.values.shape[-2])

    @property
    def m(self) -> int:
        """Number of items."""
        return int(self.values.shape[-1]).bit_length() - 1

    @property
    def batch_shape(self) -> tuple[int, ...]:
        return tuple(self.values.shape[:-2])

    def __getitem__(self, idx: Any) -> "SetFunctionMarket":
        """Index the batch axes (``cm[3]``, ``cm[:, None]``); the buyer/set axes are kept."""
        if not isinstance(idx, tuple):
            idx = (idx,)
        if any(i is Ellipsis for i in idx):
            raise IndexError("SetFunctionMarket indexing: Ellipsis is not supported; index "
                             "the batch axes explicitly")
        if len(idx) - sum(i is None for i in idx) > len(self.batch_shape):
            raise IndexError(f"SetFunctionMarket indexing: too many indices for batch shape "
                             f"{self.batch_shape}")
        return SetFunctionMarket(np.asarray(self.values)[idx + (Ellipsis,)], _validate=False)

    def __repr__(self) -> str:
        return f"SetFunctionMarket(batch_shape={self.batch_shape}, n={self.n}, m={self.m})"

    # -- constructors ---------------------------------------------------------------
    @classmethod
    def from_xor(cls, bids: Sequence[Sequence[tuple[Any, float]]], m: int) -> "SetFunctionMarket":
        """One market from XOR bids: ``bids[i]`` is a list of ``(items, value)`` pairs, items
        an iterable of item indices; ``v_i(S) = max{value : items subset S}`` (0 if none)."""
        m = _check_m(m)
        if isinstance(bids, (str, bytes)) or not hasattr(bids, "__len__") or len(bids) == 0:
            raise ValueError("bids: need a non-empty list (one list of (items, value) per buyer)")
        n = len(bids)
        table = np.zeros((n, 2 ** m))
        for i, blist in enumerate(bids):
            for b, bid in enumerate(blist):
                try:
                    items, val = bid
                except (TypeError, ValueError):
                    raise TypeError(f"bids[{i}][{b}]: expected an (items, value) pair, got "
                                    f"{bid!r}") from None
                mask = _items_to_mask(items, m, f"bids[{i}][{b}]")
                val = float(val)
                if not math.isfinite(val) or val < 0:
                    raise ValueError(f"bids[{i}][{b}]: value must be finite and >= 0, got {val}")
                table[i, mask] = max(table[i, mask], val)
        return cls(_superset_max(table, m))

    @classmethod
    def from_xor_arrays(cls, masks: Any, bid_values: Any, m: int) -> "SetFunctionMarket":
        """Batched XOR bids: ``masks (..., n, K)`` int bitmasks (``0`` = padding, ignored) and
        ``bid_values (..., n, K)`` non-negative values."""
        m = _check_m(m)
        masks = _v.as_int_array(masks, "masks", min_ndim=2)
        vals = _v.as_float_array(bid_values, "bid_values", min_ndim=2, nonnegative=True)
        if masks.shape != vals.shape:
            raise ValueError(f"masks and bid_values must have the same shape, got {masks.shape} "
                             f"and {vals.shape}")
        if masks.size and masks.max() >= 2 ** m:
            raise ValueError(f"masks: bitmasks must be < 2**m = {2 ** m}, found {masks.max()}")
        table = np.zeros(masks.shape[:-1] + (2 ** m,))
        flat_t = table.reshape(-1, 2 ** m)
        fm, fv = masks.reshape(-1, masks.shape[-1]), vals.reshape(-1, vals.shape[-1])
        rows = np.repeat(np.arange(fm.shape[0]), fm.shape[1])
        np.maximum.at(flat_t, (rows, fm.ravel()), np.where(fm.ravel() == 0, 0.0, fv.ravel()))
        return cls(_superset_max(flat_t.reshape(table.shape), m))

    @classmethod
    def from_xos(cls, clauses: Any) -> "SetFunctionMarket":
        """XOS (fractionally subadditive) values from additive clauses ``(..., n, K, m)``:
        ``v_i(S) = max_k sum_{j in S} w_ikj``."""
        w = _v.as_float_array(clauses, "clauses", min_ndim=3, nonnegative=True)
        m = _check_m(w.shape[-1])
        return cls(np.max(w @ _bits(m).T, axis=-2))

    @classmethod
    def additive(cls, weights: Any) -> "SetFunctionMarket":
        """Additive values ``v_i(S) = sum_{j in S} w_ij``; ``weights (..., n, m) >= 0``."""
        w = _v.as_float_array(weights, "weights", min_ndim=2, nonnegative=True)
        m = _check_m(w.shape[-1])
        return cls(w @ _bits(m).T)

    @classmethod
    def unit_demand(cls, weights: Any) -> "SetFunctionMarket":
        """Unit-demand values ``v_i(S) = max_{j in S} w_ij`` (gross substitutes)."""
        w = _v.as_float_array(weights, "weights", min_ndim=2, nonnegative=True)
        m = _check_m(w.shape[-1])
        b = _bits(m).astype(bool)
        return cls(np.max(np.where(b, w[..., None, :], 0.0), axis=-1))

    @classmethod
    def budget_additive(cls, weights: Any, budgets: Any) -> "SetFunctionMarket":
        """Budget-additive values ``v_i(S) = min(B_i, sum_{j in S} w_ij)``."""
        w = _v.as_float_array(weights, "weights", min_ndim=2, nonnegative=True)
        b = _v.as_float_array(budgets, "budgets", min_ndim=1, nonnegative=True)
        _v.check_trailing_shape(b, "budgets", (w.shape[-2],), ("n",))
        m = _check_m(w.shape[-1])
        return cls(np.minimum(w @ _bits(m).T, b[..., None]))

    @classmethod
    def single_minded(cls, sets: Any, values: Any, m: int) -> "SetFunctionMarket":
        """Single-minded buyers: ``sets (..., n)`` bitmasks, ``values (..., n)``;
        ``v_i(S) = values_i`` if ``sets_i subset S`` else 0."""
        m = _check_m(m)
        s = _v.as_int_array(sets, "sets", min_ndim=1)
        val = _v.as_float_array(values, "values", min_ndim=1, nonnegative=True)
        if s.shape != val.shape:
            raise ValueError(f"sets and values must have the same shape, got {s.shape} and "
                             f"{val.shape}")
        if s.size and (s.max() >= 2 ** m or s.min() < 1):
            raise ValueError(f"sets: bitmasks must be in [1, 2**m - 1] = [1, {2 ** m - 1}]")
        allsets = np.arange(2 ** m)
        contains = (allsets & s[..., None]) == s[..., None]
        return cls(np.where(contains, val[..., None], 0.0))


def _check_m(m: Any) -> int:
    if isinstance(m, bool) or not isinstance(m, (int, np.integer)):
        raise TypeError(f"m: number of items must be an int, got {type(m).__name__}")
    if not 1 <= int(m) <= MAX_ITEMS:
        raise ValueError(f"m: number of items must be between 1 and {MAX_ITEMS}, got {m}")
    return int(m)


def _items_to_mask(items: Any, m: int, name: str) -> int:
    try:
        it = list(items)
    except TypeError:
        raise TypeError(f"{name}: items must be an iterable of item indices (e.g. {{0, 2}}), "
                        f"got {items!r}") from None
    mask = 0
    for j in it:
        if isinstance(j, bool) or not isinstance(j, (int, np.integer)) or not 0 <= j < m:
            raise ValueError(f"{name}: item {j!r} is not an integer in [0, {m - 1}]")
        mask |= 1 << int(j)
    if mask == 0:
        raise ValueError(f"{name}: a bid needs at least one item")
    return mask


def _superset_max(table: np.ndarray, m: int) -> np.ndarray:
    """``out[S] = max_{T subset S} table[T]`` (free disposal closure), ``O(m 2^m)``."""
    out = table.copy()
    for j in range(m):
        t = out.reshape(out.shape[:-1] + (2 ** (m - j - 1), 2, 2 ** j))
        t[..., 1, :] = np.maximum(t[..., 1, :], t[..., 0, :])
    return out


def _validate_table(values: Any, name: str) -> np.ndarray:
    if isinstance(values, SetFunctionMarket):
        return values.values
    arr = _v.as_float_array(values, name, min_ndim=2)
    t = arr.shape[-1]
    if t < 2 or t & (t - 1):
        raise ValueError(f"{name}: last axis must have 2**m entries (one per item set, "
                         f"1 <= m <= {MAX_ITEMS}), got {t}")
    m = t.bit_length() - 1
    if m > MAX_ITEMS:
        raise ValueError(f"{name}: at most {MAX_ITEMS} items (2**{MAX_ITEMS} sets) are "
                         f"supported, got m = {m}")
    if arr.shape[-2] < 1:
        raise ValueError(f"{name}: need at least one buyer (axis -2), got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name}: empty batch, shape {arr.shape}")
    empty = arr[..., 0]
    if np.any(empty != 0):
        idx = np.argwhere(empty != 0)[0]
        raise ValueError(f"{name}: v(empty set) must be 0; buyer {idx[-1]} "
                         f"(batch index {tuple(idx[:-1])}) has {empty[tuple(idx)]}")
    scale = max(1.0, float(np.abs(arr).max()))
    for j in range(m):
        t3 = arr.reshape(arr.shape[:-1] + (2 ** (m - j - 1), 2, 2 ** j))
        drop = t3[..., 0, :] - t3[..., 1, :]
        if np.any(drop > 1e-12 * scale):
            pos = np.argwhere(drop > 1e-12 * scale)[0]
            hi, lo = int(pos[-2]), int(pos[-1])
            s_without = (hi << (j + 1)) | lo
            s_with = s_without | (1 << j)
            bidx = tuple(int(x) for x in pos[:-3])
            i = int(pos[-3])
            raise ValueError(
                f"{name}: values must be monotone (free disposal) but buyer {i} (batch index "
                f"{bidx}) has v({_set_str(s_without, m)}) = {arr[bidx + (i, s_without)]} > "
                f"v({_set_str(s_with, m)}) = {arr[bidx + (i, s_with)]}")
    return arr


def _as_market(market: Any, name: str = "market") -> SetFunctionMarket:
    if isinstance(market, SetFunctionMarket):
        return market
    raise TypeError(f"{name}: expected a jw.SetFunctionMarket, got {type(market).__name__} "
                    f"(build one with jw.SetFunctionMarket(values) or its from_* constructors)")


def _device_values(market: SetFunctionMarket) -> jax.Array:
    return jnp.asarray(market.values, dtype=jnp.result_type(float))


def _default_rtol() -> float:
    return 1e-9 if jnp.result_type(float) == jnp.float64 else 1e-5


def _scale(values: np.ndarray) -> np.ndarray:
    """Per-market value scale ``max(1, max |v|)``, shape = batch shape."""
    return np.maximum(1.0, np.abs(values).max(axis=(-2, -1)))


def allocation_welfare(market: SetFunctionMarket, allocation: Any) -> np.ndarray:
    """Welfare ``sum_i v_i(X_i)`` (float64, host) of bitmask allocations ``(..., n)``."""
    market = _as_market(market)
    a = _check_allocation(market, allocation, "allocation")
    shape = _v.broadcast_batch({"allocation": a.shape[:-1], "market": market.batch_shape})
    a = np.broadcast_to(a, shape + (market.n,))
    vals = np.broadcast_to(market.values, a.shape + (market.values.shape[-1],))
    return np.take_along_axis(vals, a[..., None], axis=-1)[..., 0].sum(axis=-1)


def _check_allocation(market: SetFunctionMarket, allocation: Any, name: str) -> np.ndarray:
    a = _v.as_int_array(allocation, name, min_ndim=1)
    _v.check_trailing_shape(a, name, (market.n,), ("n",))
    if a.size and a.max() >= 2 ** market.m:
        raise ValueError(f"{name}: bitmasks must be < 2**m = {2 ** market.m}, found {a.max()}")
    # pairwise disjoint: the sum of masks equals their OR
    orr = np.bitwise_or.reduce(a, axis=-1)
    if np.any(a.sum(axis=-1) != orr):
        bad = np.argwhere(a.sum(axis=-1) != orr)[0]
        raise ValueError(f"{name}: buyers' sets must be disjoint; batch index {tuple(bad)} "
                         f"gives the same item to two buyers")
    return a


# ============================================================================ demand queries
class DemandResult(NamedTuple):
    demand: jax.Array    # (..., n) int32 bitmask (item prices) or slot mask (bundle prices)
    utility: jax.Array   # (..., n)


_item_demand_jit = jax.jit(_k.item_demand)
_bundle_demand_jit = jax.jit(_k.bundle_demand)


def item_demand(market: SetFunctionMarket, prices: Any) -> DemandResult:
    """Batched demand query at item prices (device kernel).

    ``prices (..., m)`` broadcasts against the market's batch shape (numpy rules), so
    ``item_demand(cm[:, None], P)`` with ``P (B, Q, m)`` answers ``Q`` price vectors for each of
    ``B`` markets at once. Returns, per buyer, a set maximising ``v_i(S) - sum_{j in S} p_j``
    (ties towards the smallest bitmask) and that utility.
    """
    market = _as_market(market)
    p = _v.as_float_array(prices, "prices", min_ndim=1)
    _v.check_trailing_shape(p, "prices", (market.m,), ("m",))
    _v.broadcast_batch({"market": market.batch_shape, "prices": p.shape[:-1]})
    d, u = _item_demand_jit(_device_values(market), jnp.asarray(p, jnp.result_type(float)))
    return DemandResult(d, u)


def bundle_demand(market: SetFunctionMarket, bundles: Any, prices: Any) -> DemandResult:
    """Batched demand query at bundle prices (device kernel).

    ``bundles (..., K)``: disjoint item bitmasks (0 = empty slot); ``prices (..., K)``.
    Returns per buyer a K-bit mask over slots of a utility-maximising *set of bundles* and its
    utility ``v_i(union) - sum of its prices``.
    """
    market = _as_market(market)
    b = _v.as_int_array(bundles, "bundles", min_ndim=1)
    p = _v.as_float_array(prices, "prices", min_ndim=1)
    if b.shape[-1] != p.shape[-1]:
        raise ValueError(f"bundles and prices need the same number of slots, got "
                         f"{b.shape[-1]} and {p.shape[-1]}")
    if b.shape[-1] > MAX_ITEMS:
        raise ValueError(f"bundles: at most {MAX_ITEMS} slots, got {b.shape[-1]}")
    if b.size and b.max() >= 2 ** market.m:
        raise ValueError(f"bundles: bitmasks must be < 2**m = {2 ** market.m}")
    if np.any(b.sum(axis=-1) != np.bitwise_or.reduce(b, axis=-1)):
        raise ValueError("bundles: the bundles of a market must be pairwise disjoint")
    _v.broadcast_batch({"market": market.batch_shape, "bundles": b.shape[:-1],
                        "prices": p.shape[:-1]})
    d, u = _bundle_demand_jit(_device_values(market), jnp.asarray(b, jnp.int32),
                              jnp.asarray(p, jnp.result_type(float)))
    return DemandResult(d, u)


# ============================================================================ optimal allocation
class OptimalAllocationResult(NamedTuple):
    welfare: np.ndarray      # (...,) float64, sum_i v_i(X_i)
    allocation: np.ndarray   # (..., n) int64 bitmasks, pairwise disjoint


@jax.jit
def _dp_jit(values: jax.Array) -> jax.Array:
    _, choice = _k.welfare_dp(values)
    return _k.dp_backtrack(choice)


def optimal_allocation(market: SetFunctionMarket) -> OptimalAllocationResult:
    """Exact welfare maximisation ``max sum_i v_i(X_i)`` over disjoint ``X_i``.

    Subset dynamic programme on the device, batched over the leading axes:
    ``f_i(S) = max_{T subset S} v_i(T) + f_{i-1}(S \\ T)`` (work ``n 3^m`` per market; the
    ``3^m`` submask pairs are grouped by ``|S|`` into dense gathers). The welfare of the
    returned allocation is re-evaluated on the host in float64. Under float32 the chosen
    allocation is optimal up to float32 rounding of the values (``~1e-7`` relative).
    """
    market = _as_market(market)
    alloc = np.asarray(_dp_jit(_device_values(market))).astype(np.int64)
    return OptimalAllocationResult(allocation_welfare(market, alloc), alloc)


# ============================================================================ Walrasian equilibrium
class WalrasianResult(NamedTuple):
    exists: np.ndarray       # (...,) bool: the configuration LP has an integral optimum
    prices: np.ndarray       # (..., m) LP dual item prices (Walrasian where exists)
    allocation: np.ndarray   # (..., n) bitmasks, an optimal allocation (Walrasian where exists)
    welfare: np.ndarray      # (...,) optimal integral welfare
    lp_value: np.ndarray     # (...,) configuration-LP value (>= welfare)
    verified: np.ndarray     # (...,) bool: (prices, allocation) pass the WE check on the host
    converged: np.ndarray    # (...,) bool: the LP solver reported success


def _nonredundant_sets(values: np.ndarray) -> np.ndarray:
    """``(n, 2^m)`` bool: sets whose constraint ``u_i + p(S) >= v_i(S)`` is not implied by a
    smaller set's (``v_i(S) > v_i(S - j)`` for every ``j in S``) and ``v_i(S) > 0``."""
    n, t = values.shape
    m = t.bit_length() - 1
    keep = values > 0
    for j in range(m):
        v3 = values.reshape(n, 2 ** (m - j - 1), 2, 2 ** j)
        k3 = keep.reshape(n, 2 ** (m - j - 1), 2, 2 ** j)
        k3[:, :, 1, :] &= v3[:, :, 1, :] > v3[:, :, 0, :]
    return keep


def _config_dual_lp(values: np.ndarray, minimal: bool = False
                    ) -> tuple[bool, float, np.ndarray]:
    """Solve ``min sum p + sum u  s.t.  u_i + p(S) >= v_i(S), p, u >= 0`` with HiGHS."""
    n, t = values.shape
    m = t.bit_length() - 1
    keep = _nonredundant_sets(values)
    ii, ss = np.nonzero(keep)
    if len(ii) == 0:
        return True, 0.0, np.zeros(m)
    a = np.zeros((len(ii), m + n))
    a[:, :m] = -_bits(m)[ss]
    a[np.arange(len(ii)), m + ii] = -1.0
    res = linprog(np.ones(m + n), A_ub=a, b_ub=-values[ii, ss], bounds=(0, None),
                  method="highs")
    if res.status != 0:
        return False, float("nan"), np.full(m, np.nan)
    if minimal:   # least total price on the optimal face (the minimal WE prices for GS)
        cap = res.fun + 1e-9 * max(1.0, abs(res.fun))
        res2 = linprog(np.r_[np.ones(m), np.zeros(n)], A_ub=np.vstack([a, np.ones(m + n)]),
                       b_ub=np.r_[-values[ii, ss], cap], bounds=(0, None), method="highs")
        if res2.status == 0:
            return True, float(res.fun), np.asarray(res2.x[:m])
    return True, float(res.fun), np.asarray(res.x[:m])


def _config_dual_lp_block(values: np.ndarray, minimal: bool = False
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The dual configuration LPs of a chunk of markets ``(B, n, 2^m)`` as ONE block-diagonal
    sparse LP (HiGHS). The objective is separable, so an optimum of the sum is optimal in
    every block: one solver call per chunk instead of one per market. Returns per-market
    ``(ok, value, prices)``; falls back to per-market LPs if the joint solve fails."""
    from scipy.sparse import coo_matrix, vstack as svstack
    nb, n, t = values.shape
    m = t.bit_length() - 1
    w = m + n
    keep = np.stack([_nonredundant_sets(values[b]) for b in range(nb)])
    bb, ii, ss = np.nonzero(keep)
    r = len(bb)
    if r == 0:
        return np.ones(nb, bool), np.zeros(nb), np.zeros((nb, m))
    rows_j, jj = np.nonzero(_bits(m)[ss])
    rows = np.concatenate([rows_j, np.arange(r)])
    cols = np.concatenate([bb[rows_j] * w + jj, bb * w + m + ii])
    a = coo_matrix((-np.ones(len(rows)), (rows, cols)), shape=(r, nb * w)).tocsr()
    rhs = -values[bb, ii, ss]
    res = linprog(np.ones(nb * w), A_ub=a, b_ub=rhs, bounds=(0, None), method="highs")
    if res.status != 0:
        out = [_config_dual_lp(values[b], minimal) for b in range(nb)]
        return (np.array([o[0] for o in out]), np.array([o[1] for o in out]),
                np.stack([o[2] for o in out]))
    x = res.x.reshape(nb, w)
    val = x.sum(axis=1)
    if minimal:   # least total price on every block's optimal face
        cap = val + 1e-9 * np.maximum(1.0, np.abs(val))
        blk = coo_matrix((np.ones(nb * w), (np.repeat(np.arange(nb), w), np.arange(nb * w))),
                         shape=(nb, nb * w))
        c2 = np.tile(np.r_[np.ones(m), np.zeros(n)], nb)
        res2 = linprog(c2, A_ub=svstack([a, blk]).tocsr(), b_ub=np.r_[rhs, cap],
                       bounds=(0, None), method="highs")
        if res2.status == 0:
            x = res2.x.reshape(nb, w)
    return np.ones(nb, bool), val, x[:, :m].copy()


def _we_violation(values: np.ndarray, prices: np.ndarray, alloc: np.ndarray) -> np.ndarray:
    """Largest WE violation per market (host, float64): demand regret or price on unsold."""
    m = prices.shape[-1]
    util = values - prices[..., None, :] @ _bits(m).T.astype(float)       # (..., n, 2^m)
    held = np.take_along_axis(util, alloc[..., None], axis=-1)[..., 0]
    regret = (util.max(axis=-1) - held).max(axis=-1)
    sold = np.bitwise_or.reduce(alloc, axis=-1)
    unsold_price = np.where(((sold[..., None] >> np.arange(m)) & 1) == 0, prices, 0.0)
    return np.maximum(regret, unsold_price.max(axis=-1, initial=0.0))


def walrasian_equilibrium(market: SetFunctionMarket, *, rtol: float | None = None,
                          minimal_prices: bool = False, lp_chunk: int = 64
                          ) -> WalrasianResult:
    """Decide whether an item-price Walrasian equilibrium exists, exactly, and return one.

    A WE exists iff the configuration LP ``max sum v_i(S) x_iS`` (each buyer at most one set,
    each item in at most one chosen set, ``x >= 0``) has an integral optimum, i.e. iff its
    value equals the optimal welfare; any optimal dual ``p`` on the item rows, with any
    optimal allocation, is then a WE (Bikhchandani & Mamer 1997). The optimal allocation
    comes from the batched device DP; the LP (dual form, only non-redundant rows
    ``v_i(S) > v_i(S - j)``) is solved with HiGHS on the host, ``lp_chunk`` markets at a
    time as one block-diagonal sparse LP (separable objective => optimal per block).
    ``exists`` uses the tolerance ``rtol * max(1, max|v|)`` (default ``1e-9``, ``1e-5``
    under float32 device arithmetic); ``verified`` re-checks the WE conditions in float64.
    ``minimal_prices=True`` solves a second LP for the least total price among the dual
    optima (for gross substitutes: the minimal Walrasian prices, as the ascending auction).
    """
    market = _as_market(market)
    rtol = _default_rtol() if rtol is None else float(rtol)
    if not isinstance(lp_chunk, (int, np.integer)) or lp_chunk < 1:
        raise ValueError(f"lp_chunk: must be a positive int, got {lp_chunk!r}")
    oa = optimal_allocation(market)
    vals = market.values.reshape((-1,) + market.values.shape[-2:])
    flat_w = oa.welfare.reshape(-1)
    nb = vals.shape[0]
    lp_val = np.empty(nb)
    prices = np.empty((nb, market.m))
    ok = np.empty(nb, bool)
    for lo in range(0, nb, lp_chunk):    # host exact step: one block LP per chunk of markets
        hi = min(nb, lo + lp_chunk)
        ok[lo:hi], lp_val[lo:hi], prices[lo:hi] = _config_dual_lp_block(vals[lo:hi],
                                                                        minimal_prices)
    scale = _scale(vals)
    exists = ok & (lp_val <= flat_w + rtol * scale * max(1, market.m))
    viol = _we_violation(vals, prices, oa.allocation.reshape(nb, -1))
    verified = exists & (viol <= 1e-7 * scale * max(1, market.m))
    bs = market.batch_shape
    return WalrasianResult(exists.reshape(bs), prices.reshape(bs + (market.m,)),
                           oa.allocation, oa.welfare, lp_val.reshape(bs),
                           verified.reshape(bs), ok.reshape(bs))


# ============================================================================ ascending auction
class ItemPriceAuctionResult(NamedTuple):
    prices: np.ndarray        # (..., m) final prices (minimal WE prices for gross substitutes)
    allocation: np.ndarray    # (..., n) an optimal allocation
    is_walrasian: np.ndarray  # (...,) bool: prices + allocation pass the WE check (host)
    converged: np.ndarray     # (...,) bool: no unit ascent direction lowers the Lyapunov fn
    steps: np.ndarray         # (...,) int: price raises


@functools.partial(jax.jit, static_argnames=("max_steps",))
def _auction_jit(values, step, max_steps):
    return _k.ascending_auction(values, step, max_steps)


def ascending_auction(market: SetFunctionMarket, *, step: float | None = None,
                      max_steps: int | None = None) -> ItemPriceAuctionResult:
    """Ascending item-price auction (Gul & Stacchetti 1999; Ausubel 2006), on the device.

    From ``p = 0``, repeatedly raise by ``step`` the prices of the smallest set ``X`` of items
    minimising the Lyapunov function ``L(p + step chi_X)`` (``L(p) = sum p + sum_i max_S
    v_i(S) - p(S)``), while that lowers ``L``. For gross-substitutes values that are
    multiples of ``step`` it stops at the minimal Walrasian prices (L-natural convex steepest
    descent, Murota 2003), after ``max_j p*_j / step`` raises. ``step`` defaults to 1 when
    all values are integers (required otherwise). ``is_walrasian`` is checked exactly on
    the host against an optimal allocation, so a non-GS market is reported, not hidden.
    Work ``n 4^m`` per market and round: meant for ``m <= 10``.
    """
    market = _as_market(market)
    vals = market.values
    if step is None:
        if not np.all(vals == np.round(vals)):
            raise ValueError("step: values are not all integers; pass the price increment "
                             "explicitly (e.g. step=0.01)")
        step = 1.0
    if not (isinstance(step, (int, float, np.floating, np.integer)) and step > 0
            and math.isfinite(step)):
        raise ValueError(f"step: must be a positive finite number, got {step!r}")
    if max_steps is None:
        max_steps = int(math.ceil(float(vals.max(initial=0.0)) / step)) + 2
    if not isinstance(max_steps, (int, np.integer)) or max_steps < 1:
        raise ValueError(f"max_steps: must be a positive int, got {max_steps!r}")
    st = _auction_jit(_device_values(market), jnp.asarray(step, jnp.result_type(float)),
                      int(max_steps))
    prices = np.asarray(st.prices, np.float64)
    prices = np.round(prices / step) * step          # prices live on the step grid
    oa = optimal_allocation(market)
    viol = _we_violation(vals, prices, oa.allocation)
    return ItemPriceAuctionResult(prices, oa.allocation,
                         viol <= 1e-7 * _scale(vals) * max(1, market.m),
                         np.asarray(st.done), np.asarray(st.steps))


# ============================================================================ CWE
class CWEResult(NamedTuple):
    bundles: np.ndarray        # (..., m) int64 bitmasks, a partition of all items (0 = empty slot)
    prices: np.ndarray         # (..., m) bundle prices (0 on empty slots)
    holder: np.ndarray         # (..., m) buyer holding each bundle, -1 = unsold / empty slot
    allocation: np.ndarray     # (..., n) items each buyer receives (union of her bundles)
    welfare: np.ndarray        # (...,) sum_i v_i(allocation_i)
    start_welfare: np.ndarray  # (...,) welfare of the start allocation
    revenue: np.ndarray        # (...,) sum of prices of sold bundles
    max_regret: np.ndarray     # (...,) max_i (best utility over sets of bundles - held utility)
    tol: np.ndarray            # (...,) tolerance the equilibrium holds to
    converged: np.ndarray      # (...,) bool: dynamics finished (always True on return)
    iterations: np.ndarray     # (...,) purchases made


@functools.partial(jax.jit, static_argnames=("num_steps", "select"))
def _cwe_chunk(values, state, tol, num_steps, select="first"):
    return _k.cwe_dynamics(values, state, tol, num_steps, select)


def _cwe_utils_host(values: np.ndarray, bundles: np.ndarray, prices: np.ndarray,
                    holder: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Float64 host evaluation for ``(B, n, 2^m)`` values and ``(B, K)`` bundles / prices /
    holders: every buyer's best utility over sets of bundles and her held utility, ``(B, n)``."""
    nb, n, _ = values.shape
    k = bundles.shape[-1]
    bits = _bits(k)                                                   # (2^K, K)
    unions = bundles @ bits.T                                         # (B, 2^K), disjoint
    cost = prices @ bits.T.astype(float)
    uses_empty = ((bundles == 0)[:, None, :] & (bits == 1)[None]).any(-1)   # (B, 2^K)
    vals = np.take_along_axis(values, np.broadcast_to(unions[:, None, :], (nb, n, 2 ** k)),
                              axis=-1)
    best = np.where(uses_empty[:, None, :], -np.inf, vals - cost[:, None, :]).max(-1)
    held = holder[:, None, :] == np.arange(n)[:, None]
    mask = np.where(held, bundles[:, None, :], 0).sum(-1)
    util = np.take_along_axis(values, mask[..., None], axis=-1)[..., 0] \
        - np.where(held, prices[:, None, :], 0.0).sum(-1)
    return best, util


def _cwe_regret_host(values: np.ndarray, bundles: np.ndarray, prices: np.ndarray,
                     holder: np.ndarray) -> np.ndarray:
    """``max_i`` (best utility over sets of bundles - held utility), float64, ``(B,)``."""
    best, util = _cwe_utils_host(values, bundles, prices, holder)
    return (best - util).max(-1)


def _price_war_jump(values: np.ndarray, bundles: np.ndarray, prices: np.ndarray,
                    holder: np.ndarray, tol: np.ndarray, levels: int = 30) -> np.ndarray:
    """Jump a price war ahead (host, vectorised over markets).

    Raise by the same ``delta`` every sold bundle whose holder has utility above ``tol``,
    with ``delta`` the largest of ``G, G/2, G/4, ...`` (``G`` = the largest utility any buyer
    can get) after which every holder is still within ``tol`` of her best. The result keeps
    all invariants of the dynamics (holders within ``tol``; sold bundles cost at least their
    parts' reserves; unsold parts untouched) and raises revenue, so it only shortens the
    English-auction-like climb in steps of ``tol``. Returns the new prices ``(B, K)``."""
    best, util = _cwe_utils_host(values, bundles, prices, holder)
    nb, n = util.shape
    hold_util = np.where(holder >= 0, np.take_along_axis(
        util, np.maximum(holder, 0), axis=-1), -np.inf)                 # (B, K)
    raise_set = (holder >= 0) & (hold_util > tol[:, None])
    g = best.max(-1)
    out = prices.copy()
    todo = raise_set.any(-1) & (g > tol)
    base = raise_set.copy()
    for lev in range(levels):
        delta = g * 0.5 ** lev
        todo &= delta > tol               # raises below tol are what the dynamics do anyway
        rs = base.copy()
        for _ in range(n):                # drop holders the raise would upset, retry
            if not todo.any():
                break
            cand = prices + np.where(rs, delta[:, None], 0.0)
            b2, u2 = _cwe_utils_host(values[todo], bundles[todo], cand[todo], holder[todo])
            bad = np.zeros((nb, n), bool)
            is_holder = (holder[todo][:, None, :] == np.arange(n)[:, None]).any(-1)
            bad[todo] = ((b2 - u2) > tol[todo, None]) & is_holder   # empty-handed may want
            ok = todo & ~bad.any(-1) & rs.any(-1)
            out[ok] = cand[ok]
            todo &= ~ok
            upset = np.take_along_axis(bad, np.maximum(holder, 0), axis=-1) & (holder >= 0)
            rs &= ~upset
            todo &= rs.any(-1)
        todo = (~np.isin(np.arange(nb), np.nonzero(out.sum(-1) != prices.sum(-1))[0])
                & base.any(-1) & (g > tol))
    return out


def _initial_parts(values: np.ndarray, start: np.ndarray) -> np.ndarray:
    """Parts ``X_i`` of the start, with the unallocated items added to the part whose owner
    gains most from them (welfare can only rise: values are monotone). ``(B, n)`` masks."""
    nb, n, t = values.shape
    full = t - 1
    parts = start.copy()
    rest = full ^ np.bitwise_or.reduce(parts, axis=-1)
    for b in np.nonzero(rest)[0]:
        v = values[b]
        if np.all(parts[b] == 0):
            i = int(np.argmax(v[:, full]))
        else:
            gain = np.where(parts[b] > 0, v[np.arange(n), parts[b] | rest[b]]
                            - v[np.arange(n), parts[b]], -np.inf)
            i = int(np.argmax(gain))
        parts[b, i] |= rest[b]
    return parts


class _CWERun(NamedTuple):
    state: Any
    tol: np.ndarray


def _run_cwe(fv: np.ndarray, full: Any, tol: np.ndarray, ftype: Any, chunk: int,
             patience: int) -> _CWERun:
    """Drive :func:`kernels.setfunc.cwe_dynamics` in chunks of ``chunk`` rounds until every
    market is done. Finished markets are compacted away once at most a quarter of the working
    batch is still running (working sizes are powers of two >= 8, so few recompilations):
    a few long price wars do not keep the whole batch busy. Every ``2 (n + K)`` purchases
    without finishing a market's price war is jumped ahead (:func:`_price_war_jump`); its
    ``tol`` is raised 10x every ``patience`` purchases it makes without finishing."""
    nb = fv.shape[0]
    full = _k.CWEState(*(np.array(x) for x in full))
    tol = tol.copy()
    last_esc = np.zeros(nb, np.int64)
    last_jump = np.zeros(nb, np.int64)
    war_steps = 2 * (fv.shape[1] + int(full.bundles.shape[-1]))   # purchases that suggest a war
    idx = np.arange(nb)              # markets in the working batch (may repeat as padding)
    count = nb                       # the first `count` entries of idx are distinct
    while True:
        dv = jnp.asarray(fv[idx], ftype)
        st = _k.CWEState(*(jnp.asarray(x[idx]) for x in full))
        st = _k.CWEState(st.bundles, st.prices.astype(ftype), st.holder, st.done, st.steps)
        while True:
            # the dynamics run at tol/2 so that rounding in device arithmetic stays inside tol
            st = _cwe_chunk(dv, st, jnp.asarray(0.5 * tol[idx], ftype), chunk, "first")
            done = np.asarray(st.done)[:count]
            steps = np.asarray(st.steps)[:count].astype(np.int64)
            live = idx[:count]
            war = ~done & (steps - last_jump[live] >= war_steps)
            if war.any():             # a long run of purchases: try to jump the war ahead
                pos = np.nonzero(war)[0]
                mk = live[pos]
                hb = np.asarray(st.bundles)[pos].astype(np.int64)
                hp = np.asarray(st.prices, np.float64)[pos]
                hh = np.asarray(st.holder)[pos].astype(np.int64)
                newp = _price_war_jump(fv[mk], hb, hp, hh, 0.5 * tol[mk])
                st = st._replace(prices=st.prices.at[jnp.asarray(pos)].set(
                    jnp.asarray(newp, st.prices.dtype)))
                last_jump[mk] = steps[pos]
            esc = ~done & (steps - last_esc[live] >= patience)   # cut a long price war short
            tol[live] = np.where(esc, tol[live] * 10.0, tol[live])
            last_esc[live] = np.where(esc, steps, last_esc[live])
            n_left = int((~done).sum())
            if n_left == 0 or (len(idx) > 8 and n_left <= len(idx) // 4):
                break
        host = [np.asarray(x)[:count] for x in st]
        for k, arr in enumerate(host):
            full[k][live] = arr
        if n_left == 0:
            return _CWERun(full, tol)
        rest = live[~done]
        size = padded_size(n_left, floor=8)
        idx = np.concatenate([rest, np.repeat(rest[:1], size - n_left)])
        count = n_left


def combinatorial_walrasian_equilibrium(
        market: SetFunctionMarket, start: Any = None, *, rtol: float | None = None,
        chunk: int = 16, patience: int | None = None) -> CWEResult:
    """Combinatorial Walrasian equilibrium with at least half the start's welfare.

    Feldman, Gravin & Lucier (STOC 2013): the seller partitions the items into bundles and
    prices the bundles; every buyer receives a utility-maximising set of bundles (unsold
    bundles allowed). Construction (DESIGN.md section 3), run for all markets of the batch in
    lockstep on the device (:func:`jaxwalras.kernels.setfunc.cwe_dynamics`):

    1. parts ``X_i`` of the start allocation (default: :func:`optimal_allocation`; unallocated
       items join the part whose owner values them most), unsold at reserve ``v_i(X_i)/2``;
    2. while an empty-handed buyer ``i`` gains more than ``tol`` from her demanded set ``D``
       of bundles: merge ``D`` into one bundle held by ``i`` (previous holders lose theirs),
       priced ``max(v_i(U) - u_out, p(D) + tol)`` with ``u_out`` her best utility from bundles
       disjoint from ``D``.

    (The device dynamics use ``tol/2`` so float rounding stays inside ``tol``.)
    Invariants: holders' alternatives only get dearer (merged bundles cost at least their
    parts), so a holder stays within ``tol`` of her best; sold bundles cost at least the
    reserves of their parts; an unsold part ``X_j`` is still at reserve, which leaves buyer
    ``j`` utility ``>= v_j(X_j)/2 - tol``. Hence ``welfare = utilities + revenue >=
    SW(start)/2 - n tol``, and (exact ties included) every purchase raises revenue by at
    least ``tol`` while revenue ``<= OPT``: the dynamics stop within ``OPT/tol + n``
    purchases.

    Tolerance: ``tol = rtol * max(1, max|v|)`` per market (``rtol`` default ``1e-6`` with
    float64, ``1e-5`` with float32 device arithmetic). Price wars (several buyers competing
    for interchangeable bundles -- common with exact ties, e.g. CATS scheduling -- would
    climb in steps of ``tol``, like an English auction) are jumped ahead on the host: after
    ``2 (n + m)`` purchases without finishing, every sold bundle whose holder can afford it is
    raised by the largest ``delta`` in ``G, G/2, G/4, ...`` that keeps every holder within
    ``tol`` of her best (this keeps all the invariants above and only raises revenue). As a
    last resort, every ``patience`` purchases (default ``500 + 20 (n + m)``) without
    finishing multiply that market's ``tol`` by 10; ``result.tol`` reports the tolerance each
    market's equilibrium holds to (the requested one unless an escalation was needed).
    Markets that finish are compacted out of the device batch, so a few long runs do not
    keep the whole batch busy.
    ``result.max_regret <= tol`` certifies the equilibrium (recomputed on the host in float64).
    """
    market = _as_market(market)
    vals = market.values
    bs, n, m = market.batch_shape, market.n, market.m
    if start is None:
        start_alloc = optimal_allocation(market).allocation
    else:
        start_alloc = _check_allocation(market, start, "start")
        try:
            start_alloc = np.broadcast_to(start_alloc, bs + (n,)).copy()
        except ValueError:
            raise ValueError(f"start: shape {start_alloc.shape} does not broadcast to the "
                             f"market's batch shape {bs} + (n = {n},)") from None
    if not isinstance(chunk, (int, np.integer)) or chunk < 1:
        raise ValueError(f"chunk: must be a positive int, got {chunk!r}")
    patience = 500 + 20 * (n + m) if patience is None else patience
    if not isinstance(patience, (int, np.integer)) or patience < 1:
        raise ValueError(f"patience: must be a positive int, got {patience!r}")
    if rtol is None:
        rtol = 1e-6 if jnp.result_type(float) == jnp.float64 else 1e-5
    rtol = float(rtol)
    if not rtol > 0:
        raise ValueError(f"rtol: must be > 0 (exact ties need a tolerance), got {rtol}")
    start_w = allocation_welfare(market, start_alloc)

    fv = vals.reshape((-1, n, 2 ** m))
    nb = fv.shape[0]
    parts = _initial_parts(fv, start_alloc.reshape(nb, n))
    # slot layout: K = m slots; the parts first (in buyer order), then empty slots
    bundles = np.zeros((nb, m), np.int64)
    prices = np.zeros((nb, m))
    for b in range(nb):
        nz = [i for i in range(n) if parts[b, i]]
        for s, i in enumerate(nz):
            bundles[b, s] = parts[b, i]
            prices[b, s] = fv[b, i, parts[b, i]] / 2.0
    ftype = jnp.result_type(float)
    scale = _scale(fv)
    tol = rtol * scale
    full = _k.CWEState(bundles.astype(np.int32), prices, np.full((nb, m), -1, np.int32),
                       np.zeros(nb, bool), np.zeros(nb, np.int32))
    full = _run_cwe(fv, full, tol, ftype, int(chunk), int(patience))
    tol = full.tol
    state = full.state
    b_out = np.asarray(state.bundles).astype(np.int64)
    p_out = np.asarray(state.prices, np.float64)
    h_out = np.asarray(state.holder).astype(np.int64)
    done = np.asarray(state.done)
    regret = _cwe_regret_host(fv, b_out, p_out, h_out)
    held = h_out[:, None, :] == np.arange(n)[:, None]
    alloc = np.where(held, b_out[:, None, :], 0).sum(axis=-1)
    welfare = np.take_along_axis(fv, alloc[..., None], axis=-1)[..., 0].sum(axis=-1)
    revenue = np.where(h_out >= 0, p_out, 0.0).sum(axis=-1)
    return CWEResult(b_out.reshape(bs + (m,)), p_out.reshape(bs + (m,)),
                     h_out.reshape(bs + (m,)), alloc.reshape(bs + (n,)),
                     welfare.reshape(bs), start_w.reshape(bs), revenue.reshape(bs),
                     regret.reshape(bs), tol.reshape(bs), done.reshape(bs),
                     np.asarray(state.steps).reshape(bs))


def check_cwe(market: SetFunctionMarket, bundles: Any, prices: Any, holder: Any,
              tol: float = 1e-9) -> list[str]:
    """List the violated CWE conditions of one market (empty list = valid CWE within ``tol``).

    Host brute force: the bundles partition the items; every buyer's held set of bundles has
    utility within ``tol`` of her best set of bundles (enumerated over all ``2^K`` subsets).
    """
    market = _as_market(market)
    if market.batch_shape:
        raise ValueError("check_cwe: pass a single market (index the batch first)")
    b = np.asarray(bundles, np.int64)
    p = np.asarray(prices, np.float64)
    h = np.asarray(holder, np.int64)
    out = []
    if np.bitwise_or.reduce(b) != 2 ** market.m - 1 or b.sum() != np.bitwise_or.reduce(b):
        out.append("bundles do not partition the items")
    live = np.nonzero(b)[0]
    for i in range(market.n):
        mine = [s for s in live if h[s] == i]
        u_held = market.values[i, int(b[mine].sum())] - p[mine].sum()
        best = max(market.values[i, int(b[list(c)].sum())] - p[list(c)].sum()
                   for r in range(len(live) + 1) for c in itertools.combinations(live, r))
        if best > u_held + tol:
            out.append(f"buyer {i} holds utility {u_held:.6g} but can get {best:.6g}")
    return out


# ============================================================================ best item-price welfare
class ItemPriceWelfareResult(NamedTuple):
    welfare: np.ndarray      # (...,) best welfare of an item-price equilibrium (no clearing)
    prices: np.ndarray       # (..., m) supporting item prices
    allocation: np.ndarray   # (..., n) bitmasks


def _supporting_prices(values: np.ndarray, alloc: np.ndarray) -> np.ndarray | None:
    """Item prices ``p >= 0`` with every ``alloc_i`` in buyer ``i``'s demand (LP), or None."""
    n, t = values.shape
    m = t.bit_length() - 1
    bits = _bits(m).astype(float)
    # v_i(A_i) - p(A_i) >= v_i(S) - p(S)  <=>  p(A_i) - p(S) <= v_i(A_i) - v_i(S)
    rows = (bits[alloc][:, None, :] - bits[None, :, :]).reshape(n * t, m)
    rhs = (values[np.arange(n), alloc][:, None] - values).reshape(n * t)
    keep = np.any(rows != 0, axis=1) | (rhs < 0)
    if np.any(rhs[~keep] < -1e-12):
        return None
    res = linprog(np.zeros(m), A_ub=rows[keep], b_ub=rhs[keep] + 1e-12, bounds=(0, None),
                  method="highs")
    return np.asarray(res.x) if res.status == 0 else None


def best_item_price_welfare(market: SetFunctionMarket, *, max_allocations: int = 2_000_000
                            ) -> ItemPriceWelfareResult:
    """Best welfare of any item-price equilibrium *without* market clearing (small markets).

    ``max { sum_i v_i(A_i) : A disjoint, exists p >= 0 with A_i in D_i(p) for all i }``;
    unsold items may carry any price. Host enumeration of all ``(n+1)^m`` allocations in
    order of decreasing welfare, each tested by a feasibility LP (HiGHS) for supporting
    prices; the first feasible one is optimal. This is the benchmark of Feldman, Gravin &
    Lucier (2013): on the shirts market it is ``3 - 1/m`` against ``OPT = m``.
    """
    market = _as_market(market)
    n, m = market.n, market.m
    if (n + 1) ** m > max_allocations:
        raise ValueError(f"market: (n+1)^m = {(n + 1) ** m} allocations exceed "
                         f"max_allocations = {max_allocations}; best_item_price_welfare is a "
                         f"brute force for small markets")
    # every allocation as an assignment of items to buyers 0..n-1 or n (= unsold)
    assign = np.array(list(itertools.product(range(n + 1), repeat=m)), np.int64)  # (A, m)
    masks = np.stack([((assign == i) << np.arange(m)).sum(axis=1) for i in range(n)], 1)
    fv = market.values.reshape((-1, n, 2 ** m))
    ws, ps, als = [], [], []
    for b in range(fv.shape[0]):
        v = fv[b]
        wel = v[np.arange(n), masks].sum(axis=1)
        order = np.argsort(-wel, kind="stable")
        for a in order:
            p = _supporting_prices(v, masks[a])
            if p is not None:
                ws.append(wel[a]); ps.append(p); als.append(masks[a])
                break
    bs = market.batch_shape
    return ItemPriceWelfareResult(np.array(ws).reshape(bs), np.array(ps).reshape(bs + (m,)),
                                  np.array(als).reshape(bs + (n,)))


# ============================================================================ gross substitutes
def is_gross_substitutes(market: SetFunctionMarket, *, tol: float = 1e-9) -> np.ndarray:
    """Brute-force gross-substitutes test (M-natural concavity exchange property, Fujishige
    & Yang 2003): for all ``S, T`` and ``a in S \\ T``:
    ``v(S) + v(T) <= max(v(S-a) + v(T+a), max_{b in T \\ S} v(S-a+b) + v(T+a-b))``.
    Returns ``(..., n)`` bool. Work ``m^2 4^m`` per buyer: small ``m`` only."""
    market = _as_market(market)
    m = market.m
    if m > 8:
        raise ValueError(f"market: is_gross_substitutes is a brute force for m <= 8, got {m}")
    v = market.values
    t = 2 ** m
    s = np.arange(t)[:, None]
    tt = np.arange(t)[None, :]
    vst = v[..., :, None] + v[..., None, :]                             # (..., n, S, T)
    ok = np.ones(v.shape[:-1], bool)
    for a in range(m):
        ba = 1 << a
        cond = ((s & ba) != 0) & ((tt & ba) == 0)
        best = v[..., (s ^ ba) + 0 * tt] + v[..., (tt | ba) + 0 * s]
        for bj in range(m):
            bb = 1 << bj
            c2 = ((tt & bb) != 0) & ((s & bb) == 0)
            alt = v[..., ((s ^ ba) | bb) + 0 * tt] + v[..., ((tt | ba) ^ bb) + 0 * s]
            best = np.where(c2, np.maximum(best, alt), best)
        viol = cond & (vst > best + tol)
        ok &= ~np.any(viol, axis=(-2, -1))
    return ok


# ============================================================================ demo
def demo_combinatorial(print_fn: Callable[[str], None] = print) -> None:
    """Print shoes, shirts and one CATS market: item-price welfare vs bundling (CLI demo)."""
    from .examples.combinatorial import shirts, shoes
    from . import cats
    rows = []
    for name, cm in [("shoes", shoes())] + [(f"shirts(m={k})", shirts(k)) for k in (3, 4, 6)]:
        oa = optimal_allocation(cm)
        we = walrasian_equilibrium(cm)
        bip = best_item_price_welfare(cm)
        cwe = combinatorial_walrasian_equilibrium(cm)
        rows.append((name, float(oa.welfare), bool(we.exists), float(bip.welfare),
                     float(cwe.welfare), int((cwe.bundles > 0).sum())))
    cm = cats.regions(n_bidders=6, m=8, seed=0)
    oa = optimal_allocation(cm)
    we = walrasian_equilibrium(cm)
    cwe = combinatorial_walrasian_equilibrium(cm)
    rows.append(("CATS regions n=6 m=8", float(oa.welfare), bool(we.exists), float("nan"),
                 float(cwe.welfare), int((cwe.bundles > 0).sum())))
    print_fn("Combinatorial markets (seed 002): item prices vs bundling (CWE)")
    print_fn("| market | OPT | item-price WE? | best item-price welfare | CWE welfare | bundles |")
    print_fn("|---|---|---|---|---|---|")
    for r in rows:
        bip = "-" if math.isnan(r[3]) else f"{r[3]:.4g}"
        print_fn(f"| {r[0]} | {r[1]:.4g} | {'yes' if r[2] else 'no'} | {bip} | {r[4]:.4g} | {r[5]} |")
