"""Checking the Walrasian-equilibrium conditions of a multi-unit market.

Written in plain numpy on purpose (no shared code with the auction's kernels), so it can
serve as an independent check of the auction's output.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from jaxwalras._validation import as_int_array
from jaxwalras.multiunit import MultiUnitMarket

__all__ = ["check_walrasian", "is_walrasian", "indirect_utility_np"]


def indirect_utility_np(values: np.ndarray, demands: np.ndarray, supplies: np.ndarray,
                        prices: np.ndarray) -> np.ndarray:
    """``V_i(p)``: the sum of buyer ``i``'s ``d_i`` best positive unit payoffs, where object
    ``j`` offers ``s_j`` units of payoff ``v_ij - p_j`` (batched numpy, int64)."""
    u = values - prices[..., None, :]
    order = np.argsort(-u, axis=-1, kind="stable")
    us = np.take_along_axis(u, order, axis=-1)
    ss = np.take_along_axis(np.broadcast_to(supplies[..., None, :], u.shape), order, axis=-1)
    before = np.cumsum(ss, axis=-1) - ss
    take = np.clip(demands[..., None] - before, 0, ss)
    return np.where(us > 0, take * us, 0).sum(-1)


def _violations(v, d, s, p, x) -> list[str]:
    out: list[str] = []
    if np.any(p < 0):
        out.append(f"negative prices at objects {np.nonzero(p < 0)[0].tolist()}")
    if np.any(x < 0):
        out.append("negative allocation entries")
    sold = x.sum(0)
    got = x.sum(1)
    over_s = np.nonzero(sold > s)[0]
    if len(over_s):
        out.append(f"supply exceeded at objects {over_s.tolist()} (sold {sold[over_s].tolist()},"
                   f" supply {s[over_s].tolist()})")
    over_d = np.nonzero(got > d)[0]
    if len(over_d):
        out.append(f"demand exceeded for buyers {over_d.tolist()}")
    util = (x * (v - p[None, :])).sum(1)
    best = indirect_utility_np(v, d, s, p)
    bad = np.nonzero(util != best)[0]
    if len(bad):
        out.append(f"buyers {bad.tolist()} do not get a preferred bundle (utility "
                   f"{util[bad].tolist()} < best {best[bad].tolist()})")
    unsold = np.nonzero((p > 0) & (sold < s))[0]
    if len(unsold):
        out.append(f"objects {unsold.tolist()} have unsold units at a positive price")
    if x.sum() != min(s.sum(), d.sum()) and not (len(over_s) or len(over_d)):
        out.append(f"not market-clearing: {x.sum()} units sold, min(sum s, sum d) = "
                   f"{min(s.sum(), d.sum())}")
    return out


def _prepare(market: MultiUnitMarket, prices: Any, allocation: Any):
    if not isinstance(market, MultiUnitMarket):
        raise TypeError(f"market: expected MultiUnitMarket, got {type(market).__name__}")
    v, d, s = market.host_arrays()
    p = as_int_array(prices, "prices", min_ndim=1, nonnegative=False)
    x = as_int_array(allocation, "allocation", min_ndim=2, nonnegative=False)
    batch = market.batch_shape
    n, m = market.n_buyers, market.n_objects
    if p.shape != batch + (m,):
        raise ValueError(f"prices: expected shape {batch + (m,)}, got {p.shape}")
    if x.shape != batch + (n, m):
        raise ValueError(f"allocation: expected shape {batch + (n, m)}, got {x.shape}")
    B = int(np.prod(batch, dtype=np.int64))
    return (v.reshape(B, n, m), d.reshape(B, n), s.reshape(B, m), p.reshape(B, m),
            x.reshape(B, n, m), batch)


def check_walrasian(market: MultiUnitMarket, prices: Any, allocation: Any) -> list[str]:
    """The violated Walrasian-equilibrium conditions; an empty list means Walrasian.

    Conditions (Eickhoff et al., 2024, §1): prices ``>= 0``; supply and demand respected; every buyer gets
    a preferred bundle (utility equals the indirect utility ``V_i(p)``); every object with
    unsold units has price 0; and the allocation is market-clearing,
    ``sum x = min(sum s, sum d)``. For a batch, each message starts with the market index.

    Parameters
    ----------
    market : MultiUnitMarket
    prices : array_like of int, shape (..., m)
    allocation : array_like of int, shape (..., n, m)

    Returns
    -------
    list of str
        One message per violated condition.

    Examples
    --------
    >>> import jaxwalras as jw
    >>> mkt = jw.MultiUnitMarket([[10], [4]], demands=[2, 1], supplies=[2])
    >>> jw.check_walrasian(mkt, [4], [[2], [0]])
    []
    >>> jw.check_walrasian(mkt, [3], [[2], [0]])
    ['buyers [1] do not get a preferred bundle (utility [0] < best [1])']
    """
    v, d, s, p, x, batch = _prepare(market, prices, allocation)
    msgs: list[str] = []
    for b in range(v.shape[0]):
        for msg in _violations(v[b], d[b], s[b], p[b], x[b]):
            prefix = f"market {np.unravel_index(b, batch)}: " if batch else ""
            msgs.append(prefix + msg)
    return msgs


def is_walrasian(market: MultiUnitMarket, prices: Any, allocation: Any) -> np.ndarray:
    """Boolean array of shape ``batch_shape``: does each market satisfy every condition of
    :func:`check_walrasian`?

    Examples
    --------
    >>> import jaxwalras as jw
    >>> mkt = jw.MultiUnitMarket([[10], [4]], demands=[2, 1], supplies=[2])
    >>> bool(jw.is_walrasian(mkt, [4], [[2], [0]]))
    True
    """
    v, d, s, p, x, batch = _prepare(market, prices, allocation)
    ok = np.array([not _violations(v[b], d[b], s[b], p[b], x[b]) for b in range(v.shape[0])],
                  bool)
    return ok.reshape(batch)
