"""Equilibria of convexified non-convex economies (Milgrom and Watt, 2022).

The convexified economy lets every agent mix the options of its menu.  Its equilibrium with
markup ``alpha`` and auctioneer reserve ``R`` (per good) is the linear program

    max  sum_{n,k} lam[n,k] V[n,k] / (1+alpha)  -  sum_{f,k} mu[f,k] C[f,k]
    s.t. lam[n,:], mu[f,:] on the simplex,   sum X lam + R <= sum Y mu        (per good)

with dual ``g(p) = sum_n max_k (V/(1+alpha) - p.X) + sum_f max_k (p.Y - C) - p.R``, minimised
over seller prices ``p >= 0``; buyers face ``(1+alpha) p``.  A basic (vertex) optimum has at
most ``L`` agents with more than one positive weight (the Shapley--Folkman structure), and
every positive-weight option is in the agent's demand / supply set at the optimal prices.

Methods (``method=``, the algorithm)
------------------------------------
``"smoothed"``  projected Newton (or optax Adam) on the entropic smoothing of ``g``, annealed,
                batched over all economies as fixed-length ``lax.scan`` stages
                (:mod:`jaxwalras.kernels.smoothed_dual`), then (``exact=True``) an exact
                finish from its prices (:mod:`jaxwalras.exact_finish`): an LP restricted to
                each economy's near-tied options, certified against the full menus.
``"lp"``        the whole LP in HiGHS (dual simplex, so the answer is a vertex), one economy
                at a time on the host: the baseline a user would write.
``"envelope"``  ``L == 1`` only: the exact one-good method by upper envelopes
                (:func:`jaxwalras.single_good.convexified_one_good`), no LP.
``"auto"``      ``"envelope"`` for one good with ``exact=True``, else ``"smoothed"``.

``backend=`` says where the exact finish of ``"smoothed"`` runs: ``"device"`` (a batched
float64 dense dual simplex in JAX, :mod:`jaxwalras.kernels.restricted_lp`), ``"host"``
(HiGHS) or ``"auto"`` (device on accelerators, host on CPU, where HiGHS is faster).
"""
from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .typing import ArrayLike
from ._batching import (BATCH_BASE, BATCH_FLOOR, CPU_CHUNK_BYTES, as_slice, map_chunks,
                        padded_size)
from .devices import resolve_devices
from .setfunction_chunks import cap_for
from ._progress import Progress
from ._validation import check_choice, warn_deprecated
from .economy import MenuArrays, MenuEconomy
from .exact_finish import canonical_prices, device_exact_finish, host_exact_finish
from .highs import menu_lp_feasible, solve_menu_lps
from .kernels.smoothed_dual import newton_steps, solve_batch
from .menu_host import (broadcast_inputs, dual_value, primal_and_infeasibility, rel_gap,
                        rel_infeasibility)
from .single_good import convexified_one_good
from .status import Status

__all__ = ["ConvexifiedResult", "convexified_equilibrium", "device_solve"]


class ConvexifiedResult(NamedTuple):
    """Result of :func:`convexified_equilibrium` (leading axes = broadcast batch).

    Attributes
    ----------
    prices : ndarray, shape (..., L)
        Seller prices ``p >= 0`` (NaN where no solution was found).  Where the optimal
        prices are not unique (degenerate LPs), the exact methods return the
        lexicographically smallest optimal prices (the one-good envelope: the smallest
        optimal price), a choice that depends on the economy alone, not on the method,
        the backend or the other economies of the batch.
    buyer_prices : ndarray, shape (..., L)
        ``(1 + markup) * p``.
    buyer_weights : ndarray, shape (..., N, Kb)
        Mixing weights of each buyer on its simplex (0 on masked options).
    seller_weights : ndarray, shape (..., F, Ks)
        Mixing weights of each seller.
    dual_value : ndarray, shape (...)
        ``g(prices)``: an upper bound on the convexified optimum.
    primal_value : ndarray, shape (...)
        LP objective of the returned weights.
    gap : ndarray, shape (...)
        ``dual_value - primal_value`` (absolute; a certificate of optimality when the
        weights are feasible, see ``infeasibility``).
    rel_gap : ndarray, shape (...)
        ``gap / max(|dual_value|, |primal_value|, value scale)``, the value scale being the
        largest ``|value| / (1 + markup)`` or ``|cost|`` of the economy.
    converged : ndarray of bool, shape (...)
        The solver reported success and the float64 certificate holds: relative duality
        gap ``<= rtol`` and, in every good, excess demand ``<= 1e-9`` of the quantities of
        that good the weights move (both relative to the economy's own scales).
    status : ndarray of int, shape (...)
        :class:`jaxwalras.Status` code: ``OK``, ``INFEASIBLE`` (reserve beyond capacity),
        ``SOLVER_FAILED`` or ``NOT_CERTIFIED`` (gap or infeasibility above tolerance).
    iterations : ndarray of int, shape (...)
        Device iterations (``"smoothed"``), simplex iterations (``"lp"``), 0 (envelope).
    markup : ndarray, shape (...)
        The markup used.
    reserve : ndarray, shape (..., L)
        The reserve used.
    infeasibility : ndarray, shape (...)
        ``max_l (sum X lam + R - sum Y mu)_+`` of the returned weights.
    """

    prices: Any
    buyer_prices: Any
    buyer_weights: Any
    seller_weights: Any
    dual_value: Any
    primal_value: Any
    gap: Any
    rel_gap: Any
    converged: Any
    iterations: Any
    markup: Any
    reserve: Any
    infeasibility: Any
    status: Any


# ----------------------------------------------------------------------------------------
# the batched device solver
# ----------------------------------------------------------------------------------------
_DEVICE_KEYS = ("solver", "stages", "steps", "tau0", "tau_min", "learning_rate", "device_tol")

#: the exact finish overlaps the device solve of the next chunk: a batch of at least
#: ``2 * _PIPE_MIN`` economies is cut into ``_PIPE_CHUNKS`` chunks (at least ``_PIPE_MIN``)
_PIPE_MIN, _PIPE_CHUNKS = 64, 4


# On CPUs a chunk's float inputs stay within CPU_CHUNK_BYTES (a few times a core's L2
# cache): the Newton iterations sweep the same chunk many times; on a 2-core x86-64
# machine (1 MiB L2 per core) the device solve of 1,000 economies of 100 buyers x 8
# options x 5 goods took 0.39-0.42 s in chunks of 64 (1.3 MiB), 0.42-0.45 s in chunks of
# 256 and 0.53-0.56 s in one chunk of 1,024.

#: the batched solver, one compiled version per option set and shape (jit's own cache)
_solve_batch = jax.jit(solve_batch, static_argnames=_DEVICE_KEYS)


def _check_device_options(options: dict) -> None:
    bad = set(options) - set(_DEVICE_KEYS)
    if bad:
        raise TypeError(f"unknown device option(s) {sorted(bad)}; allowed: {list(_DEVICE_KEYS)}"
                        " and chunk_size")
    if "solver" in options:
        check_choice(options["solver"], "solver", ("newton", "adam"))


def _chunk_size(A: MenuArrays, chunk_size: int | None) -> int:
    """Economies per device call: a batch bucket (16, 64, 256, ...; 4 or 1 for huge
    economies) bounded by ~256 MiB of float32 inputs (on CPUs by ``CPU_CHUNK_BYTES``),
    never the exact batch size, so the compiled solver does not depend on it
    (:mod:`jaxwalras._batching`)."""
    if chunk_size is None:
        per = A.X[0].size + A.Y[0].size + A.V[0].size + A.C[0].size
        cap = cap_for(per, 2 ** 26)[0]
        if resolve_devices()[0].platform == "cpu":
            # economies above CPU_CHUNK_BYTES / 16 each get chunks of 4 or 1 (a chunk of
            # 16 would make 2 such economies cost 16)
            itemsize = np.dtype(jnp.result_type(float)).itemsize
            cap = min(cap, cap_for(per * itemsize, CPU_CHUNK_BYTES)[0])
        return cap
    try:
        size = int(chunk_size)
    except (TypeError, ValueError):
        size = 0
    if isinstance(chunk_size, bool) or size != chunk_size or size < 1:
        raise ValueError(f"chunk_size: must be a positive integer, got {chunk_size!r}")
    return size


def _device_chunks(A: MenuArrays, a: np.ndarray, r: np.ndarray, size: int, **options: Any):
    """The jitted batched solver on chunks of ``size`` economies (the last one padded by
    repetition: one compiled shape), pipelined; yields ``(lo, hi, solution)``."""
    B = A.n_markets
    full = tuple(A) + (a, r)

    def launch(idx: np.ndarray):
        # device_put, not jnp.asarray (which compiles a copy per shape); a contiguous
        # chunk goes as a view (no gather copy)
        rows = as_slice(idx)
        return _solve_batch(*(jax.device_put(np.asarray(z)[rows]) for z in full), **options)

    # the rest is padded to a batch bucket (16, 64, 256, ... up to ``size``)
    floor = min(BATCH_FLOOR, size)
    yield from map_chunks(launch, B, size, base=BATCH_BASE, floor=floor, split_rest=True)


def device_solve(A: MenuArrays, a: np.ndarray, r: np.ndarray, *,
                 chunk_size: int | None = None, **options: Any):
    """The batched smoothed-dual device solver on a flat batch (no exact finish).

    Parameters
    ----------
    A : MenuArrays
        Flat batch ``(B, ...)``.
    a, r : ndarray
        Markups ``(B,)`` and reserves ``(B, L)``.
    chunk_size : int, optional
        Economies per device call (the last chunk is padded: no recompiles).
    **options
        ``solver``, ``stages``, ``steps``, ``tau0``, ``tau_min``, ``learning_rate``,
        ``device_tol`` (see :func:`jaxwalras.kernels.smoothed_dual.solve_smoothed_dual`).

    Returns
    -------
    prices, buyer_weights, seller_weights, rel_gap, converged, iterations
        numpy arrays in the default JAX float dtype (float32 unless x64 is enabled).
    """
    _check_device_options(options)
    size = _chunk_size(A, chunk_size)
    outs = [sol for _, _, sol in _device_chunks(A, a, r, size, **options)]
    cat = lambda k: np.concatenate([getattr(o, k) for o in outs])  # noqa: E731
    return (cat("prices"), cat("buyer_weights"), cat("seller_weights"), cat("rel_gap"),
            cat("converged"), cat("iterations"))


def _smoothed_then_exact(A: MenuArrays, a: np.ndarray, r: np.ndarray, *, exact: bool,
                         chunk_size: int | None, backend: str, bar: Progress | None = None,
                         **options: Any):
    """Device solve, then the exact finish (``backend``: "device" or "host").

    Returns ``(ok, P, LAM, MU, iterations, dual)``; ``dual`` is ``None`` (``exact=False``)
    or ``g(P)`` where ``ok`` (NaN elsewhere).  With ``exact=True`` each chunk's prices are
    made canonical (:func:`jaxwalras.exact_finish.canonical_prices`) as soon as it is
    finished, so that host work overlaps the device solve of the next chunk."""
    if not exact:
        if options.get("solver", "newton") == "newton":
            # nothing polishes the answer: twice the default steps per smoothing level
            options.setdefault("steps", 2 * newton_steps(r.shape[-1]))
        P0, LAM0, MU0, _, _, iters = device_solve(A, a, r, chunk_size=chunk_size, **options)
        return (np.ones(len(P0), bool), P0.astype(np.float64), LAM0.astype(np.float64),
                MU0.astype(np.float64), iters, None)
    B, L = r.shape
    size = _chunk_size(A, chunk_size)
    if chunk_size is None and backend == "host" and B >= 2 * _PIPE_MIN:
        # a bucket too (64, 256, ...): the chunk size must not follow B exactly
        size = min(size, padded_size(max(_PIPE_MIN, -(-B // _PIPE_CHUNKS)), base=BATCH_BASE,
                                     floor=_PIPE_MIN))
    ok = np.zeros(B, bool)
    P = np.zeros((B, L))
    LAM = np.zeros(A.V.shape)
    MU = np.zeros(A.C.shape)
    iters = np.zeros(B, np.int64)
    dual = np.full(B, np.nan)
    for lo, hi, sol in _device_chunks(A, a, r, size, **options):
        sl = slice(lo, hi)
        P0 = sol.prices.astype(np.float64)
        iters[sl] = sol.iterations
        rest = np.arange(hi - lo)
        Ac = A.take(sl)
        if backend == "device":
            ok[sl], P[sl], LAM[sl], MU[sl], *_ = device_exact_finish(P0, Ac, a[sl], r[sl])
            rest = np.flatnonzero(~ok[sl])
        if rest.size:      # a slice (views) where every economy of the chunk is left
            g = as_slice(lo + rest)
            ok[g], P[g], LAM[g], MU[g], _ = host_exact_finish(P0[rest], A.take(g), a[g], r[g])
        # optimal prices need not be unique: the lexicographically smallest ones, a choice
        # that depends on the economy alone (not on the solver, backend or batch)
        P[sl], dual[sl] = canonical_prices(P[sl], LAM[sl], MU[sl], Ac, a[sl], r[sl], ok[sl])
        if bar is not None:
            bar.update(hi - lo)
    return ok, P, LAM, MU, iters, dual


# ----------------------------------------------------------------------------------------
# public entry point
# ----------------------------------------------------------------------------------------
def _resolve_options(method: str, backend: str, exact: bool, L: int, rtol: Any, tol: Any,
                     finish: Any) -> tuple[str, str, float]:
    """Validate the method / backend / tolerance options (old names included)."""
    if method == "device":
        warn_deprecated('method="device"', 'method="auto" (or "smoothed")', stacklevel=4)
        method = "auto"
    check_choice(method, "method", ("auto", "smoothed", "lp", "envelope"))
    if finish is not None:
        warn_deprecated("finish=", "backend=", stacklevel=4)
        backend = finish
    check_choice(backend, "backend", ("auto", "device", "host"))
    if tol is not None:
        warn_deprecated("tol=", "rtol=", stacklevel=4)
        rtol = tol
    if isinstance(rtol, bool) or not isinstance(rtol, (int, float, np.floating)) \
            or not (np.isfinite(rtol) and rtol > 0):
        raise ValueError(f"rtol: must be a positive finite number, got {rtol!r}")
    if method == "envelope" and L != 1:
        raise ValueError(f"method: 'envelope' is the exact single-good method and needs "
                         f"L == 1 goods, got L = {L}")
    if method == "auto":
        method = "envelope" if (exact and L == 1) else "smoothed"
    if method in ("lp", "envelope") and backend == "device":
        raise ValueError(f"backend: method={method!r} runs on the host; use backend='auto' "
                         "or 'host', or method='smoothed' for the device")
    if backend == "auto":
        backend = "host" if jax.default_backend() == "cpu" else "device"
    return method, backend, float(rtol)


def convexified_equilibrium(economy: MenuEconomy, markup: ArrayLike = 0.0, reserve: ArrayLike = 0.0,
                            method: str = "auto", exact: bool = True, *,
                            rtol: float = 1e-6, backend: str = "auto",
                            chunk_size: int | None = None, tol: float | None = None,
                            finish: str | None = None, progress: bool | None = None,
                            **device_options: Any) -> ConvexifiedResult:
    """Equilibrium of the convexified economy, batched over economies and markups.

    Parameters
    ----------
    economy : MenuEconomy
        Batch shape ``B``.
    markup : array_like, optional
        Broadcastable to the batch: buyers face ``(1 + markup) p``.
    reserve : array_like, optional
        Broadcastable to ``B + (L,)``: auctioneer reserve per good (negative = auctioneer
        supply).  The result's leading axes are the broadcast of ``B``, ``markup.shape``
        and ``reserve.shape[:-1]``; e.g. a markup grid ``(G, 1)`` against ``B = (n,)``
        gives ``(G, n)`` results.
    method : {"auto", "smoothed", "lp", "envelope"}
        The algorithm (see the module docstring).  ``"device"`` is a deprecated alias of
        ``"auto"``.
    exact : bool
        With ``"smoothed"``, run the exact finish (vertex weights, exact prices).  With
        ``exact=False`` the smoothed device solution is returned (weights are logit choice
        probabilities made feasible by scaling buyers down; float32 by default; twice the
        default Newton steps per smoothing level unless ``steps`` is given).
    rtol : float
        Relative duality-gap tolerance of ``converged``.
    backend : {"auto", "device", "host"}
        Where the exact finish of ``"smoothed"`` runs (see the module docstring).  Both
        give a certified vertex optimum; they may pick different optimal vertices when the
        LP has several.
    chunk_size : int, optional
        Economies per device call of the smoothed solver.
    tol, finish
        Deprecated names of ``rtol`` and ``backend``.
    progress : bool, optional
        Show a progress bar over the economies on standard error (``None``: only when the
        environment variable ``JAXWALRAS_PROGRESS=1`` is set).
    **device_options
        ``solver`` ("newton" or "adam"), ``stages``, ``steps``, ``tau0``, ``tau_min``,
        ``learning_rate``, ``device_tol``: options of the smoothed device solver
        (:func:`jaxwalras.kernels.smoothed_dual.solve_smoothed_dual`).

    Returns
    -------
    ConvexifiedResult
        float64 numpy arrays when exact or ``method="lp"``.

    Raises
    ------
    TypeError
        ``economy`` is not a MenuEconomy, or an unknown device option.
    ValueError
        An unknown method or backend, a host method with ``backend="device"``,
        ``"envelope"`` with ``L > 1``, a non-positive ``rtol``, ``markup <= -1``, or
        shapes that do not broadcast.

    Notes
    -----
    With ``method="lp"`` or ``exact=True`` the weights are a VERTEX optimum: at most ``L``
    agents have more than one positive weight and every positive-weight option is in that
    agent's demand set at ``(1+markup) p`` (supply set at ``p``) up to round-off; check
    with :func:`jaxwalras.demand_gaps`.  Infeasible LPs (reserve larger than total
    capacity) give ``converged=False``, ``status=INFEASIBLE`` and NaN prices.

    The device solver runs on chunks of 16, 64, 256, ... economies (copies of a real one
    pad the last chunk; their results are dropped), never on the exact batch size, so a
    new batch size inside a bucket compiles nothing (see :func:`jaxwalras.warmup`).

    References
    ----------
    P. Milgrom and M. Watt, "Linear pricing mechanisms for markets without convexity",
    EC 2022, Sections 3-4.

    Examples
    --------
    >>> import jaxwalras as jw
    >>> ce = jw.convexified_equilibrium(jw.examples.milgrom_watt_table1(), method="lp")
    >>> round(float(ce.prices[0]), 2), bool(ce.converged)
    (0.5, True)
    """
    if not isinstance(economy, MenuEconomy):
        raise TypeError(f"economy: expected a jaxwalras.MenuEconomy, got {type(economy).__name__}")
    L = economy.n_goods
    method, backend, rtol = _resolve_options(method, backend, exact, L, rtol, tol, finish)
    _check_device_options(device_options)
    batch, a, r = broadcast_inputs(economy, markup, reserve)
    A = economy.host_arrays(batch, flat=True)
    B = A.n_markets
    af, rf = a.reshape(B), r.reshape(B, L)
    dual = None
    with Progress(B, "convexified equilibria", unit="economy", enabled=progress) as bar:
        if method == "lp":
            ok, P, LAM, MU, it = solve_menu_lps(A, af, rf)
            bar.update(B)
        elif method == "envelope":
            ok, P, LAM, MU, it = convexified_one_good(A, af, rf)
            bar.update(B)
        elif exact:
            ok, P, LAM, MU, it, dual = _smoothed_then_exact(
                A, af, rf, exact=True, chunk_size=chunk_size, backend=backend, bar=bar,
                **device_options)
        else:
            ok, P, LAM, MU, it, dual = _smoothed_then_exact(
                A, af, rf, exact=False, chunk_size=chunk_size, backend=backend, **device_options)
            bar.update(B)
    if method == "lp":
        # optimal prices need not be unique: return the lexicographically smallest ones, a
        # choice that depends on the economy alone (not on the solver, backend or batch)
        P, dual = canonical_prices(P, LAM, MU, A, af, rf, ok)
    if dual is None:
        dual = dual_value(P, A, af, rf)
    else:      # g(P) is known where ``ok``
        m = np.flatnonzero(~np.isfinite(dual))
        if m.size:
            dual[m] = dual_value(P[m], A.take(m), af[m], rf[m])
    primal, infeas = primal_and_infeasibility(LAM, MU, A, af, rf)
    gap = dual - primal
    rel = rel_gap(gap, dual, primal, A, af)
    # both tests relative to the economy's own scales: the duality gap to its values, the
    # excess demand of each good to the quantities of that good the weights move
    certified = (rel <= rtol) & (rel_infeasibility(LAM, MU, A, rf) <= 1e-9)
    conv = ok & certified
    status = np.where(conv, Status.OK, np.where(ok, Status.NOT_CERTIFIED, Status.SOLVER_FAILED))
    for b in np.flatnonzero(~ok):      # tell infeasible economies from solver failures
        if not menu_lp_feasible(A.take(b), rf[b]):
            status[b] = Status.INFEASIBLE
    P = np.where(ok[:, None], P, np.nan)
    shape = lambda z: z.reshape(batch + z.shape[1:])  # noqa: E731
    return ConvexifiedResult(
        prices=shape(P), buyer_prices=shape(P * (1.0 + af[:, None])),
        buyer_weights=shape(LAM), seller_weights=shape(MU), dual_value=shape(dual),
        primal_value=shape(primal), gap=shape(gap), rel_gap=shape(rel),
        converged=shape(conv), iterations=shape(np.asarray(it, np.int64)), markup=a,
        reserve=r, infeasibility=shape(infeas), status=shape(status.astype(np.int64)))
