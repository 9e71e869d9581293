"""Buyer-optimal Walrasian prices by the flow-based ascending auction (seed 001; DESIGN §1).

Per round, for all markets still running at once:

1. device: the greedy preferred-bundle kernel at the current prices (one jitted, vmapped
   call for the whole active batch);
2. host: one maximum flow over the disjoint union of the networks N(p) of all active
   markets (:mod:`jaxwalras.flows`), optionally warm-started from the previous round's
   flow; markets whose source arcs are saturated are done; for the others the objects on
   the source side of the left-most minimum cut form the inclusion-minimal maximal
   overdemanded set ``X``;
3. device: the step length ``k`` (``1`` for unit steps; the adapted long step computed in
   closed form from the Lyapunov slope; or a binary search with one max flow per probe)
   and the raise ``p <- p + k 1_X``.

Finally one more union max flow on the networks N'(p*) gives a market-clearing allocation.
"""
from __future__ import annotations

import time
from functools import partial
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxwalras import flows as _flows
from jaxwalras._shapes import padded_size
from jaxwalras._validation import as_int_array
from jaxwalras.kernels import cuts as _cuts
from jaxwalras.kernels import greedy as _greedy
from jaxwalras.multiunit import MAX_VALUE, MultiUnitMarket, _check_prices
from jaxwalras.multiunit import _bundles_flat as _bundles

__all__ = ["AuctionResult", "buyer_optimal_equilibrium", "reoptimize", "STATUS"]

Step = Literal["long", "search", "unit"]

#: ``status`` codes of :class:`AuctionResult`.
STATUS = {
    0: "ok: buyer-optimal Walrasian prices and a Walrasian allocation",
    1: "round limit reached before the prices were competitive (raise max_rounds)",
    2: "prices are competitive but no market-clearing allocation exists at them: the start "
       "vector was not below the buyer-optimal prices",
}


class AuctionResult(NamedTuple):
    """Result of :func:`buyer_optimal_equilibrium` (leading axes = the market's batch shape).

    Attributes:
      prices: ``(..., m)`` int64 buyer-optimal Walrasian prices ``p*``.
      allocation: ``(..., n, m)`` int64 Walrasian allocation at ``p*`` (one of many).
      iterations: ``(...)`` number of price raises (rounds with an overdemanded set).
      max_flows: ``(...)`` number of maximum flows computed for the market (incl. the
        final allocation flow and step-search probes).
      status: ``(...)`` int code, see :data:`STATUS`; ``0`` means success.
      converged: ``(...)`` bool, ``status == 0``.
      timings: host-side breakdown in seconds (device kernel, flows, allocation).
    """
    prices: np.ndarray
    allocation: np.ndarray
    iterations: np.ndarray
    max_flows: np.ndarray
    status: np.ndarray
    converged: np.ndarray
    timings: dict


# ---------------------------------------------------------------------------- device --

def _batched_long_step(v, d, s, p, X):
    cap = jnp.asarray(2 * MAX_VALUE, p.dtype)
    return jax.vmap(_greedy.long_step, in_axes=(0, 0, 0, 0, 0, None))(v, d, s, p, X, cap)


def _batched_jumps(v, d, s, p, nbits: int):
    return jax.vmap(partial(_greedy.singleton_jumps, nbits=nbits))(v, d, s, p)


def _network_arcs(b, s):
    """Arc structure of the networks N(p) for :func:`jaxwalras.flows.network_from_arcs`:
    buyer-node -> object arcs ``(B, 2n, m)``, their ranks among the arcs into the same
    object, and the source arc capacities ``(B, 2n)``."""
    n = b.r.shape[1]
    s_pos = (s > 0)[:, None, :]
    bm = jnp.concatenate([b.strict & s_pos, b.marginal & s_pos & (b.r > 0)[:, :, None]],
                         axis=1)
    rank_t = jnp.int8 if 2 * n <= 127 else jnp.int32
    col_rank = (jnp.cumsum(bm, axis=1, dtype=jnp.int32) - 1).astype(rank_t)
    sF = jnp.sum(jnp.where(b.strict, s[:, None, :], 0), axis=2)
    return bm, col_rank, jnp.concatenate([sF, b.r], axis=1)


@partial(jax.jit, static_argnames=("step", "nbits"))
def _advance(v, d, s, idx, p, X, step: str, nbits: int):
    """Round kernel for the markets ``idx`` (rows of the full ``v, d, s``, gathered on the
    device): raise every market's set X by its step (then, if ``nbits``, the singleton
    jumps). Returns new prices, steps, the bundle arrays the host keeps
    ``(strict, marginal, r, case_a)`` and the arc structure of N(p_new)."""
    v, d, s = v[idx], d[idx], s[idx]
    if step == "unit":
        k = jnp.ones(p.shape[0], p.dtype)
    else:
        k = _batched_long_step(v, d, s, p, X)
    k = jnp.where(jnp.any(X, axis=1), k, 0)
    p_new = p + k[:, None] * X.astype(p.dtype)
    if nbits:
        p_new = _batched_jumps(v, d, s, p_new, nbits)
    b = _bundles(v, d, s, p_new)
    return p_new, k, (b.strict, b.marginal, b.r, b.case_a), _network_arcs(b, s)


_long_steps = jax.jit(_batched_long_step)


#: Markets per device call of the host-flow auction (chunks bound memory and the number
#: of compiled shapes: 16, 64 and 256 on CPU).
CPU_CHUNK = 256
ACCEL_CHUNK = 4096

#: ``backend="auto"`` uses the all-device auction (subset-enumeration cuts) on
#: accelerators up to this many objects, and host max flows otherwise.
DEVICE_MAX_OBJECTS = 12


@partial(jax.jit, static_argnames=("step", "max_rounds", "nbits"))
def _device_auction(v, d, s, p0, step: str, max_rounds: int, nbits: int = 0):
    """The whole ascending auction on the device for a batch (left-most cuts by subset
    enumeration, :mod:`jaxwalras.kernels.cuts`). Returns prices, raises, still-running."""
    m = v.shape[-1]
    table = _cuts.subset_table(m)
    cuts = jax.vmap(_cuts.leftmost_cut, in_axes=(0, 0, 0, 0, None))

    def cond(state):
        _, _, running, rounds = state
        return jnp.any(running) & (rounds < max_rounds)

    def body(state):
        p, raises, running, rounds = state
        b = _bundles(v, d, s, p)
        X, over = cuts(b.strict, b.marginal, b.r, s, table)
        running = running & over
        k = jnp.ones_like(raises) if step == "unit" else _batched_long_step(v, d, s, p, X)
        p = p + jnp.where(running, k, 0)[:, None] * X.astype(p.dtype)
        if nbits:
            p = jnp.where(running[:, None], _batched_jumps(v, d, s, p, nbits), p)
        return p, raises + running.astype(raises.dtype), running, rounds + 1

    B = v.shape[0]
    if nbits:
        p0 = _batched_jumps(v, d, s, p0, nbits)
    init = (p0, jnp.zeros(B, jnp.int32), jnp.ones(B, bool), jnp.asarray(0, jnp.int32))
    p, raises, running, rounds = jax.lax.while_loop(cond, body, init)
    # a market still marked running after the last round may in fact be competitive
    b = _bundles(v, d, s, p)
    _, over = cuts(b.strict, b.marginal, b.r, s, table)
    return p, raises, running & over, rounds, b


#: The host-flow auction pipelines device and host work over two lanes of markets while
#: at least this many markets are running (see :class:`_Lane`).
PIPELINE_MIN_MARKETS = 64


class _Lane:
    """Markets that go through the auction rounds together: one union max flow and one
    round-kernel launch per round; ``pending`` is the launched, not yet fetched kernel
    result for the markets ``pending_rows``."""

    def __init__(self, active: np.ndarray):
        self.active = active
        self.rounds = 0
        self.pending: list | None = None
        self.pending_rows = active
        self.arcs: tuple[np.ndarray, ...] | None = None   # network arcs of ``active``


def _bucket(count: int, full: int) -> int:
    """Padded batch size for ``count`` active markets: powers of 4, capped at ``full``.

    Keeps the number of distinct kernel shapes (compilations) at most ~log4(chunk)."""
    return padded_size(count, base=4, floor=16, cap=full)


def _to_host(b) -> tuple[np.ndarray, ...]:
    strict, marginal, r, mu, util, case_a = jax.device_get(tuple(b))
    return (np.array(strict), np.array(marginal), np.array(r, np.int64), np.array(case_a))


# ------------------------------------------------------------------------------ host --

def _buyer_object_arcs(net: _flows.UnionNetwork) -> slice | np.ndarray:
    """The F- and M-arcs of ``net`` (a slice where the builder made them contiguous)."""
    if net.mid is not None:
        return net.mid
    return np.flatnonzero((net.kind == _flows.F_OBJ) | (net.kind == _flows.M_OBJ))


def _carry_flow(net_new: _flows.UnionNetwork, prev_x: np.ndarray, r: np.ndarray,
                active_rows: np.ndarray) -> np.ndarray:
    """Warm start: carry the previous buyer->object flow into the new network N(p).

    Keep ``min(x_ij, s_j)`` on F-arcs and at most ``r_i`` units in total on each buyer's
    M-arcs (greedily, in object order); derive source/sink arc flows by conservation.
    """
    _, n, m = prev_x.shape
    fo = _buyer_object_arcs(net_new)
    a = net_new.market[fo]
    i = net_new.buyer[fo]
    x = prev_x.reshape(-1)[(active_rows[a] * n + i) * m + net_new.obj[fo]]
    x = np.minimum(x, net_new.cap[fo])
    is_m = net_new.kind[fo] == _flows.M_OBJ
    if np.any(is_m):
        # truncate each buyer's M-arc total to r_i (arcs of one buyer are contiguous)
        xm = x[is_m]
        key = a[is_m] * (n + 1) + i[is_m]
        csum = np.cumsum(xm)
        first = np.r_[True, key[1:] != key[:-1]]
        seg_start = np.maximum.accumulate(np.where(first, np.arange(len(key)), 0))
        before = csum - xm - (csum - xm)[seg_start]
        limit = r[a[is_m], i[is_m]]
        x[is_m] = np.clip(limit - before, 0, xm)
    fl = np.zeros(len(net_new.kind), np.int64)
    fl[fo] = x
    return _flows.conserve(net_new, fl)


def _xij(net: _flows.UnionNetwork, flow: np.ndarray, A: int, n: int, m: int) -> np.ndarray:
    """Buyer->object flows as ``(A, n, m)`` (F_i and M_i are disjoint: one arc per (i, j))."""
    x = np.zeros(A * n * m, np.int64)
    fo = _buyer_object_arcs(net)
    x[(net.market[fo] * n + net.buyer[fo]) * m + net.obj[fo]] = flow[fo]
    return x.reshape(A, n, m)


def buyer_optimal_equilibrium(market: MultiUnitMarket, start: Any = None, *,
                              step: Step = "long", warm_start: bool = True,
                              backend: Literal["auto", "device", "scipy", "networkx"] = "auto",
                              max_rounds: int = 1_000_000,
                              allocation: bool = True,
                              jumps: bool | None = None) -> AuctionResult:
    """Buyer-optimal Walrasian prices and a Walrasian allocation by the ascending auction.

    Starting from ``start`` (default ``0``; any integer vector known to be ``<= p*``),
    repeat for all running markets at once: compute the greedy preferred bundles on the
    device, a maximum flow of N(p) on the host, and raise the inclusion-minimal maximal
    overdemanded set ``X`` (source side of the left-most min cut) by a step ``k``; stop
    when no set is overdemanded. From ``p0 <= p*`` the auction ends exactly at the
    buyer-optimal (componentwise least) Walrasian prices ``p*`` (seed 001, Theorem 8 and
    §4; DESIGN §1).

    Args:
      market: a :class:`MultiUnitMarket`, with any leading batch axes.
      start: optional integer start prices ``(..., m)``, ``0 <= start <= p*``. Use it to
        re-optimise after demands rose or supplies fell (seed 001, Theorem 14): the old
        buyer-optimal prices are then a valid start (see :func:`reoptimize`).
      step: ``"long"`` (default): raise ``X`` as far as the Lyapunov function keeps its
        slope along ``1_X`` (closed form on the device; no extra flows); ``"search"``: the
        largest ``k`` for which ``X`` stays the left-most cut set, by binary search with one
        max flow per probe; ``"unit"``: ``k = 1`` (the plain auction, pseudo-polynomial).
      warm_start: carry the previous round's flow into the new network and augment from
        there (scipy backend).
      backend: ``"device"``: the whole auction in one jitted ``while_loop`` on the device,
        left-most cuts by enumerating the ``2^m`` object sets (:mod:`jaxwalras.kernels.cuts`;
        ``m <= 16``), only the final allocation flow on the host; ``"scipy"``: one
        ``scipy.sparse.csgraph.maximum_flow`` call per round over the disjoint union of all
        running markets' networks; ``"networkx"``: one networkx flow per market (the slow
        reference); ``"auto"`` (default): ``"device"`` on GPU/TPU when ``m <= 12``, else
        ``"scipy"``.
      max_rounds: safety bound on rounds (one overdemand check and raise each); markets
        that hit it get ``status == 1``. With host flows the check of the final prices is
        a round of its own; the all-device auction checks them after its last round, so a
        market that reaches ``p*`` in exactly ``max_rounds`` raises is done (status 0).
      allocation: also compute a Walrasian allocation (one more union max flow).
      jumps: after every raise (and once before the first round) raise each
        *individually* overdemanded object, on the device, to the price at which it stops
        being so with the other prices fixed (:func:`jaxwalras.kernels.greedy.singleton_jumps`).
        Such raises never pass ``p*`` (submodularity of the Lyapunov function), so the
        result is unchanged, but far fewer rounds and max flows are needed. Default:
        on for ``step="long"``, off for ``"unit"`` and ``"search"`` (which then are the
        textbook auctions whose raise counts the seed analyses).

    Returns:
      :class:`AuctionResult` with ``prices``, ``allocation``, ``iterations`` (price
      raises), ``max_flows``, per-market ``status`` / ``converged`` and ``timings``.

    Example:
      >>> import jaxwalras as jw
      >>> mkt = jw.MultiUnitMarket([[4, 4], [5, 3]], demands=[2, 1], supplies=[1, 1])
      >>> jw.buyer_optimal_equilibrium(mkt).prices.tolist()
      [4, 2]
    """
    if not isinstance(market, MultiUnitMarket):
        raise TypeError(f"market: expected MultiUnitMarket, got {type(market).__name__}")
    if step not in ("long", "search", "unit"):
        raise ValueError(f"step: must be 'long', 'search' or 'unit', got {step!r}")
    if backend not in ("auto", "device", "scipy", "networkx"):
        raise ValueError(f"backend: must be 'auto', 'device', 'scipy' or 'networkx', got {backend!r}")
    if backend == "device" and market.n_objects > 16:
        raise ValueError(f"backend: 'device' enumerates 2^m object sets and allows at most 16 "
                         f"objects, the market has {market.n_objects}; use 'scipy'")
    if backend == "device" and step == "search":
        raise ValueError("step: 'search' probes with host max flows; use backend='scipy' or "
                         "'networkx' with it, or step='long' on the device")
    if backend == "auto":
        backend = ("device" if (market.n_objects <= DEVICE_MAX_OBJECTS and step != "search"
                                and jax.default_backend() != "cpu") else "scipy")
    if not isinstance(max_rounds, (int, np.integer)) or max_rounds < 1:
        raise ValueError(f"max_rounds: must be a positive integer, got {max_rounds!r}")
    if jumps is None:
        jumps = step == "long"
    if not isinstance(jumps, (bool, np.bool_)):
        raise TypeError(f"jumps: must be True, False or None, got {jumps!r}")
    batch = market.batch_shape
    n, m = market.n_buyers, market.n_objects
    B = int(np.prod(batch, dtype=np.int64))
    if start is None:
        p0 = np.zeros((B, m), np.int64)
    else:
        p0 = np.asarray(_check_prices(market, start, "start"), np.int64).reshape(B, m)
    v, d, s = (x.reshape((B,) + x.shape[len(batch):]) for x in
               (market.values, market.demands, market.supplies))
    s_np = np.asarray(s, np.int64)
    d_np = np.asarray(d, np.int64)
    t_dev = t_flow = t_alloc = 0.0

    prices = p0.copy()
    iterations = np.zeros(B, np.int64)
    nflows = np.zeros(B, np.int64)
    status = np.zeros(B, np.int64)
    if B == 0 or n == 0 or m == 0:
        alloc = np.zeros((B, n, m), np.int64)
        return _finish(batch, n, m, prices, alloc, iterations, nflows, status, {})

    # bisection steps for the singleton jumps (2**nbits > every payoff + 2), rounded up
    # to an even count so that similar value ranges share one compiled kernel
    nbits = 0
    if jumps:
        nbits = int(int(np.max(market.values, initial=0)) + 2).bit_length()
        nbits = max(4, nbits + nbits % 2)
    prev_x = np.zeros((B, n, m), np.int64)
    rounds = 0
    lanes: list[_Lane] = []
    if backend == "device":
        t0 = time.perf_counter()
        p_fin, raises, running, rounds, b = _device_auction(
            v, d, s, jnp.asarray(prices, jnp.int32), "unit" if step == "unit" else "long",
            int(min(max_rounds, 2**31 - 1)), nbits)
        prices = np.array(p_fin, np.int64)
        iterations = np.array(raises, np.int64)
        strict, marginal, r, case_a = _to_host(b)
        status[np.asarray(running)] = 1
        rounds = int(rounds)
        t_dev += time.perf_counter() - t0
        backend = "scipy"           # the final allocation flow runs on the host
    else:
        # Markets run in lanes that take turns (software pipelining): while the device
        # computes one lane's round kernel (asynchronous dispatch), the host solves the
        # max flow of the other lane. Markets are independent, so lanes change nothing
        # but the timing. The first kernel call (no set to raise) applies the jumps from
        # the start and computes the bundles.
        strict = np.zeros((B, n, m), bool)
        marginal = np.zeros((B, n, m), bool)
        r = np.zeros((B, n), np.int64)
        case_a = np.zeros((B, n), bool)
        dev_step = "unit" if step == "search" else step
        n_lanes = 2 if (step != "search" and B >= PIPELINE_MIN_MARKETS) else 1
        t0 = time.perf_counter()
        for part in np.array_split(np.arange(B), n_lanes):
            lane = _Lane(part)
            lane.pending = _launch_advance(v, d, s, prices, part, np.zeros((len(part), m), bool),
                                           dev_step, nbits)
            lanes.append(lane)
        t_dev += time.perf_counter() - t0

    def collect(lane: _Lane) -> None:
        newp, _, newb, lane.arcs = _collect_advance(lane.pending)
        rows = lane.pending_rows
        prices[rows] = newp
        strict[rows], marginal[rows], r[rows], case_a[rows] = newb
        lane.pending = None

    while any(len(lane.active) and lane.rounds < max_rounds for lane in lanes):
        if len(lanes) > 1 and sum(len(lane.active) for lane in lanes) < PIPELINE_MIN_MARKETS:
            # few markets left: one lane (one flow and one kernel call per round)
            t0 = time.perf_counter()
            for lane in lanes:
                if lane.pending is not None:
                    collect(lane)
            t_dev += time.perf_counter() - t0
            rows = np.concatenate([lane.active for lane in lanes])
            order = np.argsort(rows)
            merged = _Lane(rows[order])
            merged.rounds = max(lane.rounds for lane in lanes if len(lane.active))
            arcs = [lane.arcs for lane in lanes if len(lane.active)]
            if all(a is not None for a in arcs):
                merged.arcs = tuple(np.concatenate(parts)[order] for parts in zip(*arcs))
            lanes = [merged]
        for lane in lanes:
            if lane.pending is not None:
                t0 = time.perf_counter()
                collect(lane)
                t_dev += time.perf_counter() - t0
            active = lane.active
            if not len(active) or lane.rounds >= max_rounds:
                continue
            lane.rounds += 1
            t0 = time.perf_counter()
            if lane.arcs is not None:      # from the round kernel, for exactly ``active``
                net = _flows.network_from_arcs(*lane.arcs, s_np[active])
                lane.arcs = None
            else:
                net = _flows.auction_network(strict[active], marginal[active], r[active],
                                             s_np[active])
            init = (_carry_flow(net, prev_x, r[active], active)
                    if (warm_start and lane.rounds > 1) else None)
            flow, saturated, reach = _flows.solve_max_flow(net, len(active), backend=backend,
                                                           init_flow=init)
            nflows[active] += 1
            if warm_start:
                prev_x[active] = _xij(net, flow, len(active), n, m)
            X = reach[net.object_node]
            t_flow += time.perf_counter() - t0
            active_next = active[~saturated]
            lane.active = active_next
            if len(active_next) == 0:
                continue
            Xa = X[~saturated]
            t0 = time.perf_counter()
            if step == "search":
                k, nprobe = _search_steps(v, d, s, prices, active_next, Xa, s_np, backend)
                nflows[active_next] += nprobe
                t_flow += time.perf_counter() - t0
                t0 = time.perf_counter()
                prices[active_next] += k[:, None] * Xa
                newb = _gather_bundles(v, d, s, prices, active_next, B)
                (strict[active_next], marginal[active_next], r[active_next],
                 case_a[active_next]) = newb
            else:
                lane.pending = _launch_advance(v, d, s, prices, active_next, Xa, step, nbits)
                lane.pending_rows = active_next
            iterations[active_next] += 1
            t_dev += time.perf_counter() - t0
    for lane in lanes:
        if lane.pending is not None:       # only after a round limit
            collect(lane)
        status[lane.active] = 1
        rounds = max(rounds, lane.rounds)

    alloc = np.zeros((B, n, m), np.int64)
    if allocation:
        t0 = time.perf_counter()
        ok = np.nonzero(status == 0)[0]
        if len(ok):
            net = _flows.allocation_network(strict[ok], marginal[ok], case_a[ok], d_np[ok],
                                            s_np[ok], prices[ok])
            flow, saturated, _ = _flows.solve_max_flow(net, len(ok), backend=backend, cut=False)
            # The dummy buyer may hold zero-price units that a case-B buyer with spare
            # demand would accept at zero payoff. Augment over the real arcs only, from the
            # real part of this flow: augmenting paths never unsaturate the forced
            # (source / positive-price sink) arcs, and the result sells as much as
            # possible, sum x = min(sum s, sum d).
            real = np.isin(net.kind, (_flows.SRC_F, _flows.SRC_M, _flows.F_OBJ,
                                      _flows.M_OBJ, _flows.OBJ_SNK))
            sub = _flows.restrict(net, real)
            f_real = _flows.conserve(sub, np.where(np.isin(sub.kind, (_flows.F_OBJ, _flows.M_OBJ)),
                                                   flow[real], 0))
            f_real, _, _ = _flows.solve_max_flow(sub, len(ok), backend=backend, init_flow=f_real,
                                                 cut=False)
            nflows[ok] += 2
            alloc[ok] = _xij(sub, f_real, len(ok), n, m)
            status[ok[~saturated]] = 2
        t_alloc = time.perf_counter() - t0
    timings = {"device_kernels": t_dev, "max_flows": t_flow, "allocation": t_alloc,
               "rounds": rounds}
    return _finish(batch, n, m, prices, alloc, iterations, nflows, status, timings)


def _finish(batch, n, m, prices, alloc, iterations, nflows, status, timings) -> AuctionResult:
    return AuctionResult(prices.reshape(batch + (m,)), alloc.reshape(batch + (n, m)),
                         iterations.reshape(batch), nflows.reshape(batch),
                         status.reshape(batch), (status == 0).reshape(batch), timings)


def _chunks(count: int, chunk: int, full: int) -> list[tuple[int, int]]:
    """``(lo, hi)`` ranges that split ``count`` markets into device calls: full chunks,
    then the rest in one bucketed call, or in two calls of the next smaller bucket where
    that pads less (e.g. 100 markets: 2 x 64 instead of 256)."""
    out = [(lo, lo + chunk) for lo in range(0, count - count % chunk, chunk)]
    lo = len(out) * chunk
    rest = count - lo
    if rest:
        size = _bucket(rest, full)
        half = size // 4
        if half >= 16 and rest <= 2 * half:
            out += [(lo, lo + half), (lo + half, count)] if rest > half else [(lo, count)]
        else:
            out.append((lo, count))
    return out


def _pad_rows(rows: np.ndarray, B: int) -> np.ndarray:
    size = _bucket(len(rows), B)
    return np.concatenate([rows, np.full(size - len(rows), rows[0])])


def _padded_args(v, d, s, prices, rows, X, B):
    """Kernel arguments for the markets ``rows``, padded to a bucketed batch size."""
    idx = _pad_rows(rows, B)
    Xp = np.zeros((len(idx), X.shape[1]), bool)
    Xp[:len(rows)] = X
    jidx = jnp.asarray(idx)
    return v[jidx], d[jidx], s[jidx], jnp.asarray(prices[idx], jnp.int32), jnp.asarray(Xp)


def _chunk_size() -> int:
    """Markets per device call: small chunks on CPU (few compiled shapes, cache-sized
    arrays), large ones on accelerators."""
    return CPU_CHUNK if jax.default_backend() == "cpu" else ACCEL_CHUNK


def _launch_advance(v, d, s, prices, rows, X, step, nbits=0) -> list:
    """Dispatch the round kernel for the markets ``rows`` (asynchronously), in chunks
    padded to bucketed sizes; :func:`_collect_advance` fetches the results."""
    m = prices.shape[1]
    out = []
    for lo, hi in _chunks(len(rows), _chunk_size(), v.shape[0]):
        r, x = rows[lo:hi], X[lo:hi]
        idx = _pad_rows(r, v.shape[0])
        Xp = np.zeros((len(idx), m), bool)
        Xp[:len(r)] = x
        res = _advance(v, d, s, idx.astype(np.int32), prices[idx].astype(np.int32), Xp,
                       step, nbits)
        out.append((len(r), res))
    return out


def _collect_advance(launched: list):
    """Host copies of :func:`_launch_advance`'s results: new prices, steps, bundles
    ``(strict, marginal, r, case_a)`` and the arc structure, concatenated over the chunks."""
    ps, ks, bs, arcs = [], [], [], []
    for nr, res in launched:
        p_new, k, b, net = jax.device_get(res)
        ps.append(np.asarray(p_new[:nr], np.int64))
        ks.append(np.asarray(k[:nr], np.int64))
        bs.append((b[0][:nr], b[1][:nr], np.asarray(b[2][:nr], np.int64), b[3][:nr]))
        arcs.append(tuple(x[:nr] for x in net))
    # (concatenate also copies: the host arrays are written to later)
    cat = lambda parts: tuple(np.concatenate(c) for c in zip(*parts))  # noqa: E731
    return np.concatenate(ps), np.concatenate(ks), cat(bs), cat(arcs)


def _gather_bundles(v, d, s, prices, rows, B):
    idx = _pad_rows(rows, B)
    jidx = jnp.asarray(idx)
    b = _bundles(v[jidx], d[jidx], s[jidx], jnp.asarray(prices[idx], jnp.int32))
    return tuple(h[:len(rows)] for h in _to_host(b))


def _search_steps(v, d, s, prices, rows, X, s_np, backend):
    """Largest k such that X stays the left-most cut set at p + (k-1) 1_X.

    ``ok(k)`` holds up to the long step ``K`` (the Lyapunov slope along ``1_X`` is constant
    there, computed on the device); for ``k - 1 >= max payoff on X`` nobody has a positive
    payoff on X, so X cannot be overdemanded and ``ok`` fails: that is ``hi``. Between the
    two: galloping (``2K, 4K, ...``) until a probe fails, then bisection; one max flow of
    all probing markets' networks per probe.
    """
    B = v.shape[0]
    A = len(rows)
    vv = np.asarray(v, np.int64)[rows]
    u = vv - prices[rows][:, None, :]
    hi = np.where(X[:, None, :], u, 0).max(axis=(1, 2)) + 2   # ok(hi) is False
    K = np.asarray(_long_steps(*_padded_args(v, d, s, prices, rows, X, B)), np.int64)[:A]
    lo = np.minimum(K, hi - 1)                                  # ok(lo) is True
    galloping = np.ones(A, bool)
    nprobe = np.zeros(A, np.int64)
    while True:
        open_ = hi - lo > 1
        if not open_.any():
            break
        sel = np.nonzero(open_)[0]
        mid = np.where(galloping[sel], np.minimum(2 * lo[sel], hi[sel] - 1),
                       (lo[sel] + hi[sel]) // 2)
        probe = prices[rows[sel]] + (mid - 1)[:, None] * X[sel]
        pp = prices.copy()
        pp[rows[sel]] = probe
        strict, marginal, r, _ = _gather_bundles(v, d, s, pp, rows[sel], B)
        net = _flows.auction_network(strict, marginal, r, s_np[rows[sel]])
        _, saturated, reach = _flows.solve_max_flow(net, len(sel), backend=backend)
        nprobe[sel] += 1
        same = (~saturated) & np.all(reach[net.object_node] == X[sel], axis=1)
        lo[sel] = np.where(same, mid, lo[sel])
        hi[sel] = np.where(same, hi[sel], mid)
        galloping[sel] &= same
    return lo, nprobe


def reoptimize(old_market: MultiUnitMarket, old_prices: Any, new_market: MultiUnitMarket,
               **kwargs: Any) -> AuctionResult:
    """Buyer-optimal prices of ``new_market`` warm-started from ``old_market``'s.

    By monotonicity (seed 001, Theorem 14 and Corollary 17) buyer-optimal prices weakly
    rise when demands rise or supplies fall, so the old prices are a valid start (``<=``
    the new ``p*``) exactly in that direction. This function checks the direction
    (same values, demands not lower, supplies not higher) and raises ``ValueError``
    otherwise. Objects whose supply drops to 0 are priced 0 by convention, so their start
    price is reset to 0.
    """
    for nm, mk in (("old_market", old_market), ("new_market", new_market)):
        if not isinstance(mk, MultiUnitMarket):
            raise TypeError(f"{nm}: expected MultiUnitMarket, got {type(mk).__name__}")
    if (old_market.values.shape != new_market.values.shape
            or old_market.supplies.shape != new_market.supplies.shape):
        raise ValueError("new_market: must have the same shape as old_market "
                         f"({old_market.values.shape} vs {new_market.values.shape})")
    ov, od, os_ = old_market.numpy()
    nv, nd, ns = new_market.numpy()
    if not np.array_equal(ov, nv):
        raise ValueError("new_market: values differ from old_market; warm starts are valid "
                         "only for demand/supply changes")
    if np.any(nd < od):
        raise ValueError("new_market: some demand fell; old prices are then not a valid start "
                         "(monotonicity runs the other way). Solve from scratch instead.")
    if np.any(ns > os_):
        raise ValueError("new_market: some supply rose; old prices are then not a valid start "
                         "(monotonicity runs the other way). Solve from scratch instead.")
    p = as_int_array(old_prices, "old_prices", min_ndim=1)
    if p.shape != os_.shape:
        raise ValueError(f"old_prices: shape {p.shape} does not match supplies {os_.shape}")
    p = np.where(ns == 0, 0, p)
    return buyer_optimal_equilibrium(new_market, start=p, **kwargs)
