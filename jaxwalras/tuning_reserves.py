"""Tuning of the auctioneer's reserve over a distribution of economies.

A *reserve policy* sets the reserve of economy ``e`` to a multiple of its worst-case
reserve,

.. math:: R_e = s \\, \\bar R_e, \\qquad s \\ge 0,

or one scale per good (``rule="per_good"``, :math:`R_{e,l} = s_l \\bar R_{e,l}`),
where :math:`\\bar R_{e,l} = L \\delta_{e,l}` (:func:`jaxwalras.worst_case_reserve`; for
the rationing mechanism over the sellers' menus) makes every Shapley--Folkman rounding
feasible (Milgrom and Watt, 2022; Starr, 1969).  ``s = 1`` is that guarantee, ``s = 0`` no
reserve; the scale ``s`` is unit-free (the reserve is in each good's own units), so one
``s`` serves economies of any size and money scale.  Both mechanisms trade feasibility
against welfare through ``s``:

* ``mechanism="rationing"`` (:func:`jaxwalras.rationing_mechanism` with ``reserve=R``):
  ``R`` is auctioneer SUPPLY in the convexified economy.  A larger ``R`` leaves more room
  for the sellers' rounding (the mechanism runs in more economies), but the sellers
  produce less and the buyers are rationed more.
* ``mechanism="markup"`` (:func:`jaxwalras.markup_mechanism` with ``reserve=R``): ``R`` is
  a set-aside the rounded outcome must keep.  A larger ``R`` makes rounding feasible at
  lower markups, but the set-aside must be paid for.  (For one good the exact least
  markup never falls with a set-aside, so there the best ``s`` is 0.)

An economy *runs* at ``s`` when the mechanism returns a certified outcome
(``status == OK``); its welfare and revenue are the mechanism's, else 0.

The tuner (``method="gradient"``, rationing mechanism) minimises with optax a smooth
surrogate on a training sample:

* welfare of economy ``e`` at ``s``: the entropic-smoothed equilibrium
  (:func:`jaxwalras.smoothed_equilibrium`) with auctioneer supply ``s R_e`` gives the
  sellers' smoothed production ``y`` and cost; the buyers' smoothed value of consuming
  exactly ``y`` comes from a second smoothed equilibrium in which one zero-cost seller
  offers ``y``; the surrogate welfare is that value minus the cost (derivatives by
  implicit differentiation through both);
* running: ``sigmoid((s - s*_e) / (T m) - 3)``, where ``s*_e`` is the least scale of
  :data:`RESERVE_THRESHOLD_GRID` at which the exact mechanism runs (1 where ``s*_e = 0``,
  0 where it never runs), ``m`` the median positive ``s*`` and ``T`` a temperature
  annealed geometrically; per good, the product of such ramps over the goods at the
  per-good thresholds of :func:`reserve_thresholds` (``per_good=True``); the constraint
  ``P(runs) >= min_feasibility`` is handled as in :func:`jaxwalras.tune_markups`.

Then ``s`` is evaluated EXACTLY on the training sample and on a held-out sample.
``method="grid"`` (either mechanism, one scale) evaluates every grid scale exactly and
keeps the best.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .typing import ArrayLike, KeyLike
from ._validation import check_choice
from .economy import MenuEconomy
from .markup import markup_mechanism
from .rationing import rationing_mechanism
from .rounding import worst_case_reserve
from .smoothed import smoothed_equilibrium
from .status import Status
from ._tuner import _SHIFT, _constrained, _draw, _flat, _optimise

__all__ = ["ReserveEvaluation", "ReserveTuningResult", "evaluate_reserves", "reserve_thresholds",
           "tune_reserves", "RESERVE_THRESHOLD_GRID"]

#: scales ``s`` (multiples of the worst-case reserve) at which :func:`reserve_thresholds`
#: looks for each economy's least running scale
RESERVE_THRESHOLD_GRID = np.concatenate([[0.0], np.geomspace(1e-3, 1.0, 40)])

_MECHANISMS = ("rationing", "markup")


class ReserveEvaluation(NamedTuple):
    """Exact evaluation of a reserve scale on a sample (:func:`evaluate_reserves`).

    Attributes
    ----------
    objective : float
        By ``objective``: mean welfare, mean revenue, the fraction of economies where the
        mechanism runs, minus the (mean) scale, or minus the mean markup where it runs (``-inf``
        where it runs nowhere).
    feasibility : float
        Fraction of economies where the mechanism runs (certified outcome).
    welfare, revenue : float
        Means over the sample (0 where the mechanism does not run).
    markup : float
        Mean markup where the mechanism runs (0 for the rationing mechanism; NaN if it runs
        nowhere).
    scale : float or ndarray, shape (L,)
        The reserve scale ``s`` (one per good for per-good scales).
    feasible : ndarray of bool, shape (B,)
    economy_welfare, economy_revenue, economy_markup : ndarray, shape (B,)
    economy_reserves : ndarray, shape (B, L)
        ``s`` times each economy's worst-case reserve.
    converged : ndarray of bool, shape (B,)
        The mechanism's float64 certificate verified that economy's outcome.
    status : ndarray of int, shape (B,)
        :class:`jaxwalras.Status` of the exact mechanism per economy.
    iterations : ndarray of int, shape (B,)
        The exact mechanism's iterations per economy.
    """

    objective: float
    feasibility: float
    welfare: float
    revenue: float
    markup: float
    scale: Any
    feasible: Any
    economy_welfare: Any
    economy_revenue: Any
    economy_markup: Any
    economy_reserves: Any
    converged: Any
    status: Any
    iterations: Any


class ReserveTuningResult(NamedTuple):
    """Result of :func:`tune_reserves`.

    Attributes
    ----------
    params : dict
        ``{"scale": s}`` (``rule="per_good"``: an ``(L,)`` array).
    train : ReserveEvaluation
        Exact evaluation on the training sample.
    heldout : ReserveEvaluation or None
        Exact evaluation on the held-out sample.
    trajectory : dict of ndarray
        Per optimiser step (``"gradient"``) or grid point (``"grid"``): ``scale``, the
        surrogate (or exact) objective and feasibility; gradient also the multiplier,
        ``tau`` and the temperature.
    thresholds : ndarray, shape (B,) or (B, L)
        Least scale of :data:`RESERVE_THRESHOLD_GRID` at which the exact mechanism runs on
        each training economy (``inf`` if none; per good: :func:`reserve_thresholds` with
        ``per_good=True``); gradient method only (else ``None``).
    converged : bool
        The exact training evaluation meets the constraint and ``s`` is finite.
    status : int
        :class:`jaxwalras.Status`: ``OK`` or ``NOT_CERTIFIED``.
    iterations : int
        Optimiser steps (or grid points evaluated).
    """

    params: dict
    train: ReserveEvaluation
    heldout: Any
    trajectory: dict
    thresholds: Any
    converged: bool
    status: int
    iterations: int


def _unit(eco: MenuEconomy, mechanism: str) -> np.ndarray:
    B = eco.batch_shape[0]
    return np.broadcast_to(worst_case_reserve(eco, sellers_only=mechanism == "rationing"),
                           (B, eco.n_goods)).astype(np.float64)


def _run(eco: MenuEconomy, R: np.ndarray, mechanism: str, options: dict):
    """(runs, welfare, revenue, markup, converged, status, iterations) of one reserve."""
    out: Any
    if mechanism == "rationing":
        out = rationing_mechanism(eco, reserve=R, **options)
        mk = np.zeros(R.shape[0])
    else:
        out = markup_mechanism(eco, reserve=R, **options)
        mk = np.asarray(out.markup, np.float64)
    st = np.asarray(out.status)
    ok = st == Status.OK
    return (ok, np.where(ok, np.asarray(out.welfare, np.float64), 0.0),
            np.where(ok, np.asarray(out.budget_surplus, np.float64), 0.0), np.where(ok, mk, np.nan),
            np.asarray(out.converged), st, np.asarray(out.iterations))


def _options(mechanism_options: Any) -> dict:
    if mechanism_options is None:
        return {"progress": False}
    if not isinstance(mechanism_options, dict):
        raise TypeError(f"mechanism_options: expected a dict of keyword arguments of the "
                        f"mechanism, got {type(mechanism_options).__name__}")
    if "reserve" in mechanism_options:
        raise ValueError("mechanism_options: the reserve is set by the scale (s times the "
                         "worst-case reserve); remove 'reserve'")
    return {"progress": False, **mechanism_options}


def _check_scale(scale: Any, L: int, what: str = "scale") -> np.ndarray:
    """``scale`` as a float array of shape () or (L,), finite and >= 0."""
    if isinstance(scale, bool):
        raise ValueError(f"{what}: must be a number >= 0 or one per good, got {scale!r}")
    try:
        s = np.asarray(scale, np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{what}: must be a number >= 0 or one per good, got {scale!r}") from None
    if s.shape not in ((), (L,)):
        raise ValueError(f"{what}: must be one number or one per good (L={L}), got shape "
                         f"{s.shape}")
    if not np.all(np.isfinite(s)) or np.any(s < 0):
        raise ValueError(f"{what}: must be finite and >= 0, got {scale!r}")
    return s


def evaluate_reserves(economy: MenuEconomy, scale: ArrayLike, *, mechanism: str = "rationing",
                      objective: str = "welfare",
                      mechanism_options: dict | None = None) -> ReserveEvaluation:
    """Evaluate a reserve scale EXACTLY on a sample of economies.

    Economy ``e`` gets the reserve ``scale * jw.worst_case_reserve(e)`` (over the sellers'
    menus for the rationing mechanism; a scale per good multiplies good by good) and runs
    the exact mechanism with it.

    Parameters
    ----------
    economy : MenuEconomy
        One batch axis ``(B,)``.
    scale : float or array_like, shape (L,)
        ``s >= 0``, one for all goods or one per good.
    mechanism : {"rationing", "markup"}
        :func:`jaxwalras.rationing_mechanism` or :func:`jaxwalras.markup_mechanism`.
    objective : {"welfare", "revenue", "feasibility", "reserve", "markup"}
        What ``objective`` reports (``"markup"``: markup mechanism only).
    mechanism_options : dict, optional
        Keyword arguments of the mechanism (e.g. ``{"method": "grid"}``).

    Returns
    -------
    ReserveEvaluation

    Raises
    ------
    TypeError, ValueError
        Not a one-axis MenuEconomy batch, a negative or non-finite scale, unknown options.

    References
    ----------
    P. Milgrom and M. Watt, "Linear pricing mechanisms for markets without convexity",
    EC 2022.

    Examples
    --------
    >>> import jaxwalras as jw
    >>> eco = jw.examples.fixed_cost_economy(0, 8, 2, 2, batch_shape=(4,))
    >>> ev = jw.evaluate_reserves(eco, 1.0)      # the worst-case reserve: always runs
    >>> ev.feasibility, ev.economy_reserves.shape
    (1.0, (4, 2))
    """
    check_choice(mechanism, "mechanism", _MECHANISMS)
    check_choice(objective, "objective", ("welfare", "revenue", "feasibility", "reserve", "markup"))
    if objective == "markup" and mechanism != "markup":
        raise ValueError("objective: 'markup' needs mechanism='markup' (the rationing mechanism "
                         "has no markup)")
    eco = _flat(economy)
    s = _check_scale(scale, eco.n_goods)
    opts = _options(mechanism_options)
    R = s * _unit(eco, mechanism)
    ok, w, r, mk, conv, st, it = _run(eco, R, mechanism, opts)
    mean_mk = float(np.mean(mk[ok])) if ok.any() else float("nan")
    obj = {"welfare": float(w.mean()), "revenue": float(r.mean()), "feasibility": float(ok.mean()),
           "reserve": -float(np.mean(s)), "markup": -mean_mk if ok.any() else -np.inf}[objective]
    return ReserveEvaluation(objective=obj, feasibility=float(ok.mean()), welfare=float(w.mean()),
                             revenue=float(r.mean()), markup=mean_mk,
                             scale=float(s) if s.ndim == 0 else s, feasible=ok,
                             economy_welfare=w, economy_revenue=r,
                             economy_markup=np.where(ok, mk, np.nan), economy_reserves=R,
                             converged=conv, status=st, iterations=it)


def reserve_thresholds(economy: MenuEconomy, *, mechanism: str = "rationing",
                       grid: ArrayLike | None = None, per_good: bool = False,
                       mechanism_options: dict | None = None) -> np.ndarray:
    """Least scale of ``grid`` at which the exact mechanism runs, per economy (and good).

    Parameters
    ----------
    economy : MenuEconomy
        One batch axis ``(B,)``.
    mechanism : {"rationing", "markup"}
    grid : array_like, optional
        Increasing scales ``>= 0`` (default :data:`RESERVE_THRESHOLD_GRID`).  Each economy is
        run at the grid's scales in order until it runs.
    per_good : bool
        Also lower each good's scale alone: from the least common scale ``s*_e``, good
        ``l``'s threshold is the least grid scale ``t <= s*_e`` at which the mechanism
        still runs with scale ``t`` on good ``l`` and ``s*_e`` on the others (the corner of
        the per-good model "runs iff ``s_l >= t_l`` for every good").
    mechanism_options : dict, optional
        Keyword arguments of the mechanism.

    Returns
    -------
    ndarray, shape (B,) or (B, L)
        ``inf`` where the mechanism runs at no scale of the grid.

    Notes
    -----
    Running need not be monotone in the scale (a larger reserve moves the convexified
    prices and hence the rounding), so an economy may fail at a scale above its
    threshold; :func:`tune_reserves` uses the thresholds only in its surrogate and always
    evaluates its answer exactly.

    Examples
    --------
    >>> import jaxwalras as jw
    >>> eco = jw.examples.fixed_cost_economy(0, 8, 2, 2, batch_shape=(4,))
    >>> t = jw.reserve_thresholds(eco, grid=[0.0, 0.25, 1.0])
    >>> bool(((t == 0.0) | (t == 0.25) | (t == 1.0)).all())
    True
    """
    check_choice(mechanism, "mechanism", _MECHANISMS)
    g = RESERVE_THRESHOLD_GRID if grid is None else np.asarray(grid, np.float64).ravel()
    if g.size == 0 or not np.all(np.isfinite(g)) or np.any(g < 0) or np.any(np.diff(g) <= 0):
        raise ValueError(f"grid: must be increasing, finite and >= 0, got {grid!r}")
    opts = _options(mechanism_options)
    eco = _flat(economy)
    unit = _unit(eco, mechanism)
    B, L = eco.batch_shape[0], eco.n_goods
    thr = np.full(B, np.inf)
    todo = np.arange(B)
    for s in g:
        if todo.size == 0:
            break
        ok = _run(eco[todo], s * unit[todo], mechanism, opts)[0]
        thr[todo[ok]] = s
        todo = todo[~ok]
    if not per_good:
        return thr
    out = np.repeat(thr[:, None], L, 1)
    for lg in range(L):
        todo = np.flatnonzero(np.isfinite(thr) & (thr > 0))
        for s in g:
            todo = todo[s < thr[todo]]
            if todo.size == 0:
                break
            sc = np.repeat(thr[todo, None], L, 1)
            sc[:, lg] = s
            ok = _run(eco[todo], sc * unit[todo], mechanism, opts)[0]
            out[todo[ok], lg] = s
            todo = todo[~ok]
    return out


def _rationed_welfare(X, V, bm, Y, C, sm, R, tau):
    """Smoothed welfare of the rationing mechanism at auctioneer supply ``R`` (flat batch):
    the buyers' smoothed value of the sellers' smoothed production minus its cost."""
    eco = MenuEconomy._unchecked(X, V, Y, C, bm, sm)
    s1 = smoothed_equilibrium(eco, markup=0.0, reserve=-R, tau=tau)
    y = jnp.einsum("bfk,bfkl->bl", s1.seller_weights, Y)
    cost = jnp.sum(s1.seller_weights * C, (1, 2))
    B = y.shape[0]
    Y2 = jnp.stack([jnp.zeros_like(y), y], 1)[:, None]            # one seller offering y
    eco2 = MenuEconomy._unchecked(X, V, Y2, jnp.zeros((B, 1, 2), y.dtype), bm,
                                  jnp.ones((B, 1, 2), bool))
    s2 = smoothed_equilibrium(eco2, tau=tau)
    return jnp.sum(s2.buyer_weights * V, (1, 2)) - cost


def _smooth_runs(s, thr, temp, tscale):
    """Smoothed "runs" per economy: a logistic ramp at each threshold (1 where it is 0),
    multiplied over the goods when ``thr`` has a goods axis ``(B, L)``."""
    z = jax.nn.sigmoid((s - jnp.where(thr > 0, thr, 0.0)) / (temp * tscale) - _SHIFT)
    z = jnp.where(thr > 0, z, 1.0)
    return jnp.prod(z, -1) if thr.ndim == 2 else z


def _reserve_loss(raw, batch, c, temp, lam_mult, tau_dyn, tau, *, objective, constraint,
                  has_target, per_good):
    """Surrogate loss of one minibatch (module docstring); ``c`` holds the traced
    constants, ``tau`` the static smoothing."""
    X, V, bm, Y, C, sm, unit, thr = batch
    tscale = c["tscale"]
    s = c["s0"] * jnp.exp(raw) if per_good else c["s0"] * jnp.exp(raw[0])
    pf = jnp.mean(_smooth_runs(s, c["thr_all"], temp, tscale))
    if objective == "welfare":
        w = _rationed_welfare(X, V, bm, Y, C, sm, s * unit, tau)
        obj = jnp.mean(w * _smooth_runs(s, thr, temp, tscale))
    elif objective == "feasibility":
        obj = pf
    else:                                     # "reserve": the least (mean) scale
        obj = -jnp.mean(s)
    return _constrained(-obj / c["obj_scale"], pf, c["target"] if has_target else None,
                        lam_mult, c["rho"], constraint), (obj, pf)


def tune_reserves(economies: MenuEconomy | Callable[[KeyLike, int], MenuEconomy], *,
                  rule: str = "uniform", mechanism: str = "rationing", objective: str = "welfare",
                  min_feasibility: float | None = None, constraint: str = "switching",
                  method: str = "gradient", heldout: MenuEconomy | int | None = None,
                  n_train: int | None = None, key: int = 0, steps: int = 150,
                  batch_size: int = 64, learning_rate: float = 0.05,
                  tau: tuple = (0.05, 0.02, 0.01), temperature: tuple = (0.3, 0.001),
                  penalty: float = 50.0, dual_learning_rate: float = 1.0,
                  init: ArrayLike | None = None, grid: ArrayLike | None = None,
                  mechanism_options: dict | None = None,
                  generator_args: dict | None = None) -> ReserveTuningResult:
    """Tune the reserve scale ``s`` (reserve = ``s`` times the worst-case reserve).

    Parameters
    ----------
    economies : MenuEconomy or callable
        A training sample with one batch axis, or a generator ``f(key, n) -> MenuEconomy``
        (then ``n_train`` economies are drawn with ``key``).
    rule : {"uniform", "per_good"}
        One scale for all goods, or one per good (gradient method only).
    mechanism : {"rationing", "markup"}
        The exact mechanism the reserve is for (module docstring).
    objective : {"welfare", "revenue", "feasibility", "reserve", "markup"}
        Maximise mean welfare or revenue (0 where the mechanism does not run) or the
        fraction of economies where it runs, minimise the scale (with ``min_feasibility``:
        the least reserve that runs often enough), or minimise the mean markup where it
        runs (markup mechanism).  The gradient method offers welfare, feasibility and
        reserve.
    min_feasibility : float, optional
        Constraint ``P(runs) >= min_feasibility``.
    constraint : {"switching", "lagrangian", "penalty"}
        As in :func:`jaxwalras.tune_markups`.
    method : {"gradient", "grid"}
        Optax on the smoothed surrogate (rationing mechanism), or the exact grid search
        (either mechanism).
    heldout : MenuEconomy or int, optional
        A held-out sample, or how many economies to draw from the generator (with a key
        different from the training one).
    n_train : int, optional
        Economies drawn from a generator.
    key : int
        Seed of the draws and of the minibatches.
    steps, batch_size, learning_rate
        Optimiser steps (split evenly over the ``tau`` stages, cosine-decayed learning
        rate), minibatch of the welfare surrogate, initial learning rate (``s`` is
        optimised in log space, so a relative step).
    tau : tuple of float
        Smoothing levels of the smoothed equilibria, one compiled stage each.
    temperature : (float, float)
        Start and end of the running temperature (relative to the median threshold).
    penalty, dual_learning_rate : float
        As in :func:`jaxwalras.tune_markups`.
    init : float or array_like, optional
        Initial scale, ``> 0`` (default: the median positive threshold, else 0.1).
    grid : array_like, optional
        Scales of ``method="grid"`` (default :data:`RESERVE_THRESHOLD_GRID`).
    mechanism_options : dict, optional
        Keyword arguments of the exact mechanism.
    generator_args : dict, optional
        Extra keyword arguments of the generator.

    Returns
    -------
    ReserveTuningResult
        ``converged`` is set from the EXACT training evaluation only.

    Raises
    ------
    TypeError, ValueError
        Bad options (the message names the argument).

    Notes
    -----
    The exact outcome is a step function of ``s``; the surrogate replaces the steps by
    logistic ramps at the exact thresholds and the rounded welfare by the smoothed
    welfare of the rationed production, which is a model, so the answer is always
    re-evaluated with the exact mechanism.

    References
    ----------
    P. Milgrom and M. Watt, "Linear pricing mechanisms for markets without convexity",
    EC 2022.  R. M. Starr, "Quasi-equilibria in markets with non-convex preferences",
    Econometrica 37(1), 1969.  G. Lan and Z. Zhou, "Algorithms for stochastic optimization
    with function or expectation constraints", Computational Optimization and
    Applications, 2020.

    Examples
    --------
    >>> import jaxwalras as jw
    >>> gen = lambda key, n: jw.examples.fixed_cost_economy(key, 8, 2, 2, batch_shape=(n,))
    >>> res = jw.tune_reserves(gen, objective="reserve", min_feasibility=0.9, method="grid",
    ...                        n_train=20, heldout=10, grid=[0.0, 0.25, 0.5, 1.0])
    >>> res.train.feasibility >= 0.9, res.params["scale"] in (0.0, 0.25, 0.5, 1.0)
    (True, True)
    """
    check_choice(mechanism, "mechanism", _MECHANISMS)
    check_choice(objective, "objective", ("welfare", "revenue", "feasibility", "reserve", "markup"))
    check_choice(constraint, "constraint", ("switching", "lagrangian", "penalty"))
    check_choice(method, "method", ("gradient", "grid"))
    check_choice(rule, "rule", ("uniform", "per_good"))
    if rule == "per_good" and method == "grid":
        raise ValueError("method: 'grid' searches one scale; rule='per_good' needs "
                         "method='gradient'")
    if objective == "markup" and mechanism != "markup":
        raise ValueError("objective: 'markup' needs mechanism='markup' (the rationing mechanism "
                         "has no markup)")
    if method == "gradient":
        if mechanism != "rationing":
            raise ValueError("method: 'gradient' has a smooth surrogate for the rationing "
                             "mechanism only (the markup mechanism's least markup is a step "
                             "function of the reserve); use method='grid' with mechanism='markup'")
        if objective not in ("welfare", "feasibility", "reserve"):
            raise ValueError(f"objective: method='gradient' offers 'welfare', 'feasibility' and "
                             f"'reserve', got {objective!r}; use method='grid'")
    if min_feasibility is not None and not 0 < float(min_feasibility) < 1:
        raise ValueError(f"min_feasibility: must be in (0, 1), got {min_feasibility!r}")
    for nm, v in (("steps", steps), ("batch_size", batch_size)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{nm}: must be a positive integer, got {v!r}")
    if not (isinstance(tau, (tuple, list)) and tau and all(0 < float(t) <= 1 for t in tau)):
        raise ValueError(f"tau: must be a non-empty tuple of numbers in (0, 1], got {tau!r}")
    if not (isinstance(temperature, (tuple, list)) and len(temperature) == 2
            and all(float(t) > 0 for t in temperature)):
        raise ValueError(f"temperature: must be (start, end) > 0, got {temperature!r}")
    g = RESERVE_THRESHOLD_GRID if grid is None else np.asarray(grid, np.float64).ravel()
    if g.size == 0 or not np.all(np.isfinite(g)) or np.any(g < 0):
        raise ValueError(f"grid: must be finite scales >= 0, got {grid!r}")
    opts = _options(mechanism_options)
    kw = dict(generator_args or {})
    gen = (lambda k, n: economies(k, n, **kw)) if callable(economies) else economies
    train = _draw(gen, n_train, key, "economies")
    L = train.n_goods
    size = L if rule == "per_good" else 1
    if init is not None and np.any(_check_scale(init, size, "init") <= 0):
        raise ValueError(f"init: must be > 0 (the scale is optimised in log space), got {init!r}")
    test = None
    if heldout is not None:
        test = _draw(gen, int(heldout), key + 7919, "heldout") \
            if isinstance(heldout, (int, np.integer)) else _flat(heldout)
    target = None if min_feasibility is None else float(min_feasibility)
    evaluate = functools.partial(evaluate_reserves, mechanism=mechanism, objective=objective,
                                 mechanism_options=opts)
    thr = None
    s: Any
    if method == "grid":
        evs = [evaluate(train, float(v)) for v in g]
        objs = np.array([e.objective for e in evs])
        fe = np.array([e.feasibility for e in evs])
        okc = fe >= (target or 0.0) - 1e-12
        j = int(np.argmax(np.where(okc, objs, -np.inf))) if okc.any() else int(np.argmax(fe))
        s = float(g[j])
        ev_train = evs[j]
        trajectory = {"scale": np.asarray(g), "objective": objs, "feasibility": fe}
        iters = len(g)
    else:
        thr = reserve_thresholds(train, mechanism=mechanism, mechanism_options=opts,
                                 per_good=rule == "per_good")
        pos = thr[np.isfinite(thr) & (thr > 0)]
        tscale = float(np.median(pos)) if pos.size else 0.1
        s0 = np.broadcast_to(np.asarray(tscale if init is None else init, np.float64),
                             (size,)).copy()
        A = train.host_arrays()
        nb = np.asarray(A.bm)[..., 1:].any(-1).sum(-1)
        obj_scale = {"welfare": float(np.mean(np.abs(A.V).max((1, 2)) * np.maximum(nb, 1))),
                     "feasibility": 1.0, "reserve": float(np.mean(s0))}[objective]
        last, traj = _optimise(
            _reserve_loss, dict(objective=objective, constraint=constraint,
                                has_target=target is not None, per_good=rule == "per_good"),
            dict(thr_all=thr, s0=s0, tscale=tscale, obj_scale=obj_scale, rho=float(penalty),
                 target=target or 0.0),
            [A.X, A.V, A.bm, A.Y, A.C, A.sm, _unit(train, mechanism), thr], size,
            steps=int(steps), tau=tuple(tau), static_tau=True, temperature=tuple(temperature),
            learning_rate=learning_rate, constraint=constraint, target=target,
            dual_learning_rate=dual_learning_rate, batch_size=batch_size, key=key)
        sv = s0 * np.exp(last)
        if not np.all(np.isfinite(sv)):
            raise FloatingPointError(f"tune_reserves: the scale became non-finite ({sv}); lower "
                                     "learning_rate")
        s = sv if rule == "per_good" else float(sv[0])
        path = s0 * np.exp(np.asarray(traj.pop("raw")))
        trajectory = {"scale": path if rule == "per_good" else path[:, 0],
                      **{k: np.asarray(v) for k, v in traj.items()}}
        iters = int(steps)
        ev_train = evaluate(train, s)
    ev_test = None if test is None else evaluate(test, s)
    ok = bool(np.all(np.isfinite(s))) and (target is None or ev_train.feasibility >= target)
    return ReserveTuningResult(params={"scale": s}, train=ev_train, heldout=ev_test,
                               trajectory=trajectory, thresholds=thr, converged=bool(ok),
                               status=int(Status.OK if ok else Status.NOT_CERTIFIED),
                               iterations=iters)
