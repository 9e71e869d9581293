"""Combinatorial Walrasian equilibria: bundling when item prices fail (Feldman, Gravin and
Lucier, 2013).

The seller partitions the items into bundles and prices the bundles; every buyer receives a
utility-maximising set of bundles (unsold bundles allowed).  For every allocation ``X`` a
combinatorial Walrasian equilibrium (CWE) with welfare at least ``SW(X)/2`` exists.  The
library computes one by purchase dynamics run for all markets of a batch in lockstep on
the device (:func:`jaxwalras.kernels.setfunc.cwe_dynamics`), with host steps that jump
price wars ahead, and certifies every answer on the host in float64.
"""
from __future__ import annotations

import functools
import itertools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .typing import ArrayLike
from . import _validation as _v
from ._batching import CPU_PAD_BYTES, pad_floor, padded_size
from ._progress import Progress
from .combinatorial import optimal_allocation
from .kernels import setfunc as _k
from .setfunction import (SetFunctionMarket, allocation_welfare, as_market, buyer_scale,
                          check_allocation, check_rtol, set_bits, value_scale)
from .status import Status

__all__ = ["CWEResult", "combinatorial_walrasian_equilibrium", "check_cwe", "cwe_floor"]


# ============================================================================ CWE
class CWEResult(NamedTuple):
    """Result of :func:`combinatorial_walrasian_equilibrium`.

    Attributes
    ----------
    bundles : ndarray of int64, shape (..., m)
        Bitmasks, a partition of all items (0 = empty slot).
    prices : ndarray, shape (..., m)
        Bundle prices (0 on empty slots).
    holder : ndarray of int64, shape (..., m)
        Buyer holding each bundle, -1 = unsold / empty slot.
    allocation : ndarray of int64, shape (..., n)
        Items each buyer receives (the union of her bundles).
    welfare : ndarray, shape (...)
        ``sum_i v_i(allocation_i)``.
    start_welfare : ndarray, shape (...)
        Welfare of the start allocation.
    revenue : ndarray, shape (...)
        Sum of the prices of sold bundles.
    max_regret : ndarray, shape (...)
        ``max_i regret_i`` (money units).
    tol : ndarray, shape (..., n)
        Each buyer's tolerance the equilibrium holds to: the requested
        ``rtol * max_S v_i(S)`` unless loosened.
    converged : ndarray of bool, shape (...)
        The dynamics finished and every buyer's ``regret_i`` is within her REQUESTED
        tolerance.
    iterations : ndarray of int, shape (...)
        Purchases made.
    status : ndarray of int, shape (...)
        ``OK``; ``TOLERANCE_LOOSENED`` (a price war forced a looser ``tol``, to which the
        equilibrium holds); ``NOT_CERTIFIED`` (a regret exceeds ``tol``).
    regret : ndarray, shape (..., n)
        Each buyer's best utility over all sets of bundles minus her held utility,
        recomputed on the host in float64 from the original values.
    """
    bundles: np.ndarray
    prices: np.ndarray
    holder: np.ndarray
    allocation: np.ndarray
    welfare: np.ndarray
    start_welfare: np.ndarray
    revenue: np.ndarray
    max_regret: np.ndarray
    tol: np.ndarray
    converged: np.ndarray
    iterations: np.ndarray
    status: np.ndarray
    regret: np.ndarray


@functools.partial(jax.jit, static_argnames=("num_steps", "select"))
def _cwe_chunk(values, state, tol, num_steps, select="first"):
    return _k.cwe_dynamics(values, state, tol, num_steps, select)


def _cwe_utils_host(values: np.ndarray, bundles: np.ndarray, prices: np.ndarray,
                    holder: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Float64 host evaluation for ``(B, n, 2^m)`` values and ``(B, K)`` bundles / prices /
    holders: every buyer's best utility over sets of bundles and her held utility, ``(B, n)``."""
    nb, n, _ = values.shape
    k = bundles.shape[-1]
    bits = set_bits(k)                                                   # (2^K, K)
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


def _price_war_jump(values: np.ndarray, bundles: np.ndarray, prices: np.ndarray,
                    holder: np.ndarray, tol: np.ndarray, levels: int = 30) -> np.ndarray:
    """Jump a price war ahead (host, vectorised over markets).

    Raise by the same ``delta`` every sold bundle whose holder has utility above her
    ``tol_i`` (``tol`` is ``(B, n)``), with ``delta`` the largest of ``G, G/2, G/4, ...``
    (``G`` = the largest utility any buyer can get) after which every holder is still
    within her ``tol_i`` of her best. The result keeps all invariants of the dynamics
    (holders within tolerance; sold bundles cost at least their parts' reserves; unsold
    parts untouched) and raises revenue, so it only shortens the English-auction-like climb
    in steps of ``tol``. Returns the new prices ``(B, K)``."""
    best, util = _cwe_utils_host(values, bundles, prices, holder)
    nb, n = util.shape
    hpos = np.maximum(holder, 0)
    hold_util = np.where(holder >= 0, np.take_along_axis(util, hpos, axis=-1), -np.inf)
    hold_tol = np.take_along_axis(tol, hpos, axis=-1)                   # (B, K)
    raise_set = (holder >= 0) & (hold_util > hold_tol)
    # the smallest step the dynamics would take in this war anyway
    step = np.where(raise_set, hold_tol, np.inf).min(-1)
    g = best.max(-1)
    out = prices.copy()
    todo = raise_set.any(-1) & (g > step)
    base = raise_set.copy()
    for lev in range(levels):
        delta = g * 0.5 ** lev
        todo &= delta > step              # raises below tol are what the dynamics do anyway
        rs = base.copy()
        for _ in range(n):                # drop holders the raise would upset, retry
            if not todo.any():
                break
            cand = prices + np.where(rs, delta[:, None], 0.0)
            b2, u2 = _cwe_utils_host(values[todo], bundles[todo], cand[todo], holder[todo])
            bad = np.zeros((nb, n), bool)
            is_holder = (holder[todo][:, None, :] == np.arange(n)[:, None]).any(-1)
            bad[todo] = ((b2 - u2) > tol[todo]) & is_holder   # empty-handed may want
            ok = todo & ~bad.any(-1) & rs.any(-1)
            out[ok] = cand[ok]
            todo &= ~ok
            upset = np.take_along_axis(bad, np.maximum(holder, 0), axis=-1) & (holder >= 0)
            rs &= ~upset
            todo &= rs.any(-1)
        todo = (~np.isin(np.arange(nb), np.nonzero(out.sum(-1) != prices.sum(-1))[0])
                & base.any(-1) & (g > step))
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


def cwe_floor(n_buyers: int, n_sets: int, ftype: Any = None) -> int:
    """The smallest working-batch bucket of the CWE dynamics for markets of ``n_buyers``
    x ``n_sets`` values: 8 on accelerators; on CPUs the largest of 8, 4, 2, 1 whose
    padding stays within ``jaxwalras._batching.CPU_PAD_BYTES`` of values (4 for 5 buyers
    x 2^12 sets in float32, 1 for 5 x 2^14: two such markets padded to 8 cost the device
    four times their work)."""
    if jax.default_backend() != "cpu":
        return 8
    per = n_buyers * n_sets * np.dtype(jnp.result_type(float) if ftype is None
                                       else ftype).itemsize
    return pad_floor(per, CPU_PAD_BYTES, floor=8, base=2)


def _run_cwe(fv: np.ndarray, full: Any, tol: np.ndarray, ftype: Any, chunk: int,
             patience: int, bar: Progress | None = None) -> _CWERun:
    """Drive :func:`kernels.setfunc.cwe_dynamics` in chunks of ``chunk`` rounds until every
    market is done (``fv``, the prices in ``full`` and the per-buyer ``tol`` ``(B, n)`` in
    units of each market's scale). Finished markets are compacted away once at most a
    quarter of the working batch is still running (working sizes are powers of two >= 8 or
    :func:`cwe_floor`,
    so few recompilations): a few long price wars do not keep the whole batch busy. Every
    market runs the same rounds per call alone or in any batch, and every decision below
    uses only its own counters, so batch mates change nothing. Every ``2 (n + K)``
    purchases without finishing a market's price war is jumped ahead
    (:func:`_price_war_jump`); its ``tol`` is raised 10x every ``patience`` purchases it
    makes without finishing."""
    nb = fv.shape[0]
    full = _k.CWEState(*(np.array(x) for x in full))
    tol = tol.copy()
    last_esc = np.zeros(nb, np.int64)
    last_jump = np.zeros(nb, np.int64)
    war_steps = 2 * (fv.shape[1] + int(full.bundles.shape[-1]))   # purchases that suggest a war
    # markets in the working batch, padded to a bucket (powers of two >= 8, or >= 4, 2, 1
    # for large tables on CPUs) by repeating the first: compiled shapes never depend on
    # the exact batch size
    floor = cwe_floor(fv.shape[1], fv.shape[2], ftype)
    idx = np.concatenate([np.arange(nb), np.zeros(padded_size(nb, floor=floor) - nb,
                                                  np.int64)])
    count = nb                       # the first `count` entries of idx are distinct
    ft = np.dtype(ftype)
    while True:
        # host arrays moved with device_put (jnp.asarray would compile a copy per shape)
        dv = jax.device_put(fv[idx].astype(ft))
        st = _k.CWEState(*(jax.device_put(np.asarray(x)[idx].astype(ft) if k == 1 else
                                          np.asarray(x)[idx]) for k, x in enumerate(full)))
        while True:
            # the dynamics run at tol/2 so that rounding in device arithmetic stays inside tol
            st = _cwe_chunk(dv, st, jax.device_put((0.5 * tol[idx]).astype(ft)), chunk,
                            "first")
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
                host_p = np.array(st.prices)           # on the host: no scatter of a
                host_p[pos] = newp                     # war-dependent length to compile
                st = st._replace(prices=jax.device_put(host_p))
                last_jump[mk] = steps[pos]
            esc = ~done & (steps - last_esc[live] >= patience)   # cut a long price war short
            tol[live] = np.where(esc[:, None], tol[live] * 10.0, tol[live])
            last_esc[live] = np.where(esc, steps, last_esc[live])
            n_left = int((~done).sum())
            if bar is not None:
                bar.update(0, running=n_left)
            if n_left == 0 or (len(idx) > floor and n_left <= len(idx) // 4):
                break
        host = [np.asarray(x)[:count] for x in st]
        for k, arr in enumerate(host):
            full[k][live] = arr
        if bar is not None:
            bar.update(count - n_left)
        if n_left == 0:
            return _CWERun(full, tol)
        rest = live[~done]
        size = padded_size(n_left, floor=floor)
        idx = np.concatenate([rest, np.repeat(rest[:1], size - n_left)])
        count = n_left


def combinatorial_walrasian_equilibrium(
        market: SetFunctionMarket, start: ArrayLike | None = None, *, rtol: float | None = None,
        rounds_per_call: int = 16, patience: int | None = None,
        chunk: int | None = None, progress: bool | None = None) -> CWEResult:
    """Combinatorial Walrasian equilibrium with at least half the start's welfare.

    Feldman, Gravin & Lucier (STOC 2013): the seller partitions the items into bundles and
    prices the bundles; every buyer receives a utility-maximising set of bundles (unsold
    bundles allowed).  Construction, run for all markets of the batch in lockstep on the
    device (:func:`jaxwalras.kernels.setfunc.cwe_dynamics`):

    1. parts ``X_i`` of the start allocation (default: :func:`optimal_allocation`; unallocated
       items join the part whose owner values them most), unsold at reserve ``v_i(X_i)/2``;
    2. while an empty-handed buyer ``i`` gains more than ``tol`` from her demanded set ``D``
       of bundles: merge ``D`` into one bundle held by ``i`` (previous holders lose theirs),
       priced ``max(v_i(U) - u_out, p(D) + tol)`` with ``u_out`` her best utility from bundles
       disjoint from ``D``.

    Tolerance: each buyer's ``tol_i = rtol * max_S v_i(S)``, relative to her own scale
    because the condition compares her payoffs only (``rtol`` default ``1e-6`` with
    float64, ``1e-5`` with float32 device arithmetic).  ``tol_i`` replaces ``tol`` above
    for buyer ``i``: she buys when she gains more than ``tol_i``, at a price at least
    ``tol_i`` above the pieces (the device dynamics use ``tol/2`` so float rounding stays
    inside ``tol``).

    Invariants: holders' alternatives only get dearer (merged bundles cost at least their
    parts), so a holder stays within ``tol_i`` of her best; sold bundles cost at least the
    reserves of their parts; an unsold part ``X_j`` is still at reserve, which leaves buyer
    ``j`` utility ``>= v_j(X_j)/2 - tol_j``. Hence ``welfare = utilities + revenue >=
    SW(start)/2 - sum_i tol_i``, and (exact ties included) every purchase by ``i`` raises
    revenue by at least ``tol_i`` while revenue ``<= OPT``: the dynamics stop.

    Numerics: the device dynamics run on each market's values and prices divided by its
    largest ``|value|`` (any money unit, values beyond the float32 range), alone or in any
    batch with the same rounds per call; the certificate is recomputed on the host in
    float64 from the original values.  Price wars (several buyers competing for
    interchangeable bundles -- common with exact ties, e.g. CATS scheduling -- would climb
    in steps of ``tol``, like an English auction) are jumped ahead on the host: after
    ``2 (n + m)`` purchases without finishing, every sold bundle whose holder can afford it
    is raised by the largest ``delta`` in ``G, G/2, G/4, ...`` that keeps every holder
    within her tolerance (this keeps all the invariants above and only raises revenue). As
    a last resort, every ``patience`` purchases (default ``500 + 20 (n + m)``) without
    finishing multiply that market's tolerances by 10; ``result.tol`` reports the tolerance
    each buyer's equilibrium condition holds to, and such a market is not ``converged``
    (status ``TOLERANCE_LOOSENED``).  Markets that finish are compacted out of the device
    batch, so a few long runs do not keep the whole batch busy.
    ``result.regret <= tol`` certifies the equilibrium (recomputed on the host in float64).

    Parameters
    ----------
    market : SetFunctionMarket
        Any batch shape.
    start : array_like of int, shape (..., n), optional
        Start allocation (bitmasks); default the optimal allocation.
    rtol : float, optional
        Relative tolerance (see above), a finite number in ``(0, 1)``.
    rounds_per_call : int
        Purchase rounds per device call (formerly ``chunk``).
    patience : int, optional
        Purchases without finishing before ``tol`` is loosened (see above).
    progress : bool, optional
        A progress bar of finished markets on standard error (``None``: only when the
        environment variable ``JAXWALRAS_PROGRESS=1`` is set).

    Returns
    -------
    CWEResult
        ``converged`` holds only where the equilibrium holds to the REQUESTED tolerance of
        every buyer; a loosened one is reported with ``status = TOLERANCE_LOOSENED``.

    Raises
    ------
    TypeError, ValueError
        Not a market; a start that is not disjoint bitmasks of the right shape; ``rtol``,
        ``rounds_per_call`` or ``patience`` out of range (the message names it).

    Notes
    -----
    The dynamics run on the batch padded to a power of two (at least 8; on CPUs at least
    4, 2 or 1 for large value tables, :func:`jaxwalras.bundling.cwe_floor`) with copies
    of a market whose results are dropped, so a new batch size inside a bucket compiles
    nothing (see :func:`jaxwalras.warmup`).
    References
    ----------
    M. Feldman, N. Gravin and B. Lucier, "Combinatorial Walrasian equilibrium", STOC 2013.

    Examples
    --------
    >>> import jaxwalras as jw
    >>> cwe = jw.combinatorial_walrasian_equilibrium(jw.examples.shirts(5))
    >>> cwe.bundles.tolist(), float(cwe.welfare)
    ([31, 0, 0, 0, 0], 5.0)
    >>> small = jw.combinatorial_walrasian_equilibrium(
    ...     jw.SetFunctionMarket(jw.examples.shirts(5).values * 1e-6))
    >>> small.bundles.tolist(), bool(small.converged), round(float(small.welfare), 12)
    ([31, 0, 0, 0, 0], True, 5e-06)
    """
    market = as_market(market)
    vals = market.values
    bs, n, m = market.batch_shape, market.n_buyers, market.n_items
    if start is None:
        start_alloc = optimal_allocation(market).allocation
    else:
        start_alloc = check_allocation(market, start, "start")
        try:
            start_alloc = np.broadcast_to(start_alloc, bs + (n,)).copy()
        except ValueError:
            raise ValueError(f"start: shape {start_alloc.shape} does not broadcast to the "
                             f"market's batch shape {bs} + (n = {n},)") from None
    if chunk is not None:
        _v.warn_deprecated("chunk=", "rounds_per_call=")
        rounds_per_call = chunk
    rounds_per_call = _v.check_integer(rounds_per_call, "rounds_per_call", lo=1)
    patience = 500 + 20 * (n + m) if patience is None else patience
    patience = _v.check_integer(patience, "patience", lo=1)
    if rtol is None:
        rtol = 1e-6 if jnp.result_type(float) == jnp.float64 else 1e-5
    rtol = check_rtol(rtol)
    start_w = allocation_welfare(market, start_alloc)

    fv = vals.reshape((-1, n, 2 ** m))
    nb = fv.shape[0]
    scale = value_scale(fv)
    sc = np.where(scale > 0, scale, 1.0)
    fv_n = fv / sc[:, None, None]            # the dynamics see each market in its own unit
    parts = _initial_parts(fv_n, start_alloc.reshape(nb, n))
    # slot layout: K = m slots; the parts first (in buyer order), then empty slots
    bundles = np.zeros((nb, m), np.int64)
    prices = np.zeros((nb, m))
    for b in range(nb):
        nz = [i for i in range(n) if parts[b, i]]
        for s, i in enumerate(nz):
            bundles[b, s] = parts[b, i]
            prices[b, s] = fv_n[b, i, parts[b, i]] / 2.0
    ftype = jnp.result_type(float)
    tol_req = rtol * buyer_scale(fv)                                      # (B, n)
    full = _k.CWEState(bundles.astype(np.int32), prices, np.full((nb, m), -1, np.int32),
                       np.zeros(nb, bool), np.zeros(nb, np.int32))
    with Progress(nb, "CWE", unit="market", enabled=progress) as bar:
        full = _run_cwe(fv_n, full, tol_req / sc[:, None], ftype, rounds_per_call, patience,
                        bar)
    tol = full.tol * sc[:, None]
    state = full.state
    b_out = np.asarray(state.bundles).astype(np.int64)
    p_out = np.asarray(state.prices, np.float64) * sc[:, None]
    h_out = np.asarray(state.holder).astype(np.int64)
    done = np.asarray(state.done)
    best, util = _cwe_utils_host(fv, b_out, p_out, h_out)
    regret = best - util                                                  # (B, n)
    held = h_out[:, None, :] == np.arange(n)[:, None]
    alloc = np.where(held, b_out[:, None, :], 0).sum(axis=-1)
    welfare = np.take_along_axis(fv, alloc[..., None], axis=-1)[..., 0].sum(axis=-1)
    revenue = np.where(h_out >= 0, p_out, 0.0).sum(axis=-1)
    holds = done & (regret <= tol).all(-1)
    conv = holds & (regret <= tol_req).all(-1)
    status = np.where(conv, Status.OK, np.where(holds, Status.TOLERANCE_LOOSENED,
                                                Status.NOT_CERTIFIED)).astype(np.int64)
    return CWEResult(b_out.reshape(bs + (m,)), p_out.reshape(bs + (m,)),
                     h_out.reshape(bs + (m,)), alloc.reshape(bs + (n,)),
                     welfare.reshape(bs), start_w.reshape(bs), revenue.reshape(bs),
                     regret.max(-1).reshape(bs), tol.reshape(bs + (n,)), conv.reshape(bs),
                     np.asarray(state.steps).astype(np.int64).reshape(bs), status.reshape(bs),
                     regret.reshape(bs + (n,)))


def check_cwe(market: SetFunctionMarket, bundles: ArrayLike, prices: ArrayLike, holder: ArrayLike,
              atol: float = 0.0, *, rtol: float = 1e-9, tol: float | None = None
              ) -> list[str]:
    """List the violated CWE conditions of one market (empty list = a valid CWE).

    Host brute force: the bundles partition the items; every buyer's held set of bundles has
    utility within ``atol + rtol * max_S v_i(S)`` (her own scale) of her best set of
    bundles (enumerated over all ``2^K`` subsets).

    Parameters
    ----------
    market : SetFunctionMarket
        One market (no batch axes).
    bundles : array_like of int, shape (K,)
        Disjoint bitmasks (0 = empty slot), ``K <= 16``.
    prices : array_like, shape (K,)
        Finite bundle prices.
    holder : array_like of int, shape (K,)
        Buyer holding each bundle, -1 = unsold.
    atol : float
        Absolute tolerance in money, ``>= 0``.
    rtol : float
        Tolerance relative to each buyer's largest value, in ``[0, 1)``.
    tol : float, optional
        Deprecated name of ``atol``.

    Returns
    -------
    list of str
        One message per violated condition.

    Raises
    ------
    TypeError, ValueError
        Not a single market, arrays of the wrong shape or type, holders that are not
        buyers, or bad tolerances.

    Examples
    --------
    >>> import jaxwalras as jw
    >>> jw.check_cwe(jw.examples.shoes(), [3, 0], [10.0, 0.0], [0, -1])
    []
    >>> jw.check_cwe(jw.examples.shoes(), [1, 2], [3.0, 3.0], [1, -1])
    ['buyer 0 holds utility 0 but can get 4']
    """
    market = as_market(market)
    if tol is not None:
        _v.warn_deprecated("tol=", "atol=")
        atol = tol
    atol = _v.check_number(atol, "atol", lo=0.0)
    rtol = check_rtol(rtol, allow_zero=True)
    if market.batch_shape:
        raise ValueError("check_cwe: pass a single market (index the batch first)")
    b = _v.as_int_array(bundles, "bundles", min_ndim=1)
    p = _v.as_float_array(prices, "prices", min_ndim=1, allow_bool=False)
    h = _v.as_int_array(holder, "holder", min_ndim=1, nonnegative=False)
    if not (b.ndim == p.ndim == h.ndim == 1 and len(b) == len(p) == len(h) <= 16):
        raise ValueError(f"bundles, prices, holder: need three 1-d arrays of the same length "
                         f"K <= 16, got shapes {b.shape}, {p.shape}, {h.shape}")
    if b.size and b.max() >= 2 ** market.n_items:
        raise ValueError(f"bundles: bitmasks must be < 2**m = {2 ** market.n_items}, found "
                         f"{int(b.max())}")
    if h.size and (h.min() < -1 or h.max() >= market.n_buyers):
        raise ValueError(f"holder: entries must be -1 (unsold) or a buyer in "
                         f"[0, {market.n_buyers - 1}]")
    slack = atol + rtol * buyer_scale(market.values)
    out = []
    if np.bitwise_or.reduce(b) != 2 ** market.n_items - 1 or b.sum() != np.bitwise_or.reduce(b):
        out.append("bundles do not partition the items")
    live = np.nonzero(b)[0]
    for i in range(market.n_buyers):
        mine = [s for s in live if h[s] == i]
        u_held = market.values[i, int(b[mine].sum())] - p[mine].sum()
        best = max(market.values[i, int(b[list(c)].sum())] - p[list(c)].sum()
                   for r in range(len(live) + 1) for c in itertools.combinations(live, r))
        if best > u_held + slack[i]:
            out.append(f"buyer {i} holds utility {u_held:.6g} but can get {best:.6g}")
    return out
