"""The markup mechanism for non-convex economies (Milgrom and Watt, 2022).

A markup outcome ``(alpha, p, omega)``: sellers choose from their supply sets at ``p``,
buyers from their demand sets at ``(1+alpha) p``, production covers consumption in every
good and buyers pay at least what sellers receive, ``(1+alpha) p.sum x >= p.sum y``.  The
mechanism looks for the least markup ``alpha >= 0`` with an outcome.

* **One good** (``method="scan"``, chosen by ``"auto"`` when ``L = 1``): the least markup
  over ALL pure outcomes, exactly, by the piece scan of :mod:`jaxwalras.markup_scan`
  (Milgrom and Watt's Table-1 class takes the sort-based fast path
  :func:`jaxwalras.single_good.table1_markup`, the same minimum).
* **Several goods** (``method="grid"``): convexify at a grid of markups, round the vertex
  solution (Shapley--Folkman) and re-price (:mod:`jaxwalras.markup_grid`); budget
  feasibility is not monotone in the markup, so the answer is the least feasible markup
  the search evaluated, not a proven minimum.

Whatever the method, the returned outcome is re-verified in float64 on the host with the
definition above (:func:`jaxwalras.menu_host.outcome_check`: every agent against its own
scale, every good against the quantities traded, the budget against the payments), and
only that certificate sets ``converged`` and ``status``.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from .typing import ArrayLike
from ._progress import Progress
from ._validation import check_choice, warn_deprecated
from .economy import MenuArrays, MenuEconomy
from .highs import menu_lp_feasible
from .markup_grid import prepare, search
from .markup_scan import least_markup_one_good
from .mechanisms import flat_economy, reserve_levels
from .menu_host import CERT_RTOL, outcome_check
from .single_good import table1_markup, table1_structure
from .status import Status
from .welfare import bound_terms

__all__ = ["MarkupResult", "markup_mechanism"]


class MarkupResult(NamedTuple):
    """Outcome of :func:`markup_mechanism` (leading axes = batch axes).

    Attributes
    ----------
    markup : ndarray, shape (...)
        The markup ``alpha >= 0`` of the outcome (``inf`` where none was found within
        ``max_markup``: ``status`` ``NO_SOLUTION``, the other fields then describe the
        no-trade outcome at price 0).
    prices : ndarray, shape (..., L)
        Seller prices ``p``.
    buyer_prices : ndarray, shape (..., L)
        ``(1 + alpha) p``.
    buyer_choice : ndarray of int, shape (..., N)
        Each buyer's option (in its demand set at buyer prices).
    seller_choice : ndarray of int, shape (..., F)
        Each seller's option (in its supply set at ``p``).
    excess_supply : ndarray, shape (..., L)
        ``sum y - sum x >= 0``.
    budget_surplus : ndarray, shape (...)
        ``(1 + alpha) p.sum x - p.sum y >= 0``.
    welfare : ndarray, shape (...)
        ``sum v - sum c`` of the outcome.
    welfare_bound : ndarray, shape (...)
        Certificate ``S* - welfare <= welfare_bound`` (bound-form first welfare theorem at
        the seller prices ``p``).
    reserve : ndarray, shape (..., L)
        Grid: the auctioneer reserve of the convexified LP that produced the outcome.
        Scan: the set-aside the outcome keeps (``sum y - sum x >= reserve``).
    certified_minimal : ndarray of bool, shape (...)
        ``converged`` and the markup is proven to be the least markup of ANY outcome
        (``markup == markup_lower``).
    markup_lower : ndarray, shape (...)
        A certified lower bound on the least markup of any markup outcome: for one good
        the exact least markup (or, where a tie set was too large to enumerate, the
        minimum with those ties relaxed to intervals; ``max_markup`` where none exists
        within it); for several goods ``0`` (the grid proves nothing below its answer).
    converged : ndarray of bool, shape (...)
        The float64 certificate verified every condition of the definition.
    status : ndarray of int, shape (...)
        :class:`jaxwalras.Status`: ``OK``; ``NO_SOLUTION`` (no outcome with a markup
        ``<= max_markup``: proven for one good, not found by the grid for several);
        ``INFEASIBLE`` (the reserve exceeds what the sellers can produce);
        ``SOLVER_FAILED`` (the convexified LP failed); ``NOT_CERTIFIED`` (the
        certificate rejected the outcome the search returned).
    iterations : ndarray of int, shape (...)
        Markups evaluated (grid), 1 (scan).
    """
    markup: Any
    prices: Any
    buyer_prices: Any
    buyer_choice: Any
    seller_choice: Any
    excess_supply: Any
    budget_surplus: Any
    welfare: Any
    welfare_bound: Any
    reserve: Any
    certified_minimal: Any
    markup_lower: Any
    converged: Any
    status: Any
    iterations: Any



def _finish_markup(A: MenuArrays, alpha, p, cb, cs, R, set_aside, certified, lower, status,
                   evals, batch) -> MarkupResult:
    """Certify the outcomes in float64 (:func:`outcome_check`) and assemble the result.

    ``status`` is the search's verdict; ``OK`` survives only where the certificate verifies
    every condition of the definition."""
    X, V, bm, Y, C, sm = A
    none = status == Status.NO_SOLUTION
    # no outcome: the no-trade outcome at price 0, markup inf
    alpha = np.where(none, np.inf, alpha)
    p = np.where(none[:, None], 0.0, p)
    cb = np.where(none[:, None], 0, cb)
    cs = np.where(none[:, None], 0, cs)
    a_eval = np.where(np.isfinite(alpha), alpha, 0.0)
    chk = outcome_check(A, a_eval, p, cb, cs, set_aside=set_aside)
    px = np.einsum("bl,bl->b", p, chk.x)
    py = np.einsum("bl,bl->b", p, chk.y)
    # round-off can leave a budget "deficit" of an ulp at an exactly binding markup: raise
    # alpha by a few ulps so that (1+alpha) p.x >= p.y holds exactly (relative nudge only)
    nudged = False
    for _ in range(4):
        short = py - (1.0 + a_eval) * px
        fix = (short > 0) & (px > 0) & (short <= 1e-12 * py) & ~none
        if not fix.any():
            break
        nudged = True
        a_eval = np.where(fix, np.nextafter(a_eval + short / np.where(px > 0, px, 1.0), np.inf),
                          a_eval)
    if nudged:
        chk = outcome_check(A, a_eval, p, cb, cs, set_aside=set_aside)
    alpha = np.where(none, np.inf, a_eval)
    beta = (1.0 + a_eval)[:, None] * p
    wb = np.zeros(V.shape)
    np.put_along_axis(wb, cb[..., None], 1.0, -1)
    ws = np.zeros(C.shape)
    np.put_along_axis(ws, cs[..., None], 1.0, -1)
    wbnd = bound_terms(A, p, wb, ws)
    ok = (chk.buyers_ok & chk.sellers_ok & chk.feasible & chk.budget_ok & chk.prices_ok
          & (status == Status.OK))
    status = np.where((status == Status.OK) & ~ok, Status.NOT_CERTIFIED, status)
    lower = np.where(ok | none, lower, 0.0)
    cert_min = certified & ok & (1.0 + alpha <= (1.0 + lower) * (1.0 + 1e-12))
    lower = np.where(cert_min, alpha, lower)     # the same number, after the ulp nudge
    sh = lambda z: np.asarray(z).reshape(batch + np.shape(z)[1:])  # noqa: E731
    return MarkupResult(
        markup=sh(alpha), prices=sh(p), buyer_prices=sh(beta), buyer_choice=sh(cb),
        seller_choice=sh(cs), excess_supply=sh(chk.y - chk.x), budget_surplus=sh(chk.budget),
        welfare=sh(wbnd.welfare), welfare_bound=sh(wbnd.bound), reserve=sh(R),
        certified_minimal=sh(cert_min), markup_lower=sh(lower), converged=sh(ok),
        status=sh(status.astype(np.int64)), iterations=sh(evals.astype(np.int64)))


def _resolve(method: str, backend: str, exact_single_good: Any) -> tuple[str, str]:
    if method in ("device", "lp"):
        new = "device" if method == "device" else "host"
        warn_deprecated(f'method="{method}"', f'backend="{new}"', stacklevel=4)
        method, backend = "auto", new
    check_choice(method, "method", ("auto", "grid", "scan"))
    check_choice(backend, "backend", ("auto", "device", "host"))
    if exact_single_good is not None:
        warn_deprecated("exact_single_good=", 'method="grid" (or "scan")', stacklevel=4)
        if not exact_single_good and method == "auto":
            method = "grid"
    return method, ("device" if backend == "auto" else backend)


def _scan_set_aside(reserve: Any, eco: MenuEconomy, batch: tuple[int, ...], B: int
                    ) -> np.ndarray:
    """The set-aside ``(B, 1)`` of the one-good scan: 0 for ``"adaptive"`` / ``"none"``
    (more set-aside never lowers the least markup), ``L * delta`` for ``"worst_case"``,
    or the array given."""
    if isinstance(reserve, str) and reserve in ("adaptive", "none"):
        reserve_levels(reserve, eco, batch, B, sellers_only=False)       # validates
        return np.zeros((B, 1))
    return reserve_levels(reserve, eco, batch, B, sellers_only=False)[-1]


def _scan(A: MenuArrays, R: np.ndarray, max_markup: float, batch) -> MarkupResult:
    """Exact least markup of a flat one-good batch (fast path for the Table-1 class)."""
    B, N = A.V.shape[:2]
    F = A.C.shape[1]
    alpha = np.full(B, np.inf)
    p = np.zeros((B, 1))
    cb = np.zeros((B, N), np.int64)
    cs = np.zeros((B, F), np.int64)
    exact = np.zeros(B, bool)
    lower = np.full(B, float(max_markup))
    found = np.zeros(B, bool)
    todo = np.arange(B)
    struct = table1_structure(A) if not np.any(R > 0) else None
    if struct is not None:
        a_, p_, cb_, cs_, cert_ = table1_markup(A, struct)
        done = cert_ & np.isfinite(a_) & (a_ <= max_markup)
        alpha[done], p[done], cb[done], cs[done] = a_[done], p_[done], cb_[done], cs_[done]
        exact[done] = found[done] = True
        lower[done] = a_[done]
        todo = np.nonzero(~done)[0]
    if todo.size:
        r = least_markup_one_good(A.take(todo), R[todo, 0], float(max_markup))
        alpha[todo], p[todo], cb[todo], cs[todo] = r.alpha, r.p, r.cb, r.cs
        exact[todo], found[todo] = r.exact, r.found
        lower[todo] = np.where(r.found, r.lower, np.minimum(r.lower, max_markup))
    status = np.where(found, Status.OK, Status.NO_SOLUTION)
    return _finish_markup(A, alpha, p, cb, cs, R, R, exact, lower, status,
                          np.ones(B, np.int64), batch)


def markup_mechanism(economy: MenuEconomy, reserve: ArrayLike = "adaptive", *,
                     method: str = "auto", backend: str = "auto", n_grid: int = 16,
                     max_markup: float = 4.0, min_markup: float = 1e-4,
                     refine_rounds: int = 4, n_refine: int = 4,
                     max_combinations: int = 4096, exact_single_good: bool | None = None,
                     progress: bool | None = None, **solver_options: Any) -> MarkupResult:
    """The markup mechanism: the least markup ``alpha >= 0`` with a markup outcome.

    A markup outcome ``(alpha, p, omega)`` has every seller in its supply set at ``p``,
    every buyer in its demand set at ``(1+alpha) p``, production covering consumption in
    every good and no budget deficit, ``(1+alpha) p.sum x >= p.sum y`` (Milgrom and Watt,
    2022).

    * One good (``method="scan"``; ``"auto"`` picks it when ``L = 1``): the least markup
      over ALL pure outcomes, exactly (:mod:`jaxwalras.markup_scan`), reported with
      ``certified_minimal=True`` and ``markup_lower == markup``.  Only where a tie among
      many agents is too large to enumerate is the markup found possibly not the least;
      then ``markup_lower`` is a certified lower bound below it.
    * Several goods (``method="grid"``): solve the convexified economy at markup ``alpha``
      with auctioneer demand ``R`` (the LP of ``convexified_equilibrium(economy, alpha,
      reserve=R)``), round its ``<= L`` mixing agents to options in their demand/supply
      sets so that production covers consumption (largest budget surplus), re-price
      candidate roundings whose LP prices leave a deficit (the LP's optimal prices need
      not be unique), over a grid of markups plus refinement.  Budget feasibility is not
      monotone in ``alpha``: the answer is the least feasible markup evaluated, certified
      minimal only when it is 0.

    Parameters
    ----------
    economy : MenuEconomy
        Batch shape ``B``.
    reserve : {"adaptive", "none", "worst_case"} or array_like
        Grid: ``"adaptive"`` (default: try ``s * L * delta`` for ``s`` in 0, 1/8, 1/4,
        1/2, 1, stopping at the first level with a feasible markup, Milgrom and Watt's
        practical set-aside), ``"none"`` (0), ``"worst_case"`` (``L * delta``, which
        makes every rounding feasible, see :func:`jaxwalras.worst_case_reserve`), or an
        array broadcastable to ``B + (L,)`` (auctioneer demand per good, ``>= 0``).
        Scan: the set-aside the outcome must keep, ``sum y - sum x >= R``: 0 for
        ``"adaptive"`` and ``"none"`` (a set-aside never lowers the least markup),
        ``L * delta`` for ``"worst_case"``, or the array.
    method : {"auto", "grid", "scan"}
        ``"grid"``: ``alpha = 0`` and a geometric grid of ``n_grid`` markups in
        ``[min_markup, max_markup]``, all evaluated in ONE batched call (markups x
        economies), then ``refine_rounds`` linear sub-grids of ``n_refine`` points
        between the last infeasible and the first feasible point.  ``"scan"``: the exact
        one-good method (``L = 1`` only).  ``"auto"``: ``"scan"`` for one good, else
        ``"grid"``.
    backend : {"auto", "device", "host"}
        Where the grid's convexified LPs are solved: ``"device"`` (default for ``"auto"``:
        economies with a small LP tableau, ``(N+F+L) (N Kb + F Ks + L + 1) <= 4096``
        cells, by the batched dense dual simplex in JAX, certified in float64, HiGHS for
        the rare uncertified ones; larger ones by ``convexified_equilibrium``) or
        ``"host"`` (HiGHS, one LP at a time).  The scan runs on the host either way.
    n_grid, max_markup, min_markup, refine_rounds, n_refine : markup search grid; no
        outcome with a markup above ``max_markup`` is accepted (``NO_SOLUTION``).
    max_combinations : int
        Rounding enumeration cap before the exact MILP fallback (grid).
    exact_single_good : bool, optional
        Deprecated: ``False`` means ``method="grid"``.
    progress : bool, optional
        Show a progress bar on standard error (grid: one step per reserve level, with the
        number of economies still searching; ``None``: only when the environment variable
        ``JAXWALRAS_PROGRESS=1`` is set).
    **solver_options
        Options of :func:`jaxwalras.convexified_equilibrium`'s smoothed device solver
        (grid); given, they select it for every size.

    Returns
    -------
    MarkupResult
        ``converged`` / ``status`` come only from the final float64 certificate of the
        definition (tolerance ``1e-9`` relative to each agent's own values and payments,
        to the quantities traded and to the payments), computed independently of the
        search.

    Raises
    ------
    TypeError, ValueError
        Bad economy, options or reserve (the message names the argument); ``"scan"``
        with ``L > 1``.

    References
    ----------
    P. Milgrom and M. Watt, "Linear pricing mechanisms for markets without convexity",
    EC 2022 (markup mechanisms; Table 1).

    Examples
    --------
    >>> import jaxwalras as jw
    >>> mk = jw.markup_mechanism(jw.examples.milgrom_watt_table1())
    >>> float(mk.prices[0]), round(float(mk.buyer_prices[0]), 3), int(mk.seller_choice[0])
    (0.5, 0.629, 4)
    >>> bool(mk.certified_minimal), round(float(mk.markup_lower), 4)
    (True, 0.2579)
    """
    method, backend = _resolve(method, backend, exact_single_good)
    if not isinstance(n_grid, (int, np.integer)) or n_grid < 2:
        raise ValueError(f"n_grid: must be an integer >= 2, got {n_grid!r}")
    if not isinstance(n_refine, (int, np.integer)) or n_refine < 1:
        raise ValueError(f"n_refine: must be a positive integer, got {n_refine!r}")
    if not isinstance(refine_rounds, (int, np.integer)) or refine_rounds < 0:
        raise ValueError(f"refine_rounds: must be a non-negative integer, got {refine_rounds!r}")
    for nm, val in (("min_markup", min_markup), ("max_markup", max_markup)):
        if isinstance(val, bool) or not isinstance(val, (int, float, np.integer, np.floating)):
            raise ValueError(f"{nm}: must be a number, got {val!r}")
    if not (np.isfinite(max_markup) and np.isfinite(min_markup) and 0 < min_markup < max_markup):
        raise ValueError(f"min_markup/max_markup: need 0 < min_markup < max_markup, both "
                         f"finite, got {min_markup!r}, {max_markup!r}")
    if not isinstance(max_combinations, (int, np.integer)) or max_combinations < 1:
        raise ValueError(f"max_combinations: must be a positive integer, got {max_combinations!r}")
    eco, batch, B = flat_economy(economy)
    A = eco.host_arrays()
    L = eco.n_goods
    if method == "scan" and L != 1:
        raise ValueError(f"method: 'scan' is the exact one-good method and needs L == 1 "
                         f"goods, got L = {L}; use method='grid' or 'auto'")
    if method == "auto":
        method = "scan" if L == 1 else "grid"
    if method == "scan":
        return _scan(A, _scan_set_aside(reserve, eco, batch, B), float(max_markup), batch)
    levels = reserve_levels(reserve, eco, batch, B, sellers_only=False)   # validates
    D = prepare(A)
    alpha = np.zeros(B)
    p = np.zeros((B, L))
    cb = np.zeros(A.V.shape[:2], np.int64)
    cs = np.zeros(A.C.shape[:2], np.int64)
    Rused = np.zeros((B, L))
    cert = np.zeros(B, bool)
    evals = np.zeros(B, np.int64)
    status = np.full(B, Status.NO_SOLUTION)
    lp_seen = np.zeros(B, bool)       # some reserve level had a solvable LP
    todo = np.arange(B)
    with Progress(len(levels), "markup search", unit="level", enabled=progress) as bar:
        for R in levels:
            if todo.size == 0:
                break
            bar.update(0, searching=int(todo.size))
            found, best, c_, _, lp_ok0, ne = search(
                D, todo, R, backend, int(n_grid), float(max_markup), float(min_markup),
                int(refine_rounds), int(n_refine), int(max_combinations), solver_options)
            evals[todo] += ne
            g = todo[found]
            alpha[g] = best.alpha[found]
            p[g] = best.p[found]
            cb[g] = best.cb[found]
            cs[g] = best.cs[found]
            Rused[g] = R[g]
            cert[g] = c_[found]
            status[g] = Status.OK
            nf = todo[~found]
            lp_seen[todo[lp_ok0]] = True
            for b in nf[~lp_ok0[~found] & ~lp_seen[nf]]:   # no LP solved at any level so far
                status[b] = (Status.SOLVER_FAILED if menu_lp_feasible(A.take(b), R[b])
                             else Status.INFEASIBLE)
            todo = nf
            bar.update(searching=int(todo.size))
    # the grid proves nothing below its answer: the certified lower bound is 0 (= the
    # markup itself where that is 0)
    lower = np.zeros(B)
    return _finish_markup(A, alpha, p, cb, cs, Rused, 0.0, cert, lower, status, evals, batch)
