"""Greedy preferred bundles for multi-unit matching markets (Eickhoff, McCormick, Peis,
Rieken and Vargas Koch, Networks 2024, §2.1).

Pure array functions for ONE market; batch them with ``jax.vmap`` (see
:func:`batched`). All arithmetic is integer and exact in the dtype of the inputs: with the
library's int32 inputs and its bounds (values, prices <= 2**24, units <= 2**16, at most
2**31 - 1 units per market) no payoff, price, unit count or cut value can overflow, but
the indirect utility ``V_i = sum s_j u_ij + r_i mu_i`` (up to 2**40) can: the library
forms it on the host in int64 (:func:`jaxwalras.preferred_bundles`); call the kernel with
int64 inputs under ``jax.enable_x64`` if you need it on the device.

Market: values ``v`` (n, m), demands ``d`` (n,), supplies ``s`` (m,), prices ``p`` (m,).
Payoffs ``u_ij = v_ij - p_j``. Objects with ``u > 0`` are grouped into payoff levels,
best first, and whole levels are taken while the level's total supply is ``< rem``
(``rem = d_i`` minus what was taken). Those objects form the strict set ``F_i``. The first
level whose supply is ``>= rem`` is the marginal set ``M_i`` with marginal payoff
``mu_i > 0`` and ``r_i = rem`` units to take from it (case A). If the positive levels run
out first (case B), ``mu_i = 0``, ``M_i = {j : u_ij = 0}`` and ``r_i = 0``.

Cost. Nothing here sorts or compares objects pairwise. The whole structure follows from
one number per buyer, the payoff ``mu_i`` of her ``d_i``-th best unit, which is the
largest ``t`` with ``C_i(t) = sum_j s_j [u_ij >= t] >= d_i`` and is found by bisection on
``t`` (:func:`unit_threshold`): ``O(n m log V)`` per market with ``V`` the largest payoff
(``log V <= 25`` within the library's bounds), in masked sums that vectorise well on CPU
and GPU. The long step is ``O(n m)`` given the ``mu_i``. A singleton jump bisects on the
object's own price with ``O(n m)`` work per step, for the objects that are individually
overdemanded only (:func:`singleton_jumps`). No ``(n, m, m)`` or ``(n, n)`` array is
formed anywhere.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

__all__ = ["Bundles", "unit_threshold", "preferred_bundles", "forced_units", "long_step",
           "own_price_demand", "singleton_jumps", "batched_singleton_jumps", "batched"]


class Bundles(NamedTuple):
    """Greedy preferred-bundle structure of every buyer (one market; leading axes when batched)."""
    strict: jax.Array      # (n, m) bool: F_i, bought at full supply in every preferred bundle
    marginal: jax.Array    # (n, m) bool: M_i
    r: jax.Array           # (n,) int: units taken from M_i (case A), 0 in case B
    mu: jax.Array          # (n,) int: marginal payoff (> 0 in case A, 0 in case B)
    utility: jax.Array     # (n,) int: indirect utility V_i(p)
    case_a: jax.Array      # (n,) bool: True in case A


def _bisect(pred: Callable[[jax.Array], jax.Array], lo: jax.Array, hi: jax.Array
            ) -> tuple[jax.Array, jax.Array]:
    """Elementwise bisection for a monotone predicate (True up to some point, then False).

    Invariant: ``pred(lo)`` holds and ``pred(hi)`` does not (neither is evaluated). Returns
    the closed brackets ``(lo, hi)`` with ``hi == lo + 1``: ``lo`` is the largest point
    where ``pred`` holds. A ``while_loop`` that stops once every bracket is closed, so the
    number of steps adapts to the widest bracket (``ceil(log2(hi - lo))``); a closed
    bracket never moves, so how many steps run changes no answer."""
    def cond(c):
        return jnp.any(c[1] - c[0] > 1)

    def body(c):
        lo, hi = c
        mid = lo + (hi - lo) // 2
        ok = pred(mid)
        still = hi - lo > 1
        return jnp.where(still & ok, mid, lo), jnp.where(still & ~ok, mid, hi)

    return jax.lax.while_loop(cond, body, (lo, hi))


def _units_at_least(u: jax.Array, s: jax.Array, t: jax.Array) -> jax.Array:
    """``C_i(t_i) = sum_j s_j [u_ij >= t_i]`` for every buyer: ``(n,)``."""
    return jnp.sum(jnp.where(u >= t[:, None], s[None, :], 0), axis=1)


def unit_threshold(u: jax.Array, s: jax.Array, d: jax.Array,
                   prev: tuple[jax.Array, jax.Array] | None = None
                   ) -> tuple[jax.Array, jax.Array]:
    """Marginal payoff ``mu_i`` and case of every buyer from her payoffs ``u`` ``(n, m)``.

    Case A holds when some payoff is positive and the positive units reach the demand,
    ``C_i(1) >= d_i``; then ``mu_i = max {t in [1, max_j u_ij] : C_i(t) >= d_i}`` is the
    payoff of the ``d_i``-th best unit (for ``d_i = 0``: the best payoff). Otherwise
    (case B) ``mu_i = 0``. By bisection on ``t``: ``O(n m log(max u))``.

    ``prev = (mu0, delta)`` narrows the bisection (same result): ``mu0`` ``(n,)`` the
    marginal payoffs at prices lower than these by at most ``delta`` (a scalar ``>= 0``)
    on every object, or ``-1`` where unknown. Payoffs then fell by at most ``delta``, so
    ``C_i`` fell pointwise and ``C_i(t) >= C_i^0(t + delta)``: ``mu0_i - delta <= mu_i <=
    mu0_i`` in case A (which implies case A at the lower prices), and the bisection takes
    ``log2(delta + 1)`` steps; ``delta = 0`` reads ``mu0`` off.
    """
    umax = jnp.max(u, axis=1)
    case_a = (umax > 0) & (_units_at_least(u, s, jnp.ones_like(d)) >= d)
    lo = jnp.ones_like(d)
    hi = jnp.where(case_a, umax + 1, 2)          # case B: a closed bracket, no steps
    if prev is not None:
        mu0, delta = prev
        known = case_a & (mu0 >= 0)
        lo = jnp.where(known, jnp.maximum(lo, mu0 - delta), lo)
        hi = jnp.where(known, jnp.minimum(hi, mu0 + 1), hi)
    mu, _ = _bisect(lambda t: _units_at_least(u, s, t) >= d, lo, hi)
    return jnp.where(case_a, mu, 0), case_a


def preferred_bundles(values: jax.Array, demands: jax.Array, supplies: jax.Array,
                      prices: jax.Array,
                      prev: tuple[jax.Array, jax.Array] | None = None) -> Bundles:
    """Greedy preferred-bundle structure ``(F, M, r, mu, V)`` of one market at ``prices``.

    Every preferred bundle of buyer ``i`` takes ``s_j`` units of each ``j in F_i``, exactly
    ``r_i`` units spread over ``M_i`` in case A, or up to ``d_i - s(F_i)`` zero-payoff
    units of ``M_i`` in case B, and nothing else (Eickhoff et al., 2024, §2.1).
    ``V_i = sum_{F_i} s_j u_ij + r_i mu_i``. With ``mu_i`` from :func:`unit_threshold`:
    ``F_i = {u_ij > mu_i}``, ``M_i = {u_ij = mu_i}`` (in case B, ``mu_i = 0``) and
    ``r_i = d_i - s(F_i)`` in case A. ``prev``: see :func:`unit_threshold` (it changes
    only the cost).
    """
    v, d, s = values, demands, supplies
    n, m = v.shape
    if n == 0 or m == 0:
        z = jnp.zeros((n, m), bool)
        zi = jnp.zeros((n,), v.dtype)
        return Bundles(z, z, zi, zi, zi, jnp.zeros((n,), bool))
    u = v - prices[None, :]
    mu, case_a = unit_threshold(u, s, d, prev)
    strict = u > mu[:, None]
    marginal = u == mu[:, None]
    r = jnp.where(case_a, d - jnp.sum(jnp.where(strict, s[None, :], 0), axis=1), 0)
    util = jnp.sum(jnp.where(strict, s[None, :] * u, 0), axis=1) + r * mu
    return Bundles(strict, marginal, r.astype(v.dtype), mu.astype(v.dtype),
                   util.astype(v.dtype), case_a)


def _levels(u, s, d, prev=None):
    """``(mu, case_a, strict, marg, r, s(M))`` with ``marg`` the case-A marginal level
    (empty in case B, where zero-payoff objects are never forced); ``prev`` as in
    :func:`unit_threshold`."""
    mu, case_a = unit_threshold(u, s, d, prev)
    strict = u > mu[:, None]
    marg = case_a[:, None] & (u == mu[:, None])
    r = jnp.where(case_a, d - jnp.sum(jnp.where(strict, s[None, :], 0), axis=1), 0)
    s_m = jnp.sum(jnp.where(marg, s[None, :], 0), axis=1)
    return mu, case_a, strict, marg, r, s_m


def _prefix(x: jax.Array) -> jax.Array:
    """Exclusive prefix sums along the last axis (an associative scan: ``O(m log m)``)."""
    inc = jax.lax.associative_scan(jnp.add, x, axis=x.ndim - 1)
    return inc - x


def forced_units(values: jax.Array, demands: jax.Array, supplies: jax.Array,
                 prices: jax.Array, in_set: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Fewest units of the object set ``X`` (``in_set``, (m,) bool) in any preferred bundle.

    Computed by the greedy that breaks payoff ties in favour of objects outside ``X``
    (then by index) and takes only positive-payoff units. Returns
    ``(units (n,), taken (n, m))`` where ``taken`` is that greedy bundle. ``-units`` is the
    right derivative of the indirect utility ``V_i(p + t 1_X)`` at ``t = 0``. The greedy
    takes ``F_i`` in full, then ``r_i`` units of the level ``M_i``: its objects outside
    ``X`` first, in index order.
    """
    v, d, s = values, demands, supplies
    u = v - prices[None, :]
    mu, case_a, strict, marg, r, _ = _levels(u, s, d)
    x = in_set[None, :]
    out_m = jnp.where(marg & ~x, s[None, :], 0)
    in_m = jnp.where(marg & x, s[None, :], 0)
    left_for_x = r - jnp.sum(out_m, axis=1)
    taken = jnp.where(strict & (u > 0), s[None, :], 0)
    taken = taken + jnp.where(marg & ~x, jnp.clip(r[:, None] - _prefix(out_m), 0, s[None, :]), 0)
    taken = taken + jnp.where(marg & x, jnp.clip(left_for_x[:, None] - _prefix(in_m), 0,
                                                 s[None, :]), 0)
    units = jnp.sum(jnp.where(x, taken, 0), axis=1)
    return units, taken


def long_step(values: jax.Array, demands: jax.Array, supplies: jax.Array,
              prices: jax.Array, in_set: jax.Array, cap: jax.Array,
              mu: jax.Array | None = None) -> jax.Array:
    """Adapted step length: how far ``X`` can be raised before the Lyapunov slope changes.

    Along ``p + t 1_X`` the slope of ``Lyap`` is ``s(X) - sum_i x_i(t)`` with ``x_i`` the
    fewest ``X``-units in a preferred bundle (:func:`forced_units`); each ``x_i`` is
    non-increasing in ``t``. Buyer ``i``'s ``x_i`` first drops when a taken ``X`` object
    ``j`` reaches payoff 0 (``t = u_ij``) or ties with a positive-payoff object ``k`` outside
    ``X`` that has unbought supply (``t = u_ij - u_ik``). The step is the smallest such ``t``
    over all buyers, capped at ``cap`` (a positive int). This is the long-step steepest
    descent of the L-natural-convex Lyapunov function (Shioura, 2017, Prop. 4.16;
    Eickhoff et al., 2024, §6).

    ``O(n m)`` given the marginal payoffs: the taken ``X`` objects are those of ``F_i`` with
    supply, and those of ``M_i`` when ``r_i`` exceeds the supply of ``M_i`` outside ``X``;
    the unbought positive objects outside ``X`` lie below ``mu_i``, or on ``M_i`` when its
    supply outside ``X`` exceeds ``r_i``. ``mu``: the marginal payoffs at ``prices``
    where known (``-1`` elsewhere), as :func:`preferred_bundles` returned them; they
    save their bisection.
    """
    v, d, s = values, demands, supplies
    u = v - prices[None, :]
    prev = None if mu is None else (mu, jnp.zeros((), mu.dtype))
    mu, case_a, strict, marg, r, _ = _levels(u, s, d, prev)
    big = jnp.asarray(cap, u.dtype)
    x = in_set[None, :]
    has = (s > 0)[None, :]
    s_m_out = jnp.sum(jnp.where(marg & ~x, s[None, :], 0), axis=1)
    level_x_taken = case_a & (r > s_m_out)          # some X object on M_i gets units
    level_slack = case_a & (s_m_out > r)            # some object outside X on M_i is left
    taken_f = strict & x & has & (u > 0)
    # smallest payoff of a taken X object: it reaches 0 after t_zero raises
    t_zero = jnp.min(jnp.where(taken_f, u, big), axis=1)
    t_zero = jnp.where(level_x_taken, jnp.minimum(t_zero, mu), t_zero)
    any_taken = jnp.any(taken_f, axis=1) | level_x_taken
    below = ~x & has & (u > 0) & (u < mu[:, None])
    # it ties with the best slack non-X object after t_zero - max_k u_ik raises
    umax_slack = jnp.where(level_slack, mu, jnp.max(jnp.where(below, u, -big), axis=1))
    any_slack = level_slack | jnp.any(below, axis=1)
    t_tie = jnp.where(any_slack & any_taken, t_zero - umax_slack, big)
    step = jnp.minimum(jnp.min(t_zero), jnp.min(t_tie))
    return jnp.clip(step, 1, big)


def own_price_demand(values: jax.Array, demands: jax.Array, supplies: jax.Array,
                     prices: jax.Array, own: jax.Array) -> jax.Array:
    """Fewest units of each object ``j`` that the buyers must take when ``j`` alone is
    priced ``own[j]`` and every other object keeps its price in ``prices``.

    Buyer ``i`` must take ``clip(d_i - A_ij, 0, s_j)`` units of ``j`` when ``j``'s payoff
    ``w_ij = v_ij - own_j`` is positive, where ``A_ij = sum_{k != j, u_ik >= w_ij} s_k`` is
    the supply of the alternatives that are at least as good (ties can replace ``j``);
    this is the greedy structure's forced amount (``s_j`` on ``F_i``,
    ``max(0, r_i - s(M_i minus j))`` on ``M_i``, else 0). Returns ``D`` ``(m,)``, the sum
    over buyers; ``D_j`` is non-increasing in ``own_j``. Any ``own`` (above or below
    ``prices``): ``O(n m^2)`` work in ``(n, m)`` arrays; the auction itself uses the
    structure at ``prices`` and :func:`singleton_jumps`.
    """
    v, d, s = values, demands, supplies
    n, m = v.shape
    u = v - prices[None, :]
    w = v - own[None, :]

    def add(k, acc):
        uk = jax.lax.dynamic_index_in_dim(u, k, axis=1, keepdims=True)
        other = jnp.arange(m) != k
        return acc + jnp.where((uk >= w) & other[None, :], s[k], 0)

    A = jax.lax.fori_loop(0, m, add, jnp.zeros((n, m), u.dtype))
    c = jnp.where(w > 0, jnp.clip(d[:, None] - A, 0, s[None, :]), 0)
    return jnp.sum(c, axis=0)


#: payoff levels below the marginal one that the jump kernel reads in one fused pass
_UNROLLED_LEVELS = 8


def _tail_levels(u, s, mu, need):
    """The payoff levels of every buyer below her marginal payoff, best first, as far as
    she needs them: level ``t`` is ``lam[:, t] = max {u_ij < lam[:, t-1] : s_j > 0}``
    (``lam[:, -1] = mu``) with ``cnt[:, t]`` units on it, until the units at payoff
    ``>= lam`` reach ``need`` or no positive payoff is left. Returns ``(lam, cnt,
    levels)``: ``(n, m)`` arrays whose first ``levels`` columns are used (``levels`` is
    the largest count over the buyers; ``O(n m)`` per level).

    Also for a batch of markets as it is, with leading axes on every argument (``u``
    ``(..., n, m)``, ``s`` ``(..., m)``, ``mu`` and ``need`` ``(..., n)``): one loop for
    the whole batch, ``levels`` its largest count. A buyer that needs no more levels
    writes zeros, so every market's arrays are those it has alone (under ``jax.vmap``
    the per-market loop count makes the level index batched: every level write becomes
    a scatter and every carried array is masked per step)."""
    m = u.shape[-1]
    has = (s > 0)[..., None, :]
    sj = s[..., None, :]
    q0 = jnp.sum(jnp.where(u >= mu[..., None], sj, 0), axis=-1)

    def cond(c):
        t, last, q, _, _ = c
        return (t < m) & jnp.any((q < need) & (last > 0))

    def body(c):
        t, last, q, lam, cnt = c
        live = (q < need) & (last > 0)
        nxt = jnp.max(jnp.where(has & (u < last[..., None]) & (u > 0), u, 0), axis=-1)
        nxt = jnp.where(live, nxt, 0)
        k = jnp.sum(jnp.where(has & (u == nxt[..., None]) & (nxt > 0)[..., None], sj, 0),
                    axis=-1)
        lam = jax.lax.dynamic_update_index_in_dim(lam, nxt, t, axis=-1)
        cnt = jax.lax.dynamic_update_index_in_dim(cnt, k, t, axis=-1)
        return t + 1, nxt, q + k, lam, cnt

    zero = jnp.zeros(u.shape, u.dtype)
    levels, _, _, lam, cnt = jax.lax.while_loop(
        cond, body, (jnp.asarray(0, jnp.int32), mu, q0, zero, zero))
    return lam, cnt, q0, levels


def singleton_jumps(values: jax.Array, demands: jax.Array, supplies: jax.Array,
                    prices: jax.Array, nbits: int | None = None) -> jax.Array:
    """Raise every individually overdemanded object to where it stops being so.

    Object ``j`` is individually overdemanded at ``p`` when the units the buyers must
    take, ``D_j(p_j)`` (:func:`own_price_demand`), exceed ``s_j``: then
    ``Lyap(p + e_j) - Lyap(p) = s_j - D_j < 0``. If ``p <= p*`` this forces ``p_j < p*_j``:
    otherwise submodularity of the L-natural-convex ``Lyap`` gives
    ``Lyap(p* + e_j) - Lyap(p*) <= Lyap(p + e_j) - Lyap(p) < 0``, contradicting the
    minimality of ``p*``. Applied along ``p + t e_j`` (``D_j`` falls as ``t`` grows) this
    lets ``p_j`` rise to ``T_j = min{q >= p_j : D_j(q) <= s_j}`` with every other price
    fixed, and the componentwise maximum of such raises is still ``<= p*``
    (a Jacobi step of the "individual excess demand" tatonnement; Murota, Shioura and
    Yang 2016 for the L-natural-convex setting). Returns the new prices ``(m,)``.

    Cost, without sorting: for ``q >= p_j`` buyer ``i`` must take
    ``c_ij(q) = clip(d_i + s_j - C_i(w), 0, s_j)`` units of ``j`` while ``w = v_ij - q > 0``,
    with ``C_i(w)`` her units at payoff ``>= w`` at ``p`` (``j`` included). That is ``s_j``
    while ``w > mu_i`` (:func:`unit_threshold`); below, only her payoff levels under
    ``mu_i`` down to where ``C_i`` reaches ``d_i + max s`` matter (:func:`_tail_levels`,
    ``L`` of them, ``L <= min(m, max s + 1)``). Every ``T_j`` is then bisected at once on
    ``q``: ``O(n m L)`` per step, steps until every bracket closes
    (``<= log2(max u) + 1``). ``nbits`` is accepted for compatibility and ignored.
    """
    del nbits
    if values.shape[0] == 0 or values.shape[1] == 0:
        return prices
    mu, lam, cnt, q0, lo, hi, levels = _jump_setup(values, demands, supplies, prices)
    m = values.shape[1]
    return _jump_bisect(values, demands, supplies, mu, lam, cnt, q0, lo, hi,
                        min(m, _UNROLLED_LEVELS), jnp.maximum(levels, _UNROLLED_LEVELS))


def _jump_setup(v, d, s, p, prev=None):
    """The prices-only part of :func:`singleton_jumps` for one market: ``(mu, lam, cnt,
    q0, lo, hi, levels)``, the brackets ``(lo, hi]`` of every ``T_j`` and the tail levels
    (:func:`_tail_levels`) that :func:`_jump_bisect` reads; ``prev`` as in
    :func:`unit_threshold`."""
    u, mu, need, lo, hi = _jump_pre(v, d, s, p, prev)
    lam, cnt, q0, levels = _tail_levels(u, s, mu, need)
    return mu, lam, cnt, q0, lo, hi, levels


def _jump_pre(v, d, s, p, prev=None):
    """:func:`_jump_setup` up to the tail levels: ``(u, mu, need, lo, hi)``."""
    u = v - p[None, :]
    mu, case_a, strict, marg, r, s_m = _levels(u, s, d, prev)
    sj = s[None, :]
    c0 = jnp.where(strict & (u > 0), sj,
                   jnp.where(marg, jnp.clip(r[:, None] - s_m[:, None] + sj, 0, sj), 0))
    over = jnp.sum(c0, axis=0) > s
    need = jnp.where(case_a & jnp.any(over), d + jnp.max(s), 0)
    # T_j in (lo, hi]: D(lo) > s_j where overdemanded, D(hi) = 0 <= s_j
    top = jnp.maximum(jnp.max(u, axis=0), 0)
    lo = jnp.where(over, p, p - 1)
    hi = jnp.where(over, p + top, p)
    return u, mu, need, lo, hi


def _jump_bisect(v, d, s, mu, lam, cnt, q0, lo, hi, unrolled: int, upto):
    """The bisection of :func:`singleton_jumps` for one market: the levels ``t <
    unrolled`` (static) are read in one fused pass, those in ``[unrolled, upto)`` (a
    traced count, or ``None`` for none) in a loop. Levels at or past a buyer's own count
    hold no units, so any ``upto`` at least the market's level count gives the same
    ``T``."""
    m = v.shape[1]
    sj = s[None, :]

    def units_at(w):                      # C_i(w) for mu_i >= w > 0, from the levels
        def add(t, acc):
            lt = jax.lax.dynamic_index_in_dim(lam, t, axis=1)
            ct = jax.lax.dynamic_index_in_dim(cnt, t, axis=1)
            return acc + jnp.where(lt >= w, ct, 0)
        acc = jnp.broadcast_to(q0[:, None], w.shape)
        for t in range(min(m, unrolled)):
            acc = add(t, acc)
        if upto is None:
            return acc
        return jax.lax.fori_loop(min(m, unrolled), upto, add, acc)

    def still_over(q):                    # D_j(q) > s_j, for q >= p_j
        w = v - q[None, :]
        c = jnp.where(w > mu[:, None], sj, jnp.clip(d[:, None] + sj - units_at(w), 0, sj))
        return jnp.sum(jnp.where(w > 0, c, 0), axis=0) > s

    _, T = _bisect(still_over, lo, hi)
    return T


#: level counts the batched jump kernel has a fully unrolled bisection for
_JUMP_UNROLLS = (2, 4, 8)


def batched_singleton_jumps(values: jax.Array, demands: jax.Array, supplies: jax.Array,
                            prices: jax.Array,
                            prev: tuple[jax.Array, jax.Array] | None = None
                            ) -> tuple[jax.Array, jax.Array]:
    """:func:`singleton_jumps` for a batch of markets ``(B, n, m)`` (same results), and
    the marginal payoffs ``mu`` ``(B, n)`` at ``prices`` (:func:`unit_threshold`;
    ``prev``: per market, as there, ``((B, n), (B,))``).

    The bisection reads as many payoff levels as the batch needs at most (a switch over
    fully unrolled variants with 2, 4 or 8 levels, or 8 plus a loop), where the vmapped
    per-market kernel always reads 8 levels and loops over the rest with masks: on CPU the
    bisection, which dominates the auction's round kernel, then costs about what the
    levels the batch uses cost."""
    v, d, s, p = values, demands, supplies, prices
    B, n, m = v.shape
    if B == 0 or n == 0 or m == 0:
        return p, jnp.zeros((B, n), v.dtype)
    u, mu, need, lo, hi = jax.vmap(_jump_pre)(v, d, s, p, prev)
    lam, cnt, q0, most = _tail_levels(u, s, mu, need)          # one loop for the batch
    setup = (mu, lam, cnt, q0, lo, hi)
    unrolls = sorted({min(m, k) for k in _JUMP_UNROLLS})

    def variant(k, loop):
        def run(args):
            upto = most if loop else None
            return jax.vmap(lambda *a: _jump_bisect(*a, k, upto))(*args)
        return run

    branches = [variant(k, False) for k in unrolls]
    if m > unrolls[-1]:
        branches.append(variant(unrolls[-1], True))
    index = jnp.sum(most > jnp.asarray(unrolls))       # the first variant with k >= most
    index = jnp.minimum(index, len(branches) - 1)
    return jax.lax.switch(index, branches, (v, d, s, *setup)), setup[0]


def batched(fn, n_batch_axes: int = 1):
    """``jax.vmap`` ``fn`` over ``n_batch_axes`` leading axes of every argument."""
    for _ in range(n_batch_axes):
        fn = jax.vmap(fn)
    return fn
