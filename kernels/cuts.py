"""Left-most minimum cuts of the auction network N(p) by subset enumeration (small m).

For an object set ``X`` the cheapest cut of N(p) whose object part is ``X`` places every
buyer node optimally: ``i^F`` on the source side costs ``s(F_i \\ X)`` (never more than
cutting its source arc), ``i^M`` costs ``min(r_i, s(M_i \\ X))``. Hence

    cut(X) = s(X) + sum_i s(F_i \\ X) + sum_i min(r_i, s(M_i \\ X)),

a submodular function of ``X``. ``p`` is competitive iff ``min_X cut(X) = cut(empty)``
(max flow saturates the source arcs), and the objects of the left-most minimum cut are the
intersection of all minimisers (the minimal minimiser). With ``m`` objects this costs
``O(2^m n m)`` per market (a small matrix product), which suits accelerators for
``m <= 12`` or so, and runs the whole auction on the device without host flows.
Every cut value is at most ``s(all objects) + sum_i (s(F_i) + r_i) <= sum(s) + sum(d)``,
which the market's bound ``MAX_TOTAL_UNITS = 2**31 - 1`` keeps inside int32.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["subset_table", "leftmost_cut"]


def subset_table(m: int) -> jax.Array:
    """``(2^m, m)`` int32 0/1 matrix: row ``b`` is the bitmask ``b`` as an object set."""
    b = jnp.arange(2 ** m, dtype=jnp.int32)[:, None]
    return ((b >> jnp.arange(m, dtype=jnp.int32)[None, :]) & 1).astype(jnp.int32)


def leftmost_cut(strict: jax.Array, marginal: jax.Array, r: jax.Array, s: jax.Array,
                 table: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Objects of the left-most min cut of N(p) for one market, and whether ``p`` is NOT
    competitive (some set is overdemanded). ``table`` is :func:`subset_table` (m)."""
    sF = jnp.where(strict, s[None, :], 0)                      # (n, m)
    sM = jnp.where(marginal & (r[:, None] > 0), s[None, :], 0)
    # s(F_i \ X) summed over buyers is linear in X
    lin = s - jnp.sum(sF, axis=0)                              # (m,)
    base = jnp.sum(sF)
    cut_lin = table @ lin + base                               # (2^m,)
    m_out = jnp.sum(sM, axis=1)[None, :] - table @ sM.T        # (2^m, n): s(M_i \ X)
    cut = cut_lin + jnp.sum(jnp.minimum(r[None, :], m_out), axis=1)
    best = jnp.min(cut)
    is_min = cut == best
    X = jnp.all(jnp.where(is_min[:, None], table > 0, True), axis=0)
    return X, best < cut[0]
