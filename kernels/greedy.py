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
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

__all__ = ["Bundles", "preferred_bundles", "forced_units", "long_step", "own_price_demand",
           "singleton_jumps", "batched"]


class Bundles(NamedTuple):
    """Greedy preferred-bundle structure of every buyer (one market; leading axes when batched)."""
    strict: jax.Array      # (n, m) bool: F_i, bought at full supply in every preferred bundle
    marginal: jax.Array    # (n, m) bool: M_i
    r: jax.Array           # (n,) int: units taken from M_i (case A), 0 in case B
    mu: jax.Array          # (n,) int: marginal payoff (> 0 in case A, 0 in case B)
    utility: jax.Array     # (n,) int: indirect utility V_i(p)
    case_a: jax.Array      # (n,) bool: True in case A


def _levels(u: jax.Array, s: jax.Array, tiebreak: jax.Array | None = None):
    """Sort each buyer's objects by payoff (descending) and locate payoff levels.

    Returns the sort order and, per sorted position, the supply of all strictly better
    levels (``before``) and of all levels up to and including its own (``through``).
    ``tiebreak`` (n, m) int: among equal payoffs, smaller keys come first and the objects
    are *not* merged into one level (used for the min-units greedy of :func:`forced_units`).
    """
    n, m = u.shape
    if tiebreak is None:
        order = jnp.argsort(-u, axis=1, stable=True)
    else:
        # lexicographic (payoff desc, tiebreak asc) via two stable sorts
        o1 = jnp.argsort(tiebreak, axis=1, stable=True)
        o2 = jnp.argsort(-jnp.take_along_axis(u, o1, axis=1), axis=1, stable=True)
        order = jnp.take_along_axis(o1, o2, axis=1)
    us = jnp.take_along_axis(u, order, axis=1)
    ss = s[order]
    idx = jnp.broadcast_to(jnp.arange(m), (n, m))
    if tiebreak is None:
        same_prev = jnp.concatenate([jnp.zeros((n, 1), bool), us[:, 1:] == us[:, :-1]], axis=1)
    else:
        ts = jnp.take_along_axis(tiebreak, order, axis=1)
        same_prev = jnp.concatenate(
            [jnp.zeros((n, 1), bool), (us[:, 1:] == us[:, :-1]) & (ts[:, 1:] == ts[:, :-1])], axis=1)
    start = ~same_prev
    end = jnp.concatenate([start[:, 1:], jnp.ones((n, 1), bool)], axis=1)
    cs_incl = jnp.cumsum(ss, axis=1)
    cs_excl = cs_incl - ss
    a = jax.lax.cummax(jnp.where(start, idx, 0), axis=1)
    b = jax.lax.cummin(jnp.where(end, idx, m - 1), axis=1, reverse=True)
    before = jnp.take_along_axis(cs_excl, a, axis=1)
    through = jnp.take_along_axis(cs_incl, b, axis=1)
    return order, us, ss, a, before, through


def _unsort(x_sorted: jax.Array, order: jax.Array) -> jax.Array:
    inv = jnp.argsort(order, axis=1)
    return jnp.take_along_axis(x_sorted, inv, axis=1)


#: Below this many objects the kernels use O(m^2) pairwise comparisons instead of sorts
#: (much faster for the typical m <= a few dozen, on CPU and GPU alike).
PAIRWISE_MAX_OBJECTS = 48


def _twin(values: jax.Array, prices: jax.Array) -> jax.Array:
    """``values - prices`` computed by a different expression than ``u``.

    Comparing an array with a broadcast of *itself* (``u[:, :, None] > u[:, None, :]``)
    makes XLA:CPU emit a loop that is 10-25x slower than comparing two distinct arrays of
    the same values (measured on JAX 0.10, 2-core x86); the twin keeps the pairwise
    kernels on the fast path. The values are identical, so results do not change.
    """
    return -(prices[None, :] - values)


def _pairwise_before_through(u: jax.Array, s: jax.Array, u2: jax.Array | None = None):
    """Per object: supply of strictly better levels (``before``) and of levels at least as
    good (``through``), by pairwise comparison (no sort). ``u2``: a twin of ``u``."""
    u2 = u if u2 is None else u2
    better = u[:, :, None] > u2[:, None, :]          # [i, k, j]: k strictly better than j
    atleast = u[:, :, None] >= u2[:, None, :]
    sk = s[None, :, None]
    before = jnp.sum(jnp.where(better, sk, 0), axis=1)
    through = jnp.sum(jnp.where(atleast, sk, 0), axis=1)
    return before, through


def preferred_bundles(values: jax.Array, demands: jax.Array, supplies: jax.Array,
                      prices: jax.Array) -> Bundles:
    """Greedy preferred-bundle structure ``(F, M, r, mu, V)`` of one market at ``prices``.

    Every preferred bundle of buyer ``i`` takes ``s_j`` units of each ``j in F_i``, exactly
    ``r_i`` units spread over ``M_i`` in case A, or up to ``d_i - s(F_i)`` zero-payoff
    units of ``M_i`` in case B, and nothing else (Eickhoff et al., 2024, §2.1).
    ``V_i = sum_{F_i} s_j u_ij + r_i mu_i``.
    """
    v = values
    d = demands
    s = supplies
    n, m = v.shape
    if n == 0 or m == 0:
        z = jnp.zeros((n, m), bool)
        zi = jnp.zeros((n,), v.dtype)
        return Bundles(z, z, zi, zi, zi, jnp.zeros((n,), bool))
    u = v - prices[None, :]
    dd = d[:, None]
    if m <= PAIRWISE_MAX_OBJECTS:
        before, through = _pairwise_before_through(u, s, _twin(v, prices))
        pos = u > 0
        top = u == jnp.max(u, axis=1, keepdims=True)
        strict = pos & (through < dd)
        marg = pos & (through >= dd) & ((before < dd) | top)
        case_a = jnp.any(marg, axis=1)
        mu = jnp.where(case_a, jnp.max(jnp.where(marg, u, 0), axis=1), 0)
        r = jnp.where(case_a, jnp.max(jnp.where(marg, dd - before, 0), axis=1), 0)
        marginal = jnp.where(case_a[:, None], marg, u == 0)
    else:
        order, us, ss, a, before, through = _levels(u, s)
        pos = us > 0
        strict_s = pos & (through < dd)
        marg_s = pos & (through >= dd) & ((before < dd) | (a == 0))
        case_a = jnp.any(marg_s, axis=1)
        mu = jnp.where(case_a, jnp.max(jnp.where(marg_s, us, 0), axis=1), 0)
        r = jnp.where(case_a, jnp.max(jnp.where(marg_s, dd - before, 0), axis=1), 0)
        marg_s = jnp.where(case_a[:, None], marg_s, us == 0)
        strict = _unsort(strict_s, order)
        marginal = _unsort(marg_s, order)
    util = jnp.sum(jnp.where(strict, s[None, :] * u, 0), axis=1) + r * mu
    return Bundles(strict, marginal, r.astype(v.dtype), mu.astype(v.dtype),
                   util.astype(v.dtype), case_a)


def forced_units(values: jax.Array, demands: jax.Array, supplies: jax.Array,
                 prices: jax.Array, in_set: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Fewest units of the object set ``X`` (``in_set``, (m,) bool) in any preferred bundle.

    Computed by the greedy that breaks payoff ties in favour of objects outside ``X`` and
    takes only positive-payoff units. Returns ``(units (n,), taken (n, m))`` where
    ``taken`` is that greedy bundle. ``-units`` is the right derivative of the indirect
    utility ``V_i(p + t 1_X)`` at ``t = 0``.
    """
    v, d, s = values, demands, supplies
    n, m = v.shape
    u = v - prices[None, :]
    if m <= PAIRWISE_MAX_OBJECTS:
        # rank k ahead of j: higher payoff; at equal payoff objects outside X first, then
        # by index (a stable greedy); 'ahead' = units ranked ahead of j
        x = in_set.astype(jnp.int32)
        idx = jnp.arange(m)
        uk, uj = u[:, :, None], _twin(v, prices)[:, None, :]
        tie_key = (x[:, None] < x[None, :]) | ((x[:, None] == x[None, :]) & (idx[:, None] < idx[None, :]))
        ahead_kj = (uk > uj) | ((uk == uj) & tie_key[None, :, :])
        ahead = jnp.sum(jnp.where(ahead_kj, s[None, :, None], 0), axis=1)
        taken = jnp.where(u > 0, jnp.clip(d[:, None] - ahead, 0, s[None, :]), 0)
    else:
        key = jnp.broadcast_to(in_set.astype(jnp.int32)[None, :], (n, m))
        order, us, ss, _, before, _ = _levels(u, s, tiebreak=key)
        cs_excl = jnp.cumsum(ss, axis=1) - ss
        take_s = jnp.where(us > 0, jnp.clip(d[:, None] - cs_excl, 0, ss), 0)
        taken = _unsort(take_s, order)
    units = jnp.sum(jnp.where(in_set[None, :], taken, 0), axis=1)
    return units, taken


def long_step(values: jax.Array, demands: jax.Array, supplies: jax.Array,
              prices: jax.Array, in_set: jax.Array, cap: jax.Array) -> jax.Array:
    """Adapted step length: how far ``X`` can be raised before the Lyapunov slope changes.

    Along ``p + t 1_X`` the slope of ``Lyap`` is ``s(X) - sum_i x_i(t)`` with ``x_i`` the
    fewest ``X``-units in a preferred bundle (:func:`forced_units`); each ``x_i`` is
    non-increasing in ``t``. Buyer ``i``'s ``x_i`` first drops when a taken ``X`` object
    ``j`` reaches payoff 0 (``t = u_ij``) or ties with a positive-payoff object ``k`` outside
    ``X`` that has unbought supply (``t = u_ij - u_ik``). The step is the smallest such ``t``
    over all buyers, capped at ``cap`` (a positive int). This is the long-step steepest
    descent of the L-natural-convex Lyapunov function (Shioura, 2017, Prop. 4.16;
    Eickhoff et al., 2024, §6).
    """
    v, d, s = values, demands, supplies
    n, m = v.shape
    u = v - prices[None, :]
    _, taken = forced_units(v, d, s, prices, in_set)
    big = jnp.asarray(cap, u.dtype)
    taken_x = (taken > 0) & in_set[None, :]
    # smallest payoff of a taken X object: it reaches 0 after t_zero raises
    t_zero = jnp.min(jnp.where(taken_x, u, big), axis=1)
    slack = (~in_set)[None, :] & (u > 0) & (taken < s[None, :])
    # it ties with the best slack non-X object after t_zero - max_k u_ik raises
    umax_slack = jnp.max(jnp.where(slack, u, -big), axis=1)
    t_tie = jnp.where(jnp.any(slack, axis=1) & jnp.any(taken_x, axis=1),
                      t_zero - umax_slack, big)
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
    over buyers; ``D_j`` is non-increasing in ``own_j``.
    """
    v, d, s = values, demands, supplies
    n, m = v.shape
    u = v - prices[None, :]
    w = v - own[None, :]
    if m <= PAIRWISE_MAX_OBJECTS:
        ge = (u[:, :, None] >= w[:, None, :]) & ~jnp.eye(m, dtype=bool)[None]   # [i, k, j]
        A = jnp.sum(jnp.where(ge, s[None, :, None], 0), axis=1)
    else:
        # per buyer: payoffs ascending with the supply at or above each position
        order = jnp.argsort(u, axis=1)
        ua = jnp.take_along_axis(u, order, axis=1)
        above = jnp.cumsum(s[order][:, ::-1], axis=1)[:, ::-1]
        above = jnp.concatenate([above, jnp.zeros((n, 1), above.dtype)], axis=1)
        pos = jax.vmap(lambda a, x: jnp.searchsorted(a, x, side="left"))(ua, w)
        A = jnp.take_along_axis(above, pos, axis=1) - jnp.where(u >= w, s[None, :], 0)
    c = jnp.where(w > 0, jnp.clip(d[:, None] - A, 0, s[None, :]), 0)
    return jnp.sum(c, axis=0)


def singleton_jumps(values: jax.Array, demands: jax.Array, supplies: jax.Array,
                    prices: jax.Array, nbits: int) -> jax.Array:
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
    Yang 2016 for the L-natural-convex setting). ``T_j`` is found by bisection in
    ``nbits`` steps; ``2**nbits`` must exceed every payoff ``v_ij - p_j`` + 2.
    Returns the new prices ``(m,)``.
    """
    v, d, s, p = values, demands, supplies, prices
    n, m = v.shape
    if n == 0 or m == 0:
        return p
    # Bisection for T_j on (lo, hi]: D(hi) == 0 <= s_j; D(lo) > s_j is assumed for
    # lo = p_j - 1 (if j is not overdemanded at p_j, hi then closes in on p_j itself).
    lo = p - 1
    hi = p + jnp.maximum(jnp.max(v - p[None, :], axis=0), 0) + 1

    def body(_, lh):
        lo, hi = lh
        mid = lo + (hi - lo) // 2
        still = own_price_demand(v, d, s, p, mid) > s
        still_open = hi - lo > 1
        return (jnp.where(still_open & still, mid, lo),
                jnp.where(still_open & ~still, mid, hi))

    lo, hi = jax.lax.fori_loop(0, nbits, body, (lo, hi), unroll=True)
    return hi


def batched(fn, n_batch_axes: int = 1):
    """``jax.vmap`` ``fn`` over ``n_batch_axes`` leading axes of every argument."""
    for _ in range(n_batch_axes):
        fn = jax.vmap(fn)
    return fn
