"""Combinatorial markets: buyers with set-function values over indivisible items.

``m`` indivisible items (``m <= 16``), ``n`` buyers with monotone set-function values stored
as dense tables over item bitmasks, ``values[..., i, S]`` (bit ``j`` of ``S`` <=> item ``j``).
The solvers are in :mod:`jaxwalras.combinatorial` (demand queries, optimal allocation,
item-price Walrasian equilibria) and :mod:`jaxwalras.bundling` (combinatorial Walrasian
equilibria); the device kernels in :mod:`jaxwalras.kernels.setfunc`.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from .typing import ArrayLike
from . import _validation as _v
from .kernels import setfunc as _k

__all__ = ["SetFunctionMarket", "MAX_ITEMS", "MAX_ABS_VALUE", "allocation_welfare", "set_bits",
           "as_market", "check_allocation", "value_scale", "buyer_scale", "normalized_values",
           "default_rtol", "check_rtol"]


MAX_ITEMS = 16

#: Largest ``|value|`` accepted: host sums over buyers and items of values and prices stay
#: finite in float64.  Device kernels see each market divided by its own largest
#: ``|value|`` (:func:`normalized_values`), so the float32 range never limits the values.
MAX_ABS_VALUE = 1e300


# ============================================================================ the market
def set_bits(m: int) -> np.ndarray:
    """``(2**m, m)`` int32 0/1 table: row ``S`` is the indicator vector of the set ``S``."""
    return _k._bits_np(m)


def _set_str(s: int, m: int) -> str:
    return "{" + ",".join(str(j) for j in range(m) if (s >> j) & 1) + "}"


@jax.tree_util.register_pytree_node_class
@dataclasses.dataclass(frozen=True, init=False)
class SetFunctionMarket:
    """Buyers with monotone set-function values over ``m <= 16`` indivisible items.

    Parameters
    ----------
    values : array_like, shape (..., n, 2**m)
        ``values[..., i, S]`` is buyer ``i``'s value for the set with bitmask ``S`` (bit ``j``
        of ``S`` set iff item ``j`` is in the set).  Any leading axes are batch axes.

    Notes
    -----
    Validated on construction: finite, at most ``MAX_ABS_VALUE = 1e300``,
    ``v_i(empty) = 0``, non-negative and monotone (``v_i(S) <= v_i(S + j)`` up to
    ``1e-12`` of the buyer's largest value; free disposal).  Stored on the host as
    float64.

    Numerics: every solver is scale-free.  Device kernels (demand queries, the welfare DP,
    the auction and the bundling dynamics) run in JAX's default float dtype on each
    market's values divided by the market's own largest ``|value|``, so any money unit and
    values beyond the float32 range give the same decisions (differences below the float
    dtype's resolution of the market's scale count as ties); every answer is then checked
    on the host in float64 against the original values, with tolerances relative to the
    market's scale (and to a buyer's own scale where her payoffs are compared), and batch
    mates never enter one market's numbers.  Constructors:
    :meth:`from_xor`, :meth:`from_xor_arrays`, :meth:`from_xos`, :meth:`additive`,
    :meth:`unit_demand`, :meth:`budget_additive`, :meth:`single_minded`.

    Raises
    ------
    TypeError, ValueError
        Non-numeric, non-finite, non-monotone tables or a bad number of sets.

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
    def n_buyers(self) -> int:
        """Number of buyers."""
        return int(self.values.shape[-2])

    @property
    def n_items(self) -> int:
        """Number of items."""
        return int(self.values.shape[-1]).bit_length() - 1

    @property
    def n(self) -> int:
        """Deprecated name of :attr:`n_buyers`."""
        _v.warn_deprecated("SetFunctionMarket.n", "SetFunctionMarket.n_buyers")
        return self.n_buyers

    @property
    def m(self) -> int:
        """Deprecated name of :attr:`n_items`."""
        _v.warn_deprecated("SetFunctionMarket.m", "SetFunctionMarket.n_items")
        return self.n_items

    @property
    def batch_shape(self) -> tuple[int, ...]:
        """Leading batch axes (``()`` for a single market)."""
        return tuple(self.values.shape[:-2])

    def reshape_batch(self, shape: Sequence[int]) -> "SetFunctionMarket":
        """Reshape the batch axes (the buyer and set axes are unchanged)."""
        shape = tuple(int(s) for s in shape)
        return SetFunctionMarket(np.asarray(self.values).reshape(shape + self.values.shape[-2:]),
                                 _validate=False)

    def to_numpy(self) -> "SetFunctionMarket":
        """A copy with host numpy (float64) values."""
        return SetFunctionMarket(np.asarray(self.values, np.float64), _validate=False)

    @classmethod
    def stack(cls, markets: Sequence["SetFunctionMarket"]) -> "SetFunctionMarket":
        """Stack single markets along a new leading batch axis.

        Markets with fewer buyers are padded with buyers who value everything at 0 (they
        never buy and change no equilibrium); all markets must have the same number of
        items.
        """
        markets = list(markets)
        if not markets:
            raise ValueError("markets: need at least one market to stack")
        for k, mk in enumerate(markets):
            if not isinstance(mk, SetFunctionMarket):
                raise TypeError(f"markets[{k}]: expected SetFunctionMarket, got {type(mk).__name__}")
            if mk.batch_shape:
                raise ValueError(f"markets[{k}]: stack single markets, got batch shape {mk.batch_shape}")
            if mk.n_items != markets[0].n_items:
                raise ValueError(f"markets[{k}]: has {mk.n_items} items, markets[0] has "
                                 f"{markets[0].n_items}; all markets need the same items")
        n = max(mk.n_buyers for mk in markets)
        out = np.zeros((len(markets), n, 2 ** markets[0].n_items))
        for k, mk in enumerate(markets):
            out[k, :mk.n_buyers] = mk.values
        return cls(out, _validate=False)

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
        return (f"SetFunctionMarket(batch_shape={self.batch_shape}, n_buyers={self.n_buyers}, "
                f"n_items={self.n_items})")

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
                val = _v.check_number(val, f"bids[{i}][{b}]: value", lo=0.0,
                                      hi=MAX_ABS_VALUE)
                table[i, mask] = max(table[i, mask], val)
        return cls(_superset_max(table, m))

    @classmethod
    def from_xor_arrays(cls, masks: Any, bid_values: Any, m: int) -> "SetFunctionMarket":
        """Batched XOR bids: ``masks (..., n, K)`` int bitmasks (``0`` = padding, ignored) and
        ``bid_values (..., n, K)`` non-negative values."""
        m = _check_m(m)
        masks = _v.as_int_array(masks, "masks", min_ndim=2)
        vals = _v.as_float_array(bid_values, "bid_values", min_ndim=2, nonnegative=True,
                                 max_abs=MAX_ABS_VALUE, allow_bool=False)
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
        w = _v.as_float_array(clauses, "clauses", min_ndim=3, nonnegative=True,
                              max_abs=MAX_ABS_VALUE, allow_bool=False)
        m = _check_m(w.shape[-1])
        return cls(np.max(w @ set_bits(m).T, axis=-2))

    @classmethod
    def additive(cls, weights: Any) -> "SetFunctionMarket":
        """Additive values ``v_i(S) = sum_{j in S} w_ij``; ``weights (..., n, m) >= 0``."""
        w = _v.as_float_array(weights, "weights", min_ndim=2, nonnegative=True,
                              max_abs=MAX_ABS_VALUE, allow_bool=False)
        m = _check_m(w.shape[-1])
        return cls(w @ set_bits(m).T)

    @classmethod
    def unit_demand(cls, weights: Any) -> "SetFunctionMarket":
        """Unit-demand values ``v_i(S) = max_{j in S} w_ij`` (gross substitutes)."""
        w = _v.as_float_array(weights, "weights", min_ndim=2, nonnegative=True,
                              max_abs=MAX_ABS_VALUE, allow_bool=False)
        m = _check_m(w.shape[-1])
        b = set_bits(m).astype(bool)
        return cls(np.max(np.where(b, w[..., None, :], 0.0), axis=-1))

    @classmethod
    def budget_additive(cls, weights: Any, budgets: Any) -> "SetFunctionMarket":
        """Budget-additive values ``v_i(S) = min(B_i, sum_{j in S} w_ij)``."""
        w = _v.as_float_array(weights, "weights", min_ndim=2, nonnegative=True,
                              max_abs=MAX_ABS_VALUE, allow_bool=False)
        b = _v.as_float_array(budgets, "budgets", min_ndim=1, nonnegative=True,
                              max_abs=MAX_ABS_VALUE, allow_bool=False)
        _v.check_trailing_shape(b, "budgets", (w.shape[-2],), ("n",))
        m = _check_m(w.shape[-1])
        return cls(np.minimum(w @ set_bits(m).T, b[..., None]))

    @classmethod
    def single_minded(cls, sets: Any, values: Any, m: int) -> "SetFunctionMarket":
        """Single-minded buyers: ``sets (..., n)`` bitmasks, ``values (..., n)``;
        ``v_i(S) = values_i`` if ``sets_i subset S`` else 0."""
        m = _check_m(m)
        s = _v.as_int_array(sets, "sets", min_ndim=1)
        val = _v.as_float_array(values, "values", min_ndim=1, nonnegative=True,
                                max_abs=MAX_ABS_VALUE, allow_bool=False)
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
    arr = _v.as_float_array(values, name, min_ndim=2, max_abs=MAX_ABS_VALUE, allow_bool=False)
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
    if np.any(arr < 0):
        idx = np.argwhere(arr < 0)[0]
        raise ValueError(f"{name}: values must be non-negative; buyer {idx[-2]} (batch index "
                         f"{tuple(int(x) for x in idx[:-2])}) has "
                         f"{_v.format_value(float(arr[tuple(idx)]))} for set "
                         f"{_set_str(int(idx[-1]), m)}")
    # monotone up to float rounding of the buyer's own scale (constructors sum weights)
    slack = 1e-12 * np.abs(arr).max(axis=-1)[..., None, None]
    for j in range(m):
        t3 = arr.reshape(arr.shape[:-1] + (2 ** (m - j - 1), 2, 2 ** j))
        drop = t3[..., 0, :] - t3[..., 1, :]
        if np.any(drop > slack):
            pos = np.argwhere(drop > slack)[0]
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


def as_market(market: Any, name: str = "market") -> SetFunctionMarket:
    if isinstance(market, SetFunctionMarket):
        return market
    raise TypeError(f"{name}: expected a jw.SetFunctionMarket, got {type(market).__name__} "
                    f"(build one with jw.SetFunctionMarket(values) or its from_* constructors)")


def device_values(market: SetFunctionMarket) -> jax.Array:
    return jnp.asarray(market.values, dtype=jnp.result_type(float))


def default_rtol() -> float:
    return 1e-9 if jnp.result_type(float) == jnp.float64 else 1e-5


def check_rtol(rtol: Any, name: str = "rtol", *, allow_zero: bool = False) -> float:
    """A relative tolerance: one finite number in ``(0, 1)`` (``[0, 1)`` with
    ``allow_zero``); anything else is refused naming the value as given."""
    return _v.check_number(rtol, name, lo=0.0, hi=1.0, lo_open=not allow_zero, hi_open=True)


def value_scale(values: np.ndarray) -> np.ndarray:
    """Per-market value scale ``max |v|`` (no floor; 0 for an all-zero market), shape =
    batch shape."""
    return np.abs(np.asarray(values)).max(axis=(-2, -1))


def buyer_scale(values: np.ndarray) -> np.ndarray:
    """Per-buyer value scale ``max_S |v_i(S)|``, shape = batch shape + ``(n,)``."""
    return np.abs(np.asarray(values)).max(axis=-1)


def normalized_values(values: np.ndarray) -> tuple[jax.Array, np.ndarray]:
    """Each market's table divided by its own scale (:func:`value_scale`; 1 for an all-zero
    market) as a device array in JAX's default float dtype, and the scales (float64, batch
    shape).  Device decisions on it do not depend on the money unit, on batch mates, or on
    the float32 range."""
    vals = np.asarray(values, np.float64)
    sc = value_scale(vals)
    sc = np.where(sc > 0, sc, 1.0)
    return jnp.asarray(vals / sc[..., None, None], jnp.result_type(float)), sc


def allocation_welfare(market: SetFunctionMarket, allocation: ArrayLike) -> np.ndarray:
    """Welfare ``sum_i v_i(X_i)`` (float64, host) of bitmask allocations.

    Parameters
    ----------
    market : SetFunctionMarket
    allocation : array_like of int, shape (..., n)
        Pairwise disjoint bitmasks, broadcast against the market's batch.

    Returns
    -------
    ndarray, shape (...)

    Examples
    --------
    >>> import jaxwalras as jw
    >>> float(jw.allocation_welfare(jw.examples.shoes(), [3, 0]))
    10.0
    """
    market = as_market(market)
    a = check_allocation(market, allocation, "allocation")
    shape = _v.broadcast_batch({"allocation": a.shape[:-1], "market": market.batch_shape})
    a = np.broadcast_to(a, shape + (market.n_buyers,))
    vals = np.broadcast_to(market.values, a.shape + (market.values.shape[-1],))
    return np.take_along_axis(vals, a[..., None], axis=-1)[..., 0].sum(axis=-1)


def check_allocation(market: SetFunctionMarket, allocation: Any, name: str) -> np.ndarray:
    a = _v.as_int_array(allocation, name, min_ndim=1)
    _v.check_trailing_shape(a, name, (market.n_buyers,), ("n",))
    if a.size and a.max() >= 2 ** market.n_items:
        raise ValueError(f"{name}: bitmasks must be < 2**m = {2 ** market.n_items}, found {a.max()}")
    # pairwise disjoint: the sum of masks equals their OR
    orr = np.bitwise_or.reduce(a, axis=-1)
    if np.any(a.sum(axis=-1) != orr):
        bad = np.argwhere(a.sum(axis=-1) != orr)[0]
        raise ValueError(f"{name}: buyers' sets must be disjoint; batch index {tuple(bad)} "
                         f"gives the same item to two buyers")
    return a
