"""Buyer-optimal Walrasian prices by the flow-based ascending auction (Eickhoff, McCormick,
Peis, Rieken and Vargas Koch, "A flow-based ascending auction to compute buyer-optimal
Walrasian prices", Networks 84(2), 2024).

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
from typing import Any, Literal, NamedTuple

import numpy as np

from .typing import ArrayLike, DevicesLike
from ._progress import Progress

from jaxwalras import auction_rounds as _rounds
from jaxwalras import checks as _checks
from jaxwalras import flows as _flows
from jaxwalras._validation import as_int_array, check_choice, check_integer, warn_deprecated
from jaxwalras.devices import resolve_devices
from jaxwalras.multiunit import MAX_VALUE, MultiUnitMarket, _check_market, _check_prices
from jaxwalras.status import Status

__all__ = ["AuctionResult", "buyer_optimal_equilibrium", "reoptimize"]

Step = Literal["long", "search", "unit"]


class AuctionResult(NamedTuple):
    """Result of :func:`buyer_optimal_equilibrium` (leading axes = the market's batch shape).

    Attributes
    ----------
    prices : ndarray of int64, shape (..., m)
        Buyer-optimal Walrasian prices ``p*``.
    allocation : ndarray of int64, shape (..., n, m)
        A Walrasian allocation at ``p*`` (one of many).
    iterations : ndarray of int64, shape (...)
        Price raises (rounds with an overdemanded set).
    max_flows : ndarray of int64, shape (...)
        Maximum flows computed for the market (incl. the final allocation flow and
        step-search probes).
    status : ndarray of int64, shape (...)
        :class:`jaxwalras.Status` code: ``OK`` (the final check certified the prices as
        ``p*`` and the allocation as Walrasian), ``ROUND_LIMIT``,
        ``START_ABOVE_OPTIMUM`` (only with ``on_bad_start="report"``) or
        ``NOT_CERTIFIED``.
    converged : ndarray of bool, shape (...)
        ``status == OK``.
    timings : dict
        Host-side breakdown in seconds (device kernel, flows, allocation).
    """
    prices: np.ndarray
    allocation: np.ndarray
    iterations: np.ndarray
    max_flows: np.ndarray
    status: np.ndarray
    converged: np.ndarray
    timings: dict


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
        # network arcs of ``active`` (:func:`jaxwalras.auction_rounds.arc_list`)
        self.arcs: tuple[np.ndarray, ...] | None = None


#: ``step="unit"`` without jumps raises prices by one per round and may need up to
#: ``max v + 1`` rounds; above this many (by default, when ``max_rounds`` is not given)
#: it is refused with a pointer to ``step="long"``, which returns the same prices.
UNIT_STEP_MAX_ROUNDS = 2**16

#: default round budget of ``step="long"`` and ``step="search"``
DEFAULT_MAX_ROUNDS = 1_000_000


def buyer_optimal_equilibrium(market: MultiUnitMarket, start: ArrayLike | None = None, *,
                              step: Step = "long", warm_start: bool = True,
                              backend: Literal["auto", "device", "host"] = "auto",
                              flow_solver: Literal["scipy", "networkx"] = "scipy",
                              max_rounds: int | None = None,
                              allocation: bool = True,
                              jumps: bool | None = None,
                              on_bad_start: Literal["restart", "report"] = "restart",
                              devices: DevicesLike = None,
                              progress: bool | None = None) -> AuctionResult:
    """Buyer-optimal Walrasian prices and a Walrasian allocation by the ascending auction.

    Starting from ``start`` (default ``0``; any integer vector known to be ``<= p*``),
    repeat for all running markets at once: compute the greedy preferred bundles on the
    device, a maximum flow of N(p) on the host, and raise the inclusion-minimal maximal
    overdemanded set ``X`` (source side of the left-most min cut) by a step ``k``; stop
    when no set is overdemanded.  From ``p0 <= p*`` the auction ends exactly at the
    buyer-optimal (componentwise least) Walrasian prices ``p*`` (Eickhoff et al., 2024,
    Thm. 4 and the remark after it).

    Final check (host, exact integers, independent of the search): the allocation passes
    every Walrasian condition (:func:`jaxwalras.checks.walrasian_ok`; without an allocation,
    no set is overdemanded), and no price can be lowered
    (:func:`jaxwalras.checks.least_prices_ok`: no nonempty ``X`` with ``p_j > 0`` on ``X``
    and ``Lyap(p - 1_X) = Lyap(p)``, one max flow), which together certify ``p = p*``
    (see :func:`jaxwalras.is_buyer_optimal`).  A start that is not ``<= p*`` is caught
    there: the ascent cannot go down, so it ends above ``p*``.

    Parameters
    ----------
    market : MultiUnitMarket
        Any leading batch axes.
    start : array_like of int, shape (..., m), optional
        Start prices, ``0 <= start <= p*`` (integers at most ``MAX_VALUE``).  Use it to
        re-optimise after demands rose or supplies fell (Eickhoff et al., 2024, Thm. 14):
        the old buyer-optimal prices are then a valid start (see :func:`reoptimize`).
        A start that turns out not to be ``<= p*`` is handled by ``on_bad_start``.
    step : {"long", "search", "unit"}
        ``"long"`` (default): raise ``X`` as far as the Lyapunov function keeps its slope
        along ``1_X`` (closed form on the device; no extra flows); ``"search"``: the
        largest ``k`` for which ``X`` stays the left-most cut set, by binary search with one
        max flow per probe; ``"unit"``: ``k = 1`` (the plain auction, pseudo-polynomial).
    warm_start : bool
        Carry the previous round's flow into the new network and augment from there
        (host backend).
    backend : {"auto", "device", "host"}
        ``"device"``: the whole auction in one jitted ``while_loop`` on the device,
        left-most cuts by enumerating the ``2^m`` object sets (:mod:`jaxwalras.kernels.cuts`;
        ``m <= 16``), only the final allocation flow on the host; ``"host"``: greedy
        bundles on the device, one maximum flow per round over the disjoint union of all
        running markets' networks on the host; ``"auto"`` (default): ``"device"`` on
        GPU/TPU when ``m <= 12``, else ``"host"``.  ``"scipy"`` and ``"networkx"`` are
        deprecated values (``backend="host"`` with that ``flow_solver``).
    flow_solver : {"scipy", "networkx"}
        Host max flows: ``scipy.sparse.csgraph.maximum_flow`` over the union network
        (default) or one networkx flow per market (the slow reference).
    max_rounds : int, optional
        Bound on rounds (one overdemand check and raise each); markets that hit it get
        ``status == ROUND_LIMIT``.  With host flows the check of the final prices is a
        round of its own; the all-device auction checks them after its last round, so a
        market that reaches ``p*`` in exactly ``max_rounds`` raises is done.  Default:
        for ``step="unit"`` enough for every market, ``max v + 2`` (unit raises from
        ``p0 <= p*`` make exactly ``max_j (p*_j - p0_j) <= max v`` raises; Murota,
        Shioura and Yang, 2016); without jumps and above ``UNIT_STEP_MAX_ROUNDS = 2**16``
        that is refused (``ValueError``) rather than run for minutes: use
        ``step="long"`` (same prices) or pass ``max_rounds``.  Otherwise ``1_000_000``.
    allocation : bool
        Also compute a Walrasian allocation (one more union max flow).
    jumps : bool, optional
        After every raise (and once before the first round) raise each *individually*
        overdemanded object, on the device, to the price at which it stops being so with
        the other prices fixed (:func:`jaxwalras.kernels.greedy.singleton_jumps`).  Such
        raises never pass ``p*`` (submodularity of the Lyapunov function), so the result is
        unchanged, but far fewer rounds and max flows are needed.  Default: on for
        ``step="long"``, off for ``"unit"`` and ``"search"`` (the textbook auctions whose
        raise counts the theory gives).
    on_bad_start : {"restart", "report"}
        What to do with a market whose final check fails after a nonzero ``start`` (the
        start was not ``<= p*``): ``"restart"`` (default) solves it again from ``0`` and
        certifies that answer (its ``iterations`` and ``max_flows`` include both runs);
        ``"report"`` keeps where the ascent stopped and sets ``status =
        START_ABOVE_OPTIMUM``.  A market that fails the check from ``0`` gets
        ``NOT_CERTIFIED`` (never expected).
    devices : int, str, jax.Device or sequence of them, optional
        Devices the kernels run on, the batch split over them
        (:func:`jaxwalras.resolve_devices`; default: :func:`jaxwalras.use_devices` or all
        local devices). The answer does not depend on them.
    progress : bool, optional
        A progress bar of finished markets on standard error, one update per round (``None``:
        only when the environment variable ``JAXWALRAS_PROGRESS=1`` is set).

    Returns
    -------
    AuctionResult
        ``prices``, ``allocation``, ``iterations`` (price raises), ``max_flows``, per-market
        ``status`` / ``converged`` and ``timings``.

    Raises
    ------
    TypeError, ValueError
        A bad market or option (the message names it), an empty batch, ``devices`` that
        name no device or mix platforms, or ``step="unit"`` without jumps on values that
        may need more than ``UNIT_STEP_MAX_ROUNDS`` rounds (see ``max_rounds``).

    Notes
    -----
    Compiled kernels depend on bucketed shapes only (:mod:`jaxwalras._batching`): chunks
    of 16, 64 or 256 markets per device (4096 on accelerators; on CPUs down to 4 or 1 for
    large markets: :func:`jaxwalras.multiunit_chunks.chunk_limits`), buyers and objects padded
    to ``0, 1, 2, 3, 4, 6, 8, 12, 16, 24, ...`` with zero-demand buyers and zero-supply
    objects, which change nothing; :func:`jaxwalras.warmup` compiles them ahead.

    References
    ----------
    K. Eickhoff, S. T. McCormick, B. Peis, N. Rieken and L. Vargas Koch, "A flow-based
    ascending auction to compute buyer-optimal Walrasian prices", Networks 84(2), 2024.

    K. Murota, A. Shioura and Z. Yang, "Time bounds for iterative auctions: a unified
    approach by discrete convex analysis", Discrete Optimization 19, 2016.

    Examples
    --------
    >>> import jaxwalras as jw
    >>> mkt = jw.MultiUnitMarket([[4, 4], [5, 3]], demands=[2, 1], supplies=[1, 1])
    >>> jw.buyer_optimal_equilibrium(mkt).prices.tolist()
    [4, 2]
    >>> res = jw.buyer_optimal_equilibrium(mkt, start=[9, 9])   # not <= p*: repaired
    >>> res.prices.tolist(), bool(res.converged)
    ([4, 2], True)
    """
    _check_market(market)
    check_choice(step, "step", ("long", "search", "unit"))
    check_choice(on_bad_start, "on_bad_start", ("restart", "report"))
    if backend in ("scipy", "networkx"):
        warn_deprecated(f'backend="{backend}"', f'backend="host", flow_solver="{backend}"')
        backend, flow_solver = "host", backend
    check_choice(backend, "backend", ("auto", "device", "host"))
    check_choice(flow_solver, "flow_solver", ("scipy", "networkx"))
    devs = resolve_devices(devices)
    if not all(market.batch_shape):
        raise ValueError(f"market: empty batch (batch shape {market.batch_shape}); there is "
                         f"no market to solve")
    backend_arg = backend
    if backend == "device" and market.n_objects > 16:
        raise ValueError(f"backend: 'device' enumerates 2^m object sets and allows at most 16 "
                         f"objects, the market has {market.n_objects}; use 'host'")
    if backend == "device" and step == "search":
        raise ValueError("step: 'search' probes with host max flows; use backend='host' "
                         "with it, or step='long' on the device")
    if backend == "auto":
        backend = ("device" if (market.n_objects <= _rounds.DEVICE_MAX_OBJECTS
                                and step != "search" and devs[0].platform != "cpu")
                   else "host")
    on_device = backend == "device"
    # the host max flows (on the device path only the final allocation flow)
    host_solver: _flows.Backend = "scipy" if on_device else flow_solver
    if jumps is None:
        jumps = step == "long"
    if not isinstance(jumps, (bool, np.bool_)):
        raise TypeError(f"jumps: must be True, False or None, got {jumps!r}")
    for nm, flag in (("warm_start", warm_start), ("allocation", allocation)):
        if not isinstance(flag, (bool, np.bool_)):
            raise TypeError(f"{nm}: must be True or False, got {flag!r}")
    if max_rounds is None:
        if step == "unit":
            vmax = int(np.max(market.values, initial=0))
            max_rounds = vmax + 2
            if not jumps and max_rounds > UNIT_STEP_MAX_ROUNDS:
                raise ValueError(
                    f"step: 'unit' raises prices by one per round (one max flow each) and "
                    f"may need up to max v + 2 = {max_rounds} rounds here, more than "
                    f"UNIT_STEP_MAX_ROUNDS = {UNIT_STEP_MAX_ROUNDS}; use step='long' (the "
                    f"same prices in far fewer rounds), jumps=True, or pass max_rounds "
                    f"explicitly to run it anyway")
        else:
            max_rounds = DEFAULT_MAX_ROUNDS
    max_rounds = check_integer(max_rounds, "max_rounds", lo=1)
    batch = market.batch_shape
    n, m = market.n_buyers, market.n_objects
    B = int(np.prod(batch, dtype=np.int64))
    if start is None:
        p0 = np.zeros((B, m), np.int64)
    else:
        p0 = np.asarray(_check_prices(market, start, "start"), np.int64).reshape(B, m)
    # host copies (no device op on batch-dependent shapes: nothing here compiles)
    v, d, s = (np.asarray(x).reshape((B,) + x.shape[len(batch):]) for x in
               (market.values, market.demands, market.supplies))
    s_np = np.asarray(s, np.int64)
    d_np = np.asarray(d, np.int64)
    t_dev = t_flow = t_alloc = 0.0

    prices = p0.copy()
    iterations = np.zeros(B, np.int64)
    nflows = np.zeros(B, np.int64)
    status = np.zeros(B, np.int64)
    if n == 0 or m == 0:
        # no buyers: p* = 0 (Lyap(p) = s.p); the ascent would not move from the start
        bad = prices.any(-1)
        if on_bad_start == "report":
            status[bad] = Status.START_ABOVE_OPTIMUM
        else:
            prices[:] = 0
        alloc = np.zeros((B, n, m), np.int64)
        return _finish(batch, n, m, prices, alloc, iterations, nflows, status, {})

    M = _rounds.Padded(v, d, s, devs)
    prev_x = np.zeros((B, n, m), np.int64)
    rounds = 0
    lanes: list[_Lane] = []
    bar = Progress(B, "auction", unit="market", enabled=progress)
    if on_device:
        t0 = time.perf_counter()
        prices, iterations, running, rounds, (strict, marginal, r, case_a) = \
            _rounds.run_device_auction(M, prices, "unit" if step == "unit" else "long",
                                       max_rounds, bool(jumps))
        status[running] = Status.ROUND_LIMIT
        t_dev += time.perf_counter() - t0
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
        mu = np.full((B, n), -1, np.int32)     # marginal payoffs at ``prices`` (-1: unknown)
        dev_step = "unit" if step == "search" else step
        n_lanes = 2 if (step != "search" and B >= PIPELINE_MIN_MARKETS) else 1
        t0 = time.perf_counter()
        for part in np.array_split(np.arange(B), n_lanes):
            lane = _Lane(part)
            lane.pending = _rounds.launch_advance(M, prices, part,
                                                  np.zeros((len(part), m), bool),
                                                  dev_step, bool(jumps))
            lanes.append(lane)
        t_dev += time.perf_counter() - t0

    def collect(lane: _Lane) -> None:
        assert lane.pending is not None
        rows = lane.pending_rows
        newp, _, newb, mu[rows], lane.arcs = _rounds.collect_advance(M, lane.pending)
        prices[rows] = newp
        strict[rows], marginal[rows], r[rows], case_a[rows] = newb
        lane.pending = None

    n_done = 0
    while any(len(lane.active) and lane.rounds < max_rounds for lane in lanes):
        left = sum(len(lane.active) for lane in lanes)
        bar.update(B - left - n_done, round=max(lane.rounds for lane in lanes))
        n_done = B - left
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
            known = [a for a in arcs if a is not None]
            if len(known) == len(arcs):
                merged.arcs = _rounds.merge_arc_lists(known, order, n, m)
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
                fb, rank, src_cap = lane.arcs
                net = _flows.network_from_arc_list(fb, rank, src_cap, s_np[active])
                lane.arcs = None
            else:
                net = _flows.auction_network(strict[active], marginal[active], r[active],
                                             s_np[active])
            init = (_flows.carry_flow(net, prev_x, r[active], active)
                    if (warm_start and lane.rounds > 1) else None)
            flow, saturated, reach = _flows.solve_max_flow(net, len(active), backend=host_solver,
                                                           init_flow=init)
            nflows[active] += 1
            if warm_start:
                prev_x[active] = _flows.buyer_object_flows(net, flow, len(active), n, m)
            assert reach is not None
            X = reach[net.object_node]
            t_flow += time.perf_counter() - t0
            active_next = active[~saturated]
            lane.active = active_next
            if len(active_next) == 0:
                continue
            Xa = X[~saturated]
            t0 = time.perf_counter()
            if step == "search":
                k, nprobe = _search_steps(M, prices, active_next, Xa, s_np, host_solver)
                nflows[active_next] += nprobe
                t_flow += time.perf_counter() - t0
                t0 = time.perf_counter()
                prices[active_next] += k[:, None] * Xa
                mu[active_next] = -1
                newb = _rounds.gather_bundles(M, prices, active_next)
                (strict[active_next], marginal[active_next], r[active_next],
                 case_a[active_next]) = newb
            else:
                lane.pending = _rounds.launch_advance(M, prices, active_next, Xa, step,
                                                      bool(jumps), mu)
                lane.pending_rows = active_next
            iterations[active_next] += 1
            t_dev += time.perf_counter() - t0
    for lane in lanes:
        if lane.pending is not None:       # only after a round limit
            collect(lane)
        status[lane.active] = Status.ROUND_LIMIT
        rounds = max(rounds, lane.rounds)
    bar.update(B - n_done if lanes else B)
    bar.close()

    alloc = np.zeros((B, n, m), np.int64)
    t0 = time.perf_counter()
    ok = np.nonzero(status == 0)[0]
    if allocation and len(ok):
        net = _flows.allocation_network(strict[ok], marginal[ok], case_a[ok], d_np[ok],
                                        s_np[ok], prices[ok])
        flow, saturated, _ = _flows.solve_max_flow(net, len(ok), backend=host_solver, cut=False)
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
        f_real, _, _ = _flows.solve_max_flow(sub, len(ok), backend=host_solver, init_flow=f_real,
                                             cut=False)
        nflows[ok] += 2
        alloc[ok] = _flows.buyer_object_flows(sub, f_real, len(ok), n, m)
    t_alloc = time.perf_counter() - t0
    # Final check, on the host in exact integers and independent of the search: the
    # prices are Walrasian (the allocation passes every condition; without one, no set
    # is overdemanded) and no price can be lowered (least minimiser of Lyap), i.e. p = p*.
    t0 = time.perf_counter()
    if len(ok):
        v_np = np.asarray(v, np.int64)
        good = _checks.certify_prices(v_np[ok], d_np[ok], s_np[ok], prices[ok],
                                      alloc[ok] if allocation else None)
        nflows[ok] += 1 if allocation else 2
        bad = ok[~good]
        from_start = p0[bad].any(-1)
        status[bad[~from_start]] = Status.NOT_CERTIFIED
        bad_start = bad[from_start]
        if len(bad_start) and on_bad_start == "report":
            status[bad_start] = Status.START_ABOVE_OPTIMUM
        elif len(bad_start):
            sub_market = MultiUnitMarket.tree_unflatten(
                None, (v[bad_start], d[bad_start], s[bad_start]))
            again = buyer_optimal_equilibrium(
                sub_market, step=step, warm_start=warm_start, backend=backend_arg,
                flow_solver=flow_solver, max_rounds=max_rounds, allocation=allocation,
                jumps=jumps, devices=devs)
            prices[bad_start] = again.prices
            alloc[bad_start] = again.allocation
            iterations[bad_start] += again.iterations
            nflows[bad_start] += again.max_flows
            status[bad_start] = again.status
    t_check = time.perf_counter() - t0
    timings = {"device_kernels": t_dev, "max_flows": t_flow, "allocation": t_alloc,
               "final_check": t_check, "rounds": rounds}
    return _finish(batch, n, m, prices, alloc, iterations, nflows, status, timings)


def _finish(batch, n, m, prices, alloc, iterations, nflows, status, timings) -> AuctionResult:
    return AuctionResult(prices.reshape(batch + (m,)), alloc.reshape(batch + (n, m)),
                         iterations.reshape(batch), nflows.reshape(batch),
                         status.reshape(batch), (status == 0).reshape(batch), timings)


def _search_steps(M, prices, rows, X, s_np, backend):
    """Largest k such that X stays the left-most cut set at p + (k-1) 1_X.

    ``ok(k)`` holds up to the long step ``K`` (the Lyapunov slope along ``1_X`` is constant
    there, computed on the device); for ``k - 1 >= max payoff on X`` nobody has a positive
    payoff on X, so X cannot be overdemanded and ``ok`` fails: that is ``hi``. Between the
    two: galloping (``2K, 4K, ...``) until a probe fails, then bisection; one max flow of
    all probing markets' networks per probe.
    """
    A = len(rows)
    vv = M.v[rows].astype(np.int64)
    u = vv - prices[rows][:, None, :]
    hi = np.where(X[:, None, :], u, 0).max(axis=(1, 2)) + 2   # ok(hi) is False
    K = _rounds.batch_long_steps(M, prices, rows, X)
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
        strict, marginal, r, _ = _rounds.gather_bundles(M, pp, rows[sel])
        net = _flows.auction_network(strict, marginal, r, s_np[rows[sel]])
        _, saturated, reach = _flows.solve_max_flow(net, len(sel), backend=backend)
        nprobe[sel] += 1
        same = (~saturated) & np.all(reach[net.object_node] == X[sel], axis=1)
        lo[sel] = np.where(same, mid, lo[sel])
        hi[sel] = np.where(same, hi[sel], mid)
        galloping[sel] &= same
    return lo, nprobe


def reoptimize(old_market: MultiUnitMarket, old_prices: ArrayLike, new_market: MultiUnitMarket,
               **kwargs: Any) -> AuctionResult:
    """Buyer-optimal prices of ``new_market`` warm-started from ``old_market``'s.

    By monotonicity (Eickhoff et al., 2024, Thm. 14 and Cor. 17) buyer-optimal prices weakly
    rise when demands rise or supplies fall, so the old prices are a valid start (``<=`` the
    new ``p*``) exactly in that direction.  Objects whose supply drops to 0 are priced 0 by
    convention, so their start price is reset to 0.

    Parameters
    ----------
    old_market : MultiUnitMarket
    new_market : MultiUnitMarket
        Same shapes and values as ``old_market``; demands not lower, supplies not higher.
    old_prices : array_like of int, shape (..., m)
        The buyer-optimal prices of ``old_market``.  Other prices are caught by the final
        check when they are not ``<= p*`` of ``new_market``, and then handled by
        ``on_bad_start`` (default: solved again from ``0``).
    **kwargs
        Options of :func:`buyer_optimal_equilibrium`.

    Returns
    -------
    AuctionResult

    Raises
    ------
    ValueError
        The change is not in the direction monotonicity allows (a demand fell, a supply rose,
        or the values changed), or the shapes differ.

    Examples
    --------
    >>> import jaxwalras as jw
    >>> old = jw.MultiUnitMarket([[4, 4], [5, 3]], demands=[2, 1], supplies=[1, 1])
    >>> new = jw.MultiUnitMarket([[4, 4], [5, 3]], demands=[2, 2], supplies=[1, 1])
    >>> jw.reoptimize(old, [4, 2], new).prices.tolist()
    [4, 3]
    """
    _check_market(old_market, "old_market")
    _check_market(new_market, "new_market")
    if (old_market.values.shape != new_market.values.shape
            or old_market.supplies.shape != new_market.supplies.shape):
        raise ValueError("new_market: must have the same shape as old_market "
                         f"({old_market.values.shape} vs {new_market.values.shape})")
    ov, od, os_ = old_market.host_arrays()
    nv, nd, ns = new_market.host_arrays()
    if not np.array_equal(ov, nv):
        raise ValueError("new_market: values differ from old_market; warm starts are valid "
                         "only for demand/supply changes")
    if np.any(nd < od):
        raise ValueError("new_market: some demand fell; old prices are then not a valid start "
                         "(monotonicity runs the other way). Solve from scratch instead.")
    if np.any(ns > os_):
        raise ValueError("new_market: some supply rose; old prices are then not a valid start "
                         "(monotonicity runs the other way). Solve from scratch instead.")
    p = as_int_array(old_prices, "old_prices", min_ndim=1, max_abs=MAX_VALUE)
    if p.shape != os_.shape:
        raise ValueError(f"old_prices: shape {p.shape} does not match supplies {os_.shape}")
    p = np.where(ns == 0, 0, p)
    return buyer_optimal_equilibrium(new_market, start=p, **kwargs)
