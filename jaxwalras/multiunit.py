"""Multi-unit matching markets: the market type and its device kernels' API.

Objects ``j`` with integer supplies ``s_j``; buyers ``i`` with integer demands ``d_i`` and
integer per-unit values ``v_ij`` (truncated additive valuations).  The buyer-optimal
Walrasian prices come from the flow-based ascending auction
(:func:`jaxwalras.buyer_optimal_equilibrium`; Eickhoff, McCormick, Peis, Rieken and Vargas
Koch, "A flow-based ascending auction to compute buyer-optimal Walrasian prices", Networks
84(2), 2024); its host exact step is :mod:`jaxwalras.flows`, its kernels
:mod:`jaxwalras.kernels.greedy` and :mod:`jaxwalras.kernels.cuts`.
"""
from __future__ import annotations

from typing import Any, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from .typing import ArrayLike, DevicesLike

from jaxwalras._validation import as_int_array, broadcast_batch, warn_deprecated
from jaxwalras.kernels import greedy as _greedy
from jaxwalras.multiunit_chunks import Padded, bundles_flat, chunked

__all__ = ["MultiUnitMarket", "MultiUnitArrays", "stack_markets", "preferred_bundles",
           "PreferredBundles", "indirect_utility", "lyapunov"]

# The device kernels compute in int32.  Payoffs and prices stay within +-2**25 and every
# sum of units the kernels and the host max flows form (supplies over objects, demands or
# cut values over buyers, scipy's int32 arc capacities) within one market's
# sum(s) + sum(d), so these bounds make every int32 path exact.  Products of units and
# payoffs (indirect utilities, the Lyapunov function) can exceed int32 and are computed on
# the host in int64.
#: largest per-unit value (and price)
MAX_VALUE = 2**24
#: largest demand or supply
MAX_UNITS = 2**16
#: largest sum(supplies) + sum(demands) of one market
MAX_TOTAL_UNITS = 2**31 - 1


class MultiUnitArrays(NamedTuple):
    """The three arrays of a multi-unit market as int64 host numpy arrays.

    Attributes
    ----------
    values : ndarray, shape (..., n, m)
    demands : ndarray, shape (..., n)
    supplies : ndarray, shape (..., m)
    """
    values: np.ndarray
    demands: np.ndarray
    supplies: np.ndarray


@jax.tree_util.register_pytree_node_class
class MultiUnitMarket:
    """A multi-unit matching market, or a batch of them (leading axes).

    Object ``j`` has integer supply ``s_j >= 0``; buyer ``i`` has integer demand
    ``d_i >= 0`` and integer value ``v_ij >= 0`` per unit of ``j``; buyer ``i`` values a
    bundle ``x_i`` at ``sum_j v_ij x_ij`` as long as ``sum_j x_ij <= d_i`` (truncated
    additive valuations; Eickhoff et al., 2024).

    Parameters
    ----------
    values : array_like of int, shape (..., n, m)
        Non-negative per-unit values, at most ``MAX_VALUE = 2**24``.
    demands : array_like of int, shape (..., n)
        Non-negative demands, at most ``MAX_UNITS = 2**16``.
    supplies : array_like of int, shape (..., m)
        Non-negative supplies, at most ``MAX_UNITS = 2**16``; in each market
        ``sum(supplies) + sum(demands) <= MAX_TOTAL_UNITS = 2**31 - 1``.

    Leading batch axes of the three arguments must broadcast to one batch shape.  Zero
    buyers, zero objects, zero demands and zero supplies are all valid.  The arrays are
    stored as int32 ``jax.Array`` s; the class is a pytree, so markets pass through
    ``jax.jit`` / ``jax.vmap`` and ``jax.tree_util`` functions.

    Numeric range: within these bounds every computation of the family is exact (int32 on
    the device, where payoffs, prices and unit counts cannot overflow; int64 on the host
    for indirect utilities and the Lyapunov function, whose products of units and values
    reach ``2**40`` per buyer).  Integers are accepted as Python ints of any size, numpy
    integers, or integral floats; anything outside the bounds is refused with the limit
    and the value as given.

    Raises
    ------
    TypeError, ValueError
        Non-integer, boolean, non-numeric, ragged, negative, out-of-range or mis-shaped
        input (the message names the argument, the value as given and the limit).

    Examples
    --------
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
        total = (np.broadcast_to(s.sum(-1), batch) + np.broadcast_to(d.sum(-1), batch))
        if total.size and total.max() > MAX_TOTAL_UNITS:
            k = np.unravel_index(int(np.argmax(total)), batch)
            where = f"market {tuple(int(i) for i in k)}" if batch else "the market"
            raise ValueError(f"supplies, demands: sum(supplies) + sum(demands) of one market "
                             f"must not exceed MAX_TOTAL_UNITS = {MAX_TOTAL_UNITS} (the int32 "
                             f"range of the flows); {where} has {int(total[k])}")
        # int32 on the host, then a plain transfer: jnp.asarray would compile a copy
        # (and a cast) once per shape
        self.values = jax.device_put(np.broadcast_to(v, batch + (n, m)).astype(np.int32))
        self.demands = jax.device_put(np.broadcast_to(d, batch + (n,)).astype(np.int32))
        self.supplies = jax.device_put(np.broadcast_to(s, batch + (m,)).astype(np.int32))

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
        """Leading batch axes (``()`` for a single market)."""
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

    def host_arrays(self) -> MultiUnitArrays:
        """``(values, demands, supplies)`` as int64 host numpy arrays."""
        return MultiUnitArrays(np.asarray(self.values, np.int64),
                               np.asarray(self.demands, np.int64),
                               np.asarray(self.supplies, np.int64))

    def numpy(self) -> MultiUnitArrays:
        """Deprecated name of :meth:`host_arrays`."""
        warn_deprecated("MultiUnitMarket.numpy()", "MultiUnitMarket.host_arrays()")
        return self.host_arrays()

    def to_numpy(self) -> "MultiUnitMarket":
        """A copy with host numpy (int64) leaves."""
        return MultiUnitMarket.tree_unflatten(None, tuple(self.host_arrays()))

    @classmethod
    def stack(cls, markets: Sequence["MultiUnitMarket"]) -> "MultiUnitMarket":
        """Stack single markets of different sizes into one padded batch
        ``(len(markets), ...)``.

        Padding buyers have zero demand and padding objects zero supply (and all-zero
        values), so they change nothing: buyer-optimal prices of padding objects are 0 and
        padding buyers receive nothing.
        """
        markets = list(markets)
        if not markets:
            raise ValueError("markets: need at least one market to stack")
        for k, mk in enumerate(markets):
            if not isinstance(mk, MultiUnitMarket):
                raise TypeError(f"markets[{k}]: expected MultiUnitMarket, got {type(mk).__name__}")
            if mk.batch_shape:
                raise ValueError(f"markets[{k}]: stack single markets, got batch shape "
                                 f"{mk.batch_shape}")
        n = max(mk.n_buyers for mk in markets)
        m = max(mk.n_objects for mk in markets)
        B = len(markets)
        v = np.zeros((B, n, m), np.int64)
        d = np.zeros((B, n), np.int64)
        s = np.zeros((B, m), np.int64)
        for k, mk in enumerate(markets):
            vk, dk, sk = mk.host_arrays()
            v[k, :vk.shape[0], :vk.shape[1]] = vk
            d[k, :dk.shape[0]] = dk
            s[k, :sk.shape[0]] = sk
        return cls(v, d, s)

    def __repr__(self) -> str:
        return (f"MultiUnitMarket(batch_shape={self.batch_shape}, n_buyers={self.n_buyers}, "
                f"n_objects={self.n_objects})")


def stack_markets(markets: Sequence[MultiUnitMarket]) -> MultiUnitMarket:
    """Deprecated name of :meth:`MultiUnitMarket.stack`.

    Parameters
    ----------
    markets : sequence of MultiUnitMarket

    Returns
    -------
    MultiUnitMarket
        Batch ``(len(markets), ...)``.

    Examples
    --------
    >>> import jaxwalras as jw
    >>> one = jw.MultiUnitMarket([[1]], [1], [1])
    >>> jw.MultiUnitMarket.stack([one, one]).batch_shape
    (2,)
    """
    warn_deprecated("jaxwalras.stack_markets", "jaxwalras.MultiUnitMarket.stack")
    return MultiUnitMarket.stack(markets)


class PreferredBundles(_greedy.Bundles):
    """Greedy preferred-bundle structure (see :func:`preferred_bundles`).

    Attributes
    ----------
    strict : ndarray of bool, shape (..., n, m)
        ``F_i``: objects bought at full supply in every preferred bundle.
    marginal : ndarray of bool, shape (..., n, m)
        ``M_i``: the marginal payoff level (case A) or the zero-payoff objects (case B).
    r : ndarray of int32, shape (..., n)
        Units taken from ``M_i`` in case A (0 in case B).
    mu : ndarray of int32, shape (..., n)
        Marginal payoff (``> 0`` in case A, 0 in case B).
    utility : ndarray of int64, shape (..., n)
        Indirect utility ``V_i(p)``, computed on the host in int64 (it reaches
        ``MAX_UNITS * MAX_VALUE = 2**40`` per buyer, beyond int32).
    case_a : ndarray of bool, shape (..., n)
    """


def _check_market(market: Any, name: str = "market") -> "MultiUnitMarket":
    if not isinstance(market, MultiUnitMarket):
        raise TypeError(f"{name}: expected MultiUnitMarket, got {type(market).__name__}")
    return market


def _check_prices(market: MultiUnitMarket, prices: Any, name: str = "prices") -> jax.Array:
    p = as_int_array(prices, name, min_ndim=1, max_abs=MAX_VALUE)
    if p.shape[-1] != market.n_objects:
        raise ValueError(f"{name}: last axis has {p.shape[-1]} entries, the market has "
                         f"{market.n_objects} objects")
    batch = broadcast_batch({"market": market.batch_shape, name: p.shape[:-1]})
    if batch != market.batch_shape:
        raise ValueError(f"{name}: batch shape {p.shape[:-1]} does not match the market's "
                         f"batch shape {market.batch_shape}")
    return jax.device_put(np.broadcast_to(p, batch + (market.n_objects,)).astype(np.int32))


def preferred_bundles(market: MultiUnitMarket, prices: ArrayLike, *,
                      devices: DevicesLike = None) -> PreferredBundles:
    """Greedy preferred-bundle structure of every buyer at integer ``prices``.

    Runs as one jitted, vmapped device kernel over the whole batch (int32, exact within the
    market's bounds).  Every preferred bundle of buyer ``i`` takes ``s_j`` units of each
    object of the strict set ``F_i``, ``r_i`` units spread over the marginal set ``M_i``
    (case A) or up to ``d_i - s(F_i)`` zero-payoff units of ``M_i`` (case B), and nothing
    else (Eickhoff et al., 2024, §2.1; definitions in :mod:`jaxwalras.kernels.greedy`).
    The indirect utility ``V_i(p) = sum_{j in F_i} s_j (v_ij - p_j) + r_i mu_i`` is then
    formed on the host in int64, where it cannot wrap around.

    Parameters
    ----------
    market : MultiUnitMarket
        Any batch shape.
    prices : array_like of int, shape (..., m)
        Non-negative integer prices (at most ``MAX_VALUE``), broadcast against the
        market's batch.
    devices : int, str, jax.Device or sequence of them, optional
        Devices the kernel runs on (:func:`jaxwalras.resolve_devices`).

    Returns
    -------
    PreferredBundles
        ``strict`` (``F_i``, bool ``(..., n, m)``), ``marginal`` (``M_i``), ``r`` (units from
        ``M_i`` in case A), ``mu`` (marginal payoff), ``utility`` (indirect utility
        ``V_i(p)``, int64 numpy) and ``case_a``.

    Raises
    ------
    TypeError, ValueError
        Not a market, or prices that are not integers in ``[0, MAX_VALUE]`` of the right
        shape.

    Examples
    --------
    >>> import jaxwalras as jw
    >>> mkt = jw.MultiUnitMarket([[5, 3]], demands=[2], supplies=[1, 1])
    >>> b = jw.preferred_bundles(mkt, [0, 0])
    >>> b.strict.tolist(), int(b.utility[0])
    ([[True, False]], 8)
    """
    _check_market(market)
    p = np.asarray(_check_prices(market, prices)).astype(np.int64)
    batch = market.batch_shape
    if not all(batch):
        raise ValueError(f"market: empty batch (batch shape {batch}); there is no market")
    n, m = market.n_buyers, market.n_objects
    B = int(np.prod(batch, dtype=np.int64))
    v, d, s = (np.asarray(x).reshape((B,) + x.shape[len(batch):]) for x in
               (market.values, market.demands, market.supplies))
    M = Padded(v, d, s, devices)
    parts = chunked(M, np.arange(B), lambda vv, dd, ss, idx: bundles_flat(
        *M.put(vv, dd, ss, M.cols(p.reshape(B, m), idx))))
    cat = lambda f: np.concatenate([f(b) for b in parts])  # noqa: E731
    strict = cat(lambda b: b.strict[:, :n, :m])
    marginal = cat(lambda b: b.marginal[:, :n, :m])
    r = cat(lambda b: np.asarray(b.r[:, :n], np.int64))
    mu = cat(lambda b: np.asarray(b.mu[:, :n], np.int64))
    case_a = cat(lambda b: b.case_a[:, :n])
    u = v.astype(np.int64) - p.reshape(B, 1, m)
    util = (strict * s.astype(np.int64)[:, None, :] * u).sum(-1) + r * mu
    res = (strict, marginal, r.astype(np.int32), mu.astype(np.int32), util, case_a)
    return PreferredBundles(*(x.reshape(batch + x.shape[1:]) for x in res))


def indirect_utility(market: MultiUnitMarket, prices: ArrayLike) -> np.ndarray:
    """Indirect utility ``V_i(p) = max_x sum_j x_ij (v_ij - p_j)`` of every buyer.

    Parameters
    ----------
    market : MultiUnitMarket
    prices : array_like of int, shape (..., m)
        Non-negative integer prices (at most ``MAX_VALUE``).

    Returns
    -------
    ndarray of int64, shape (..., n)
        The value of the greedy preferred bundle (:func:`preferred_bundles`), exact: up to
        ``MAX_UNITS * MAX_VALUE = 2**40`` per buyer, formed in int64.

    Raises
    ------
    TypeError, ValueError
        As :func:`preferred_bundles`.

    Examples
    --------
    >>> import jaxwalras as jw
    >>> mkt = jw.MultiUnitMarket([[10], [4]], demands=[2, 1], supplies=[2])
    >>> jw.indirect_utility(mkt, [4]).tolist()
    [12, 0]
    >>> int(jw.indirect_utility(jw.MultiUnitMarket([[2**20]], [4096], [4096]), [0])[0])
    4294967296
    """
    return preferred_bundles(market, prices).utility


def lyapunov(market: MultiUnitMarket, prices: ArrayLike) -> np.ndarray:
    """The Lyapunov function ``Lyap(p) = sum_j s_j p_j + sum_i V_i(p)``.

    Walrasian prices are exactly its minimisers over ``p >= 0``; the buyer-optimal prices
    are the least minimiser (Murota, Shioura and Yang, 2016; Eickhoff et al., 2024).

    Parameters
    ----------
    market : MultiUnitMarket
    prices : array_like of int, shape (..., m)
        Non-negative integer prices (at most ``MAX_VALUE``).

    Returns
    -------
    ndarray of int64, shape (...)
        Exact (formed in int64 on the host).

    Raises
    ------
    TypeError, ValueError
        As :func:`preferred_bundles`.

    Examples
    --------
    >>> import jaxwalras as jw
    >>> mkt = jw.MultiUnitMarket([[10], [4]], demands=[2, 1], supplies=[2])
    >>> jw.lyapunov(mkt, [4]).tolist(), jw.lyapunov(mkt, [3]).tolist()
    (20, 21)
    """
    _check_market(market)
    p = np.asarray(_check_prices(market, prices), np.int64)
    util = indirect_utility(market, p)
    return (np.asarray(market.supplies, np.int64) * p).sum(-1) + util.sum(-1)
