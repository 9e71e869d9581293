"""Set-function kernels for combinatorial markets (Lucier, 2013; Feldman, Gravin and
Lucier, 2013).

Buyers' values are dense tables over item bitmasks: ``values[..., i, S]`` is buyer ``i``'s
value for the set ``S`` (bit ``j`` of ``S`` set <=> item ``j`` in the set), ``2**m`` entries per
buyer. Everything here is pure array math (jit/vmap friendly, no host calls); the index
tables that depend only on ``m`` are built once with numpy and cached.

Kernels
-------
* :func:`item_demand` -- demand query at item prices: ``argmax_S v_i(S) - p(S)``.
* :func:`bundle_demand` -- demand query at bundle prices: the best *set of bundles* of a
  partition (disjoint bitmasks, one price each).
* :func:`welfare_dp` / :func:`dp_backtrack` -- exact welfare maximisation by the subset
  dynamic programme ``f_i(S) = max_{T subset S} v_i(T) + f_{i-1}(S \\ T)`` (cost ``n 3^m``).
* :func:`lyapunov` / :func:`ascending_auction` -- the Lyapunov function
  ``L(p) = sum_j p_j + sum_i max_S (v_i(S) - p(S))`` and its unit-step steepest descent
  from ``p = 0`` (the Gul--Stacchetti / Ausubel ascending auction for gross substitutes).
* :func:`cwe_dynamics` -- the bundling dynamics that produce a combinatorial Walrasian
  equilibrium (Feldman, Gravin & Lucier 2013), one step per market per iteration, all
  markets of a batch in lockstep.
"""
from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["subset_bits", "set_prices", "item_demand", "bundle_demand", "welfare_dp",
           "dp_backtrack", "lyapunov", "ordered_sum", "ascending_auction", "AuctionState",
           "CWEState", "cwe_dynamics", "popcount"]


# --------------------------------------------------------------------------- index tables
@functools.lru_cache(maxsize=None)
def _bits_np(m: int) -> np.ndarray:
    """``bits[S, j] = 1`` iff item ``j`` is in ``S``; shape ``(2**m, m)``, int32."""
    s = np.arange(2 ** m, dtype=np.int64)
    return ((s[:, None] >> np.arange(m)) & 1).astype(np.int32)


def subset_bits(m: int, dtype=jnp.float32) -> jax.Array:
    """Membership matrix ``(2**m, m)``: row ``S`` is the indicator vector of ``S``."""
    return jnp.asarray(_bits_np(m), dtype=dtype)


def popcount(x: jax.Array) -> jax.Array:
    """Number of set bits of non-negative int32 bitmasks (elementwise)."""
    return jax.lax.population_count(x.astype(jnp.int32))


@functools.lru_cache(maxsize=None)
def _submask_groups(m: int) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """For each popcount ``k``: the sets ``S`` with ``|S| = k`` (shape ``(C(m,k),)``) and all
    their submasks ``T`` (shape ``(C(m,k), 2**k)``, ``T[., 0] = 0``). Total size ``3**m``."""
    allsets = np.arange(2 ** m, dtype=np.int64)
    pc = _bits_np(m).sum(axis=1)
    groups = []
    for k in range(m + 1):
        sets = allsets[pc == k]
        # positions of the k set bits of each S, in increasing order
        pos = np.nonzero(_bits_np(m)[sets])[1].reshape(len(sets), k)
        sub = np.zeros((len(sets), 2 ** k), dtype=np.int64)
        r = np.arange(2 ** k, dtype=np.int64)
        for b in range(k):  # deposit bit b of r at position pos[:, b]
            sub |= ((r[None, :] >> b) & 1) << pos[:, b:b + 1]
        groups.append((sets.astype(np.int32), sub.astype(np.int32)))
    return tuple(groups)


# --------------------------------------------------------------------------- demand queries
def _slot_sums(prices: jax.Array, k: int) -> jax.Array:
    """``(..., k) -> (..., 2**k)``: entry ``S`` is ``sum_{j in S} p_j``, added item by item
    in index order (one fixed rounding order for every batch shape and device, and exact
    float32 on GPUs, which run float32 matmuls in TF32)."""
    bits = _bits_np(k)
    out = jnp.zeros(prices.shape[:-1] + (2 ** k,), prices.dtype)
    for j in range(k):
        out = out + jnp.where(jnp.asarray(bits[:, j] == 1), prices[..., j:j + 1], 0)
    return out


def set_prices(prices: jax.Array, m: int) -> jax.Array:
    """Price of every set: ``(..., m) -> (..., 2**m)``, ``P[S] = sum_{j in S} p_j`` (summed
    in item order)."""
    return _slot_sums(prices, m)


def item_demand(values: jax.Array, prices: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Demand query at item prices for every buyer.

    ``values (..., n, 2**m)`` and ``prices (..., m)`` broadcast on their leading axes.
    Returns ``(demand, utility)``: ``demand (..., n)`` int32 bitmask of a utility-maximising
    set (ties broken towards the smallest bitmask) and ``utility (..., n)`` its utility
    ``max_S v_i(S) - sum_{j in S} p_j`` (>= 0 because ``v_i(empty) = 0``).
    """
    m = prices.shape[-1]
    util = values - set_prices(prices.astype(values.dtype), m)[..., None, :]
    return jnp.argmax(util, axis=-1).astype(jnp.int32), jnp.max(util, axis=-1)


def _bundle_unions(bundles: jax.Array) -> jax.Array:
    """Union bitmask of every subset of bundle slots: ``(..., K) -> (..., 2**K)``."""
    k = bundles.shape[-1]
    bits = jnp.asarray(_bits_np(k))                       # (2^K, K)
    # bundles are disjoint, so OR == sum; keep it in int32
    return jnp.sum(bits * bundles[..., None, :].astype(jnp.int32), axis=-1)


def bundle_demand(values: jax.Array, bundles: jax.Array, prices: jax.Array,
                  allowed: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
    """Demand query at bundle prices: the best set of bundles for every buyer.

    ``values (..., n, 2**m)``; ``bundles (..., K)`` disjoint int bitmasks (0 = empty slot,
    never chosen); ``prices (..., K)``; optional ``allowed (..., n, K)`` bool restricts the
    slots a buyer may choose. Returns ``(choice, utility)``: ``choice (..., n)`` a K-bit mask
    over slots of a utility-maximising set of bundles, ``utility (..., n)`` its utility
    ``v_i(union) - sum of prices`` (>= 0: the empty set of bundles is always available).
    """
    k = bundles.shape[-1]
    bits = jnp.asarray(_bits_np(k))                                   # (2^K, K)
    unions = _bundle_unions(bundles)                                  # (..., 2^K)
    cost = _slot_sums(prices.astype(values.dtype), k)                 # (..., 2^K)
    vals = jnp.take_along_axis(values, unions[..., None, :], axis=-1)  # (..., n, 2^K)
    util = vals - cost[..., None, :]
    bad = jnp.any((bundles[..., None, :] == 0) & (bits == 1), axis=-1)  # uses an empty slot
    ok = ~bad[..., None, :]
    if allowed is not None:
        forb = jnp.any((~allowed[..., :, None, :]) & (bits == 1), axis=-1)  # (..., n, 2^K)
        ok = ok & ~forb
    util = jnp.where(ok, util, -jnp.inf)
    return jnp.argmax(util, axis=-1).astype(jnp.int32), jnp.max(util, axis=-1)


# --------------------------------------------------------------------------- welfare DP
def welfare_dp(values: jax.Array, live: jax.Array | None = None
               ) -> tuple[jax.Array, jax.Array]:
    """Exact welfare maximisation by the subset DP over ``2**m`` sets.

    ``f_{-1} = 0``; ``f_i(S) = max_{T subset S} v_i(T) + f_{i-1}(S \\ T)``. Returns
    ``(best, choice)``: ``best (...)`` the optimal welfare ``f_{n-1}(M)`` and
    ``choice (..., n, 2**m)`` int32, the set buyer ``i`` takes when ``S`` is left for
    buyers ``0..i`` (use :func:`dp_backtrack`). Work ``n 3^m`` per market, vectorised over
    the leading axes (memory ``batch x 3^m``); a ``lax.scan`` over buyers, and the submask
    pairs grouped by ``|S|`` into ``m + 1`` dense gathers (no scatter). ``live`` ``(n,)``
    bool (optional): buyers marked False are skipped (``f_i = f_{i-1}``, they take
    nothing), so padding buyers change no value and no choice.
    """
    t = values.shape[-1]
    m = int(round(np.log2(t)))
    groups = _submask_groups(m)
    order = np.concatenate([sets for sets, _ in groups])
    inv = jnp.asarray(np.argsort(order))
    batch = values.shape[:-2]

    def step(f, v):
        fs, cs = [], []
        for sets, sub in groups:
            sub_j = jnp.asarray(sub)
            cand = v[..., sub_j] + f[..., jnp.asarray(sets[:, None] ^ sub)]   # (..., C, 2^k)
            a = jnp.argmax(cand, axis=-1)
            fs.append(jnp.max(cand, axis=-1))
            cs.append(_pick(sub_j, a))
        new_f = jnp.concatenate(fs, axis=-1)[..., inv]
        new_c = jnp.concatenate(cs, axis=-1)[..., inv].astype(jnp.int32)
        return new_f, new_c

    n = values.shape[-2]
    live = jnp.ones((n,), bool) if live is None else jnp.asarray(live, bool)

    def masked(f, xs):
        v, keep = xs
        new_f, new_c = step(f, v)
        return jnp.where(keep, new_f, f), jnp.where(keep, new_c, 0)

    f0 = jnp.zeros(batch + (t,), values.dtype)
    f, choice = jax.lax.scan(masked, f0, (jnp.moveaxis(values, -2, 0), live))
    return f[..., t - 1], jnp.moveaxis(choice, 0, -2)


def _pick(sub: jax.Array, a: jax.Array) -> jax.Array:
    """``sub[r, a[..., r]]`` for every row ``r`` (``a`` has leading batch axes)."""
    return sub[jnp.arange(sub.shape[0]), a]


def dp_backtrack(choice: jax.Array) -> jax.Array:
    """Recover an optimal allocation ``(..., n)`` (bitmasks) from :func:`welfare_dp`."""
    n, t = choice.shape[-2], choice.shape[-1]
    left = jnp.full(choice.shape[:-2], t - 1, jnp.int32)
    alloc = []
    for i in range(n - 1, -1, -1):
        ti = jnp.take_along_axis(choice[..., i, :], left[..., None], axis=-1)[..., 0]
        alloc.append(ti)
        left = left ^ ti
    return jnp.stack(alloc[::-1], axis=-1)


# --------------------------------------------------------------------------- Lyapunov / auction
def ordered_sum(x: jax.Array) -> jax.Array:
    """Sum over the last axis, left to right (``((x_0 + x_1) + x_2) + ...``): the order
    does not depend on the axis length, so trailing zeros (padding buyers) change no bit
    of the result, which a tree reduction does not promise."""
    n = x.shape[-1]
    if n == 0:
        return jnp.zeros(x.shape[:-1], x.dtype)
    if n <= 64:
        acc = x[..., 0]
        for i in range(1, n):
            acc = acc + x[..., i]
        return acc
    xs = jnp.moveaxis(x, -1, 0)
    return jax.lax.fori_loop(1, n, lambda i, a: a + xs[i], xs[0])


def lyapunov(values: jax.Array, prices: jax.Array) -> jax.Array:
    """``L(p) = sum_j p_j + sum_i max_S (v_i(S) - p(S))``: the configuration-LP dual objective
    at ``u_i = `` indirect utility. ``min_{p >= 0} L`` is the LP value; a WE exists iff it
    equals the optimal welfare, and then the minimisers are exactly the WE prices. The sum
    over buyers is :func:`ordered_sum` (buyers who value nothing add exact zeros)."""
    _, u = item_demand(values, prices)
    return jnp.sum(prices, axis=-1) + ordered_sum(u)


class AuctionState(NamedTuple):
    prices: jax.Array      # (..., m)
    done: jax.Array        # (...,) bool: no unit ascent direction lowers L
    steps: jax.Array       # (...,) int32 raises made


def ascending_auction(values: jax.Array, step: float | jax.Array, max_steps: int | jax.Array,
                      rtol: float = 1e-6, tol: jax.Array | None = None,
                      budget: jax.Array | None = None) -> AuctionState:
    """Unit-step steepest descent of the Lyapunov function from ``p = 0``.

    At each round every market evaluates ``L(p + step * chi_X)`` for all ``2**m`` sets ``X``
    (one batched demand query per direction) and moves to the *smallest* minimising ``X``
    if it lowers ``L``; it stops when no direction lowers ``L``.  For gross substitutes the
    minimisers are closed under intersection, and the one with the fewest items (ties: the
    smallest bitmask) is their intersection; beyond gross substitutes the intersection
    can be empty or not a minimiser, and the fewest-items minimiser still lowers ``L`` at
    every step, so the descent always ends. For gross-substitutes values on the grid ``step * Z`` this is the
    Gul--Stacchetti (1999) / Ausubel (2006) ascending auction: it ends at the minimal
    Walrasian price vector after ``max_j p*_j / step`` rounds (Murota's L-natural convex
    steepest descent). A ``while_loop`` runs until every market is done or out of budget:
    a market makes at most ``budget`` raises (shape ``(...)``, default ``max_steps``) and
    then stays frozen, not done; ``max_steps`` bounds the rounds of the loop. Cost per
    round ``n 4^m`` per market: meant for small ``m``. ``L`` values within ``tol`` (shape
    ``(...)``; default ``rtol * max|v|`` of each market, no absolute floor) count as equal.
    """
    t = values.shape[-1]
    m = int(round(np.log2(t)))
    dirs = subset_bits(m, values.dtype) * step                         # (2^m, m)
    batch = values.shape[:-2]
    if tol is None:
        tol = rtol * jnp.max(jnp.abs(values), axis=(-2, -1))
    max_steps = jnp.asarray(max_steps, jnp.int32)
    idx = jnp.arange(t, dtype=jnp.int32)
    key = popcount(idx) * t + idx              # fewest items first, then smallest bitmask
    budget = jnp.broadcast_to(max_steps if budget is None
                              else jnp.asarray(budget, jnp.int32), batch)

    def running(state: AuctionState) -> jax.Array:
        return ~state.done & (state.steps < budget)

    def cond(carry):
        state, k = carry
        return (k < max_steps) & jnp.any(running(state))

    def body(carry):
        state, k = carry
        p = state.prices
        cand = p[..., None, :] + dirs                                  # (..., 2^m, m)
        lv = lyapunov(values[..., None, :, :], cand)                   # (..., 2^m)
        best = jnp.min(lv, axis=-1)
        is_min = lv <= best[..., None] + tol[..., None]
        xmask = jnp.argmin(jnp.where(is_min, key, jnp.iinfo(jnp.int32).max), axis=-1)
        improve = best < lv[..., 0] - tol
        active = running(state)
        move = improve & active
        delta = jnp.take(dirs, xmask, axis=0)                          # (..., m)
        newp = jnp.where(move[..., None], p + delta, p)
        return AuctionState(newp, state.done | (active & ~improve),
                            state.steps + move.astype(jnp.int32)), k + 1

    init = AuctionState(jnp.zeros(batch + (m,), values.dtype),
                        jnp.zeros(batch, bool), jnp.zeros(batch, jnp.int32))
    out, _ = jax.lax.while_loop(cond, body, (init, jnp.asarray(0, jnp.int32)))
    return out


# --------------------------------------------------------------------------- CWE dynamics
class CWEState(NamedTuple):
    bundles: jax.Array     # (..., m) int32 disjoint bitmasks; 0 = empty slot
    prices: jax.Array      # (..., m)
    holder: jax.Array      # (..., m) int32 buyer holding the slot's bundle, -1 = unsold
    done: jax.Array        # (...,) bool
    steps: jax.Array       # (...,) int32 purchases made


def cwe_dynamics(values: jax.Array, state: CWEState, tol: jax.Array,
                 num_steps: int, select: str = "first") -> CWEState:
    """Run ``num_steps`` rounds of the bundling dynamics (Feldman, Gravin and Lucier, 2013;
    the construction is in ``docs/combinatorial.md``), batched.

    One round, in every market that is not done: take the lowest-indexed empty-handed buyer
    ``i`` whose best set of bundles ``D`` (:func:`bundle_demand`) has utility ``g > tol``;
    merge ``D`` into one bundle ``U`` held by ``i`` (previous holders lose their bundles) and
    price it at ``max(v_i(U) - u_out, p(D) + tol)``, where ``u_out`` is ``i``'s best utility
    from bundles disjoint from ``D`` -- the highest price at which ``U`` is still her demand,
    but at least ``tol`` above what the merged bundles cost. A market is done when no
    empty-handed buyer gains more than ``tol``. Every purchase raises revenue by at least
    ``tol`` and revenue never exceeds welfare, so a market finishes within
    ``OPT / tol + n`` purchases. ``tol`` has shape ``(...)`` (one per market) or
    ``(..., n)`` (one per buyer: buyer ``i`` buys when she gains more than ``tol_i``, at
    least ``tol_i`` above the pieces).
    """
    n = values.shape[-2]
    k = state.bundles.shape[-1]
    slot = jnp.arange(k, dtype=jnp.int32)
    tol = jnp.asarray(tol, values.dtype)
    if tol.ndim == values.ndim - 2:                     # one tolerance per market
        tol = jnp.broadcast_to(tol[..., None], values.shape[:-1])

    def body(st: CWEState, _):
        held = jnp.any(st.holder[..., None, :] == jnp.arange(n)[:, None], axis=-1)  # (..., n)
        choice, g = bundle_demand(values, st.bundles, st.prices)               # (..., n)
        want = (~held) & (g > tol)
        any_want = jnp.any(want, axis=-1)
        if select == "first":
            i = jnp.argmax(want, axis=-1)                                       # first buyer
        else:   # the buyer whose purchase raises revenue most (fewer, bigger price steps)
            in_all = ((choice[..., :, None] >> slot) & 1).astype(bool)           # (..., n, K)
            _, uo = bundle_demand(values, st.bundles, st.prices, ~in_all)
            um = jnp.sum(jnp.where(in_all, st.bundles[..., None, :], 0), axis=-1)
            pdall = jnp.sum(jnp.where(in_all, st.prices[..., None, :], 0), axis=-1)
            vu = jnp.take_along_axis(values, um[..., None], axis=-1)[..., 0]
            i = jnp.argmax(jnp.where(want, vu - uo - pdall, -jnp.inf), axis=-1)
        act = any_want & ~st.done
        d = jnp.take_along_axis(choice, i[..., None], axis=-1)[..., 0]          # slot mask
        in_d = ((d[..., None] >> slot) & 1).astype(bool)                        # (..., K)
        vi = jnp.take_along_axis(values, i[..., None, None], axis=-2)[..., 0, :]  # (..., 2^m)
        # best utility of i from bundles disjoint from D
        allowed = jnp.broadcast_to(~in_d[..., None, :], in_d.shape[:-1] + (1, k))
        _, u_out = bundle_demand(vi[..., None, :], st.bundles, st.prices, allowed)
        u_out = u_out[..., 0]
        umask = jnp.sum(jnp.where(in_d, st.bundles, 0), axis=-1)
        pd = jnp.sum(jnp.where(in_d, st.prices, 0), axis=-1)
        v_u = jnp.take_along_axis(vi, umask[..., None], axis=-1)[..., 0]
        tol_i = jnp.take_along_axis(tol, i[..., None], axis=-1)[..., 0]
        newprice = jnp.maximum(v_u - u_out, pd + tol_i)
        # the merged bundle goes to the first slot of D; the other slots of D empty out
        first = jnp.argmax(in_d, axis=-1)
        is_first = slot == first[..., None]
        nb = jnp.where(in_d, jnp.where(is_first, umask[..., None], 0), st.bundles)
        npr = jnp.where(in_d, jnp.where(is_first, newprice[..., None], 0), st.prices)
        nh = jnp.where(in_d, jnp.where(is_first, i[..., None].astype(jnp.int32), -1), st.holder)
        # holders of merged bundles lose them (each holder holds exactly one bundle)
        a = act[..., None]
        return CWEState(jnp.where(a, nb, st.bundles).astype(st.bundles.dtype),
                        jnp.where(a, npr, st.prices).astype(st.prices.dtype),
                        jnp.where(a, nh, st.holder).astype(st.holder.dtype),
                        st.done | ~any_want,
                        (st.steps + act).astype(st.steps.dtype)), None

    out, _ = jax.lax.scan(body, state, None, length=num_steps)
    return out
