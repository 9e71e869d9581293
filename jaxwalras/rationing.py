"""The rationing mechanism for economies with concave buyers (Milgrom and Watt, 2022).

One price ``p`` for everyone; buyers may be rationed.  The convexified economy with ``R``
units of auctioneer SUPPLY fixes ``p``; the sellers are rounded to options in their supply
sets with production at most the buyers' convexified demand (Shapley--Folkman rounding of
the sellers only); the buyers' concave (convexified) allocation of that fixed production
is re-optimised; everyone pays ``p``.  The total welfare loss is ``O(1/N)`` under one-sided
convexity and strong monotonicity, at the price of small violations of buyers'
individual rationality (the rationing losses, reported per buyer).
"""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from .typing import ArrayLike
from ._progress import Progress
from ._validation import check_choice, warn_deprecated
from .convexified import convexified_equilibrium
from .economy import MenuArrays, MenuEconomy
from .mechanisms import flat_economy, reserve_levels
from .menu_host import outcome_check
from .rounding import round_flat
from .status import Status
from .welfare import bound_terms

__all__ = ["RationingResult", "rationing_mechanism"]


class RationingResult(NamedTuple):
    """Outcome of :func:`rationing_mechanism` (leading axes = batch axes).

    Attributes
    ----------
    prices : ndarray, shape (..., L)
        The single price everyone pays.
    buyer_allocation : ndarray, shape (..., N, L)
        Each buyer's (convexified) consumption.
    buyer_weights : ndarray, shape (..., N, Kb)
        The buyer's mixture over its menu (concave buyers).
    seller_choice : ndarray of int, shape (..., F)
        Each seller's pure option (in its supply set at ``p``).
    excess_supply : ndarray, shape (..., L)
        ``sum y - sum x`` (>= 0).
    budget_surplus : ndarray, shape (...)
        ``p.sum x - p.sum y`` (0 = exact budget balance).
    buyer_losses : ndarray, shape (..., N)
        Rationing loss of each buyer at ``p`` (best surplus minus the surplus of its
        allocation).
    welfare : ndarray, shape (...)
        ``sum_n sum_k w V - sum c`` (concave buyer values).
    welfare_bound : ndarray, shape (...)
        Certificate ``S*_convex-buyers - welfare <= welfare_bound``.
    reserve : ndarray, shape (..., L)
        Auctioneer supply used in the convexified LP.
    converged : ndarray of bool, shape (...)
        The float64 certificate verified: every seller in its supply set at ``p`` (to
        ``1e-9`` of its own costs and receipts), production covers the buyers' allocation
        in every good (to ``1e-9`` of the quantities), prices ``>= 0``, and the LPs were
        solved.  Buyers are rationed by design: their losses are in ``buyer_losses``.
    status : ndarray of int, shape (...)
        :class:`jaxwalras.Status`: ``OK``, ``NO_SOLUTION`` (no reserve level gave a
        feasible seller rounding), ``SOLVER_FAILED`` (the buyers' re-optimisation failed)
        or ``NOT_CERTIFIED``.
    iterations : ndarray of int, shape (...)
        Reserve levels tried.
    """
    prices: Any
    buyer_allocation: Any
    buyer_weights: Any
    seller_choice: Any
    excess_supply: Any
    budget_surplus: Any
    buyer_losses: Any
    welfare: Any
    welfare_bound: Any
    reserve: Any
    converged: Any
    status: Any
    iterations: Any


def rationing_mechanism(economy: MenuEconomy, reserve: ArrayLike = "adaptive", *,
                        backend: str = "auto", max_combinations: int = 4096,
                        method: str | None = None, progress: bool | None = None,
                        **solver_options: Any) -> RationingResult:
    """The rationing mechanism (one price ``p`` for everyone, buyers may be rationed).

    1. Convexified equilibrium with ``R`` units of auctioneer SUPPLY per good
       (``convexified_equilibrium(economy, reserve=-R)``).
    2. Round the sellers only, to options in their supply sets at ``p``, so that production
       does not exceed the buyers' convexified demand in any priced good (largest revenue).
    3. Re-optimise the buyers' concave (convexified) allocation of the fixed production:
       ``max sum lam V  s.t.  sum X lam <= sum y`` (again through ``convexified_equilibrium``,
       with one aggregate seller offering the fixed production at cost 0).
    4. Everyone pays ``p``; buyers' rationing losses at ``p`` are reported.

    Parameters
    ----------
    economy : MenuEconomy
        Batch shape ``B``.
    reserve : {"adaptive", "none", "worst_case"} or array_like
        ``"adaptive"`` (default; ``s * L * delta_sellers`` for ``s`` in 0, 1/8, 1/4, 1/2, 1,
        the first level at which step 2 is feasible), ``"none"``, ``"worst_case"``, or an
        array broadcastable to ``B + (L,)`` (auctioneer supply ``>= 0``).
    backend : {"auto", "device", "host"}
        ``"device"``/``"auto"``: :func:`jaxwalras.convexified_equilibrium` with its default
        method; ``"host"``: its HiGHS method (``method="lp"``).
    max_combinations : int
        Rounding enumeration cap before the exact MILP fallback.
    method : str, optional
        Deprecated: ``"device"`` or ``"lp"`` (now ``backend="device"`` / ``"host"``).
    progress : bool, optional
        Show a progress bar on standard error (one step per reserve level tried, then the
        buyers' step; ``None``: only when the environment variable
        ``JAXWALRAS_PROGRESS=1`` is set).
    **solver_options
        Passed to :func:`jaxwalras.convexified_equilibrium`.

    Returns
    -------
    RationingResult

    References
    ----------
    P. Milgrom and M. Watt, "Linear pricing mechanisms for markets without convexity",
    EC 2022 (rationing mechanism).

    Examples
    --------
    >>> import jaxwalras as jw
    >>> ra = jw.rationing_mechanism(jw.examples.milgrom_watt_table1())
    >>> float(ra.prices[0]), int(ra.seller_choice[0]), abs(float(ra.budget_surplus)) < 1e-9
    (0.5, 3, True)
    """
    if method is not None:
        check_choice(method, "method", ("device", "lp"))
        backend = "host" if method == "lp" else "device"
        warn_deprecated(f'method="{method}"', f'backend="{backend}"')
    check_choice(backend, "backend", ("auto", "device", "host"))
    cmethod = "lp" if backend == "host" else "auto"
    eco, batch, B = flat_economy(economy)
    A = eco.host_arrays()
    X, V, bm, Y, C, sm = A
    L = eco.n_goods
    levels = reserve_levels(reserve, eco, batch, B, sellers_only=True)
    p = np.zeros((B, L))
    cs = np.zeros(C.shape[:2], np.int64)
    Rused = np.zeros((B, L))
    done = np.zeros(B, bool)
    tried = np.zeros(B, np.int64)
    todo = np.arange(B)
    with Progress(len(levels) + 1, "rationing", unit="step", enabled=progress) as bar:
        for R in levels:
            if todo.size == 0:
                break
            tried[todo] += 1
            sub = eco[todo]
            ce = convexified_equilibrium(sub, markup=0.0, reserve=-R[todo], method=cmethod,
                                         progress=False, **solver_options)
            pp = np.nan_to_num(np.asarray(ce.prices, float))
            _, cs_, feas, _, _, _, _ = round_flat(
                A.take(todo), pp, np.zeros(todo.size), np.asarray(ce.buyer_weights, float),
                np.asarray(ce.seller_weights, float), sellers_only=True,
                max_combinations=max_combinations)
            ok = feas & np.asarray(ce.converged)
            g = todo[ok]
            p[g], cs[g], Rused[g], done[g] = pp[ok], cs_[ok], R[todo][ok], True
            todo = todo[~ok]
            bar.update(unresolved=int(todo.size))
        bar.set_total(int(tried.max(initial=0)) + 1)   # levels actually tried + step 3
        # step 3: buyers re-optimised for the fixed production (one aggregate zero-cost seller)
        ytot = np.take_along_axis(Y, cs[..., None, None], 2)[:, :, 0, :].sum(1)      # (B, L)
        Y2 = np.zeros((B, 1, 2, L))
        Y2[:, 0, 1] = ytot
        eco2 = MenuEconomy.from_arrays(MenuArrays(X, V, bm, Y2, np.zeros((B, 1, 2)),
                                                  np.ones((B, 1, 2), bool)))
        ce2 = convexified_equilibrium(eco2, markup=0.0, reserve=0.0, method=cmethod,
                                      progress=False, **solver_options)
        bar.update()
    wb = np.asarray(ce2.buyer_weights, float)
    ok2 = np.asarray(ce2.converged)
    ws = np.zeros(C.shape)
    np.put_along_axis(ws, cs[..., None], 1.0, -1)
    wbnd = bound_terms(A, p, wb, ws)
    xb = np.einsum("bnk,bnkl->bnl", wb, X)
    budget = 0.0 - wbnd.revenue_deficit
    # the final certificate, in float64 and independent of the search: sellers in their
    # supply sets at p (each against its own scale), production covering the buyers'
    # allocation in every good, prices non-negative; rationing losses are reported
    chk = outcome_check(A, np.zeros(B), p, None, cs, buyer_weights=wb)
    conv = done & ok2 & chk.sellers_ok & chk.feasible & chk.prices_ok
    status = np.where(conv, Status.OK, np.where(~done, Status.NO_SOLUTION, np.where(
        ~ok2, Status.SOLVER_FAILED, Status.NOT_CERTIFIED))).astype(np.int64)
    sh = lambda z: np.asarray(z).reshape(batch + np.shape(z)[1:])  # noqa: E731
    return RationingResult(
        prices=sh(p), buyer_allocation=sh(xb), buyer_weights=sh(wb), seller_choice=sh(cs),
        excess_supply=sh(wbnd.excess_supply), budget_surplus=sh(budget),
        buyer_losses=sh(wbnd.buyer_losses), welfare=sh(wbnd.welfare),
        welfare_bound=sh(wbnd.bound), reserve=sh(Rused), converged=sh(conv),
        status=sh(status), iterations=sh(tried))
