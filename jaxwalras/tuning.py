"""Gradient-based tuning of markup mechanisms over a distribution of economies.

A *markup policy* maps parameters ``theta`` to the markups of every economy:

* ``rule="uniform"``: one markup ``alpha`` for every economy and good (``theta = alpha``);
* ``rule="per_good"``: a markup per good, ``alpha_l`` (``theta`` has ``L`` entries);
* ``rule="inverse_n"``: ``alpha = c / N`` with ``N`` the economy's number of buyers
  (``theta = c``), the scaling Milgrom and Watt (2022) prove sufficient in large markets.

Two exact mechanisms evaluate a policy on an economy (``evaluation=``):

* ``"cap"``: the markup mechanism (:func:`jaxwalras.markup_mechanism`) with the policy's
  markup as its ceiling.  It runs, at its least budget-feasible markup ``alpha*``, where
  ``alpha* <= alpha``; its welfare and revenue are then the mechanism's, else 0.  Any
  economy, one rule-independent mechanism run per economy; uniform and ``c / N`` rules.
* ``"posted"``: the markups are posted and the best markup outcome at exactly those
  markups is taken (:func:`jaxwalras.posted_markup_outcomes`, exhaustive, small
  economies only); every rule.

The tuner (``method="gradient"``) minimises, with optax, a smooth surrogate on a training
sample, built from smoothed outcomes:

* welfare and revenue of the entropic-smoothed equilibrium at the policy's markups
  (:func:`jaxwalras.smoothed_equilibrium`, derivatives by implicit differentiation; for
  per-good markups the same logit smoothing with the implicit derivative of the
  excess-supply root), the smoothing ``tau`` annealed over ``len(tau)`` stages;
* budget feasibility of economy ``e`` smoothed as
  ``sigmoid((abar_e - alpha*_e) / (T s) - 3)``, where ``alpha*_e`` is the exact least
  budget-feasible markup of each training economy (``"cap"``: certified by
  :func:`jaxwalras.markup_mechanism`; ``"posted"``: the least uniform markup of a fine
  grid with a posted outcome), ``abar_e`` is the policy's markup (for per-good markups:
  weighted by the smoothed spending ``p_l x_l``), ``s`` the median ``alpha*``, ``T`` a
  temperature annealed geometrically; the shift by three temperatures makes the smoothed
  feasibility conservative;
* a constraint ``P(feasible) >= min_feasibility``: ``"switching"`` (default; normalised
  steps on the objective where the smoothed constraint holds, on the constraint where it
  does not, the answer the mean of the last quarter's feasible iterates: the cooperative
  stochastic approximation of Lan and Zhou, 2020), ``"lagrangian"`` (augmented
  Lagrangian, Adam, multiplier by dual ascent) or ``"penalty"`` (quadratic penalty).

Then the tuned parameters are evaluated EXACTLY (``evaluation=``) on the training sample
and on a held-out sample, and both are reported.  ``method="grid"`` is the exact
baseline for one-parameter rules: every grid value evaluated exactly on the training
sample, the best one kept.
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
from .markup import MarkupResult, markup_mechanism
from .per_good_smoothed import per_good_one, per_good_smoothed_equilibrium
from .posted_markups import posted_markup_outcomes
from .smoothed import smoothed_equilibrium
from .status import Status
from ._tuner import _SHIFT, _constrained, _draw, _flat, _optimise

__all__ = ["MarkupEvaluation", "TuningResult", "policy_markups", "evaluate_markups",
           "tune_markups", "exact_markup_quantile", "per_good_smoothed_equilibrium"]


class MarkupEvaluation(NamedTuple):
    """Exact evaluation of a markup policy on a sample (:func:`evaluate_markups`).

    Attributes
    ----------
    objective : float
        Mean welfare, mean revenue or minus the mean markup (by ``objective``).
    feasibility : float
        Fraction of economies where the mechanism runs with no budget deficit.
    welfare, revenue, markup : float
        Means over the sample (welfare and revenue 0 where the mechanism does not run).
    feasible : ndarray of bool, shape (B,)
    economy_welfare, economy_revenue : ndarray, shape (B,)
    economy_markups : ndarray, shape (B, L)
        The policy's markups per economy and good.
    converged : ndarray of bool, shape (B,)
        The exact mechanism certified its answer for that economy.
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
    feasible: Any
    economy_welfare: Any
    economy_revenue: Any
    economy_markups: Any
    converged: Any
    status: Any
    iterations: Any


class TuningResult(NamedTuple):
    """Result of :func:`tune_markups`.

    Attributes
    ----------
    params : dict
        The tuned parameters: ``{"markup": ...}`` (``uniform``: scalar; ``per_good``:
        ``(L,)``) or ``{"c": ...}`` (``inverse_n``).
    train : MarkupEvaluation
        Exact evaluation on the training sample.
    heldout : MarkupEvaluation or None
        Exact evaluation on the held-out sample.
    trajectory : dict of ndarray
        Per optimiser step (``method="gradient"``) or grid point (``"grid"``): the
        parameters, the surrogate (or exact) objective and feasibility, the multiplier,
        ``tau`` and the temperature.
    least_markups : ndarray, shape (B,)
        The thresholds ``alpha*`` of the training economies: the markup mechanism's least
        budget-feasible markup (``evaluation="cap"``), or the least uniform markup of
        :data:`POSTED_THRESHOLD_GRID` with a posted markup outcome (``"posted"``).
    converged : bool
        The exact training evaluation meets the constraint (feasibility
        ``>= min_feasibility``) and the parameters are finite.
    status : int
        :class:`jaxwalras.Status`: ``OK`` or ``NOT_CERTIFIED``.
    iterations : int
        Optimiser steps (or grid points evaluated).
    """

    params: dict
    train: MarkupEvaluation
    heldout: Any
    trajectory: dict
    least_markups: Any
    converged: bool
    status: int
    iterations: int


# ----------------------------------------------------------------------------------------
# policies
# ----------------------------------------------------------------------------------------
def _n_buyers(eco: MenuEconomy) -> np.ndarray:
    """Buyers with a real option besides the empty one, per economy (flat batch)."""
    return np.asarray(eco.buyer_mask)[..., 1:].any(-1).sum(-1).astype(np.float64)


def policy_markups(rule: str, params: dict, economy: MenuEconomy) -> np.ndarray:
    """The per-good markups ``(B, L)`` a policy gives a flat batch of economies.

    Parameters
    ----------
    rule : {"uniform", "per_good", "inverse_n"}
    params : dict
        ``{"markup": scalar or (L,)}`` or ``{"c": scalar}``.
    economy : MenuEconomy
        Batch shape ``(B,)``.

    Returns
    -------
    ndarray, shape (B, L)

    Examples
    --------
    >>> import jaxwalras as jw
    >>> eco = jw.examples.large_single_good_market(0, 200, batch_shape=(2,))
    >>> jw.policy_markups("inverse_n", {"c": 2.0}, eco).ravel().tolist()
    [0.01, 0.01]
    """
    check_choice(rule, "rule", ("uniform", "per_good", "inverse_n"))
    B, L = int(np.prod(economy.batch_shape, dtype=np.int64)), economy.n_goods
    key = "c" if rule == "inverse_n" else "markup"
    if not isinstance(params, dict) or key not in params:
        raise ValueError(f'params: rule "{rule}" needs {{"{key}": ...}}, got {params!r}')
    if rule == "inverse_n":
        c = float(np.asarray(params["c"]))
        return np.broadcast_to((c / np.maximum(_n_buyers(economy), 1.0)).reshape(B, 1),
                               (B, L)).copy()
    a = np.asarray(params["markup"], np.float64)
    a = a.reshape(-1) if rule == "per_good" else a
    if a.ndim > 1 or a.size not in (1, L):
        raise ValueError(f"params: markup must be a scalar or one per good (L={L}), "
                         f"got shape {np.shape(params['markup'])}")
    return np.broadcast_to(a, (B, L)).copy()


# ----------------------------------------------------------------------------------------
# exact evaluation
# ----------------------------------------------------------------------------------------
def evaluate_markups(economy: MenuEconomy, rule: str, params: dict, *,
                     objective: str = "welfare", evaluation: str = "cap",
                     mechanism: MarkupResult | None = None) -> MarkupEvaluation:
    """Evaluate a markup policy EXACTLY on a sample of economies.

    Parameters
    ----------
    economy : MenuEconomy
        One batch axis ``(B,)``.
    rule, params
        The policy (:func:`policy_markups`).
    objective : {"welfare", "revenue", "markup", "feasibility"}
        What ``objective`` reports: mean welfare, mean revenue, minus the mean markup, or
        the fraction of budget-feasible economies.
    evaluation : {"cap", "posted"}
        The exact mechanism (module docstring).
    mechanism : MarkupResult, optional
        ``jw.markup_mechanism(economy)`` if already computed (``"cap"``).

    Returns
    -------
    MarkupEvaluation

    Raises
    ------
    ValueError
        Unknown options; ``"cap"`` with per-good markups.

    Examples
    --------
    >>> import jaxwalras as jw
    >>> eco = jw.examples.large_single_good_market(0, 400, batch_shape=(20,))
    >>> ev = jw.evaluate_markups(eco, "inverse_n", {"c": 4.0}, objective="markup")
    >>> 0.0 <= ev.feasibility <= 1.0, ev.feasible.shape
    (True, (20,))
    """
    check_choice(objective, "objective", ("welfare", "revenue", "markup", "feasibility"))
    check_choice(evaluation, "evaluation", ("cap", "posted"))
    eco = _flat(economy)
    al = policy_markups(rule, params, eco)
    if evaluation == "cap":
        if rule == "per_good":
            raise ValueError("evaluation: 'cap' runs the markup mechanism, which has one markup "
                             "for all goods; use evaluation='posted' for per-good markups")
        mk = markup_mechanism(eco) if mechanism is None else mechanism
        ok = np.asarray(mk.status) == Status.OK
        star = np.where(ok, np.asarray(mk.markup, np.float64), np.inf)
        feas = star <= al[:, 0] * (1 + 1e-12)
        w = np.where(feas, np.asarray(mk.welfare), 0.0)
        r = np.where(feas, np.asarray(mk.budget_surplus), 0.0)
        conv, st, it = ok, np.asarray(mk.status), np.asarray(mk.iterations)
    else:
        out = posted_markup_outcomes(eco, al)
        feas, w, r = np.asarray(out.feasible), np.asarray(out.welfare), np.asarray(out.revenue)
        conv, st, it = np.asarray(out.converged), np.asarray(out.status), np.asarray(out.iterations)
    return _summary(al, feas, w, r, conv, st, it, objective)


def _summary(al, feas, w, r, conv, st, it, objective) -> MarkupEvaluation:
    mean_a = float(al.mean())
    obj = {"welfare": float(w.mean()), "revenue": float(r.mean()), "markup": -mean_a,
           "feasibility": float(feas.mean())}[objective]
    return MarkupEvaluation(objective=obj, feasibility=float(feas.mean()), welfare=float(w.mean()),
                            revenue=float(r.mean()), markup=mean_a, feasible=feas,
                            economy_welfare=w, economy_revenue=r, economy_markups=al,
                            converged=conv, status=st, iterations=it)


# ----------------------------------------------------------------------------------------
# the surrogate and the tuner
# ----------------------------------------------------------------------------------------
#: uniform markups at which ``evaluation="posted"`` looks for each training economy's least
#: feasible markup
POSTED_THRESHOLD_GRID = np.concatenate([[0.0], np.geomspace(1e-3, 4.0, 60)])


def _posted_least_markups(eco: MenuEconomy) -> np.ndarray:
    """Least uniform markup of :data:`POSTED_THRESHOLD_GRID` at which each economy has a
    posted markup outcome (``inf`` if none)."""
    g = POSTED_THRESHOLD_GRID
    out = posted_markup_outcomes(eco, g[:, None, None])
    f = np.asarray(out.feasible)                         # (G, B)
    return np.where(f.any(0), g[np.argmax(f, 0)], np.inf)


def _loss(raw, batch, c, temp, lam_mult, tau_dyn, tau, *, rule, objective, constraint, smooth,
          has_target):
    """Surrogate loss of one minibatch and its parts (see the module docstring); ``c``
    holds the traced constants; ``tau`` is static for
    :func:`jaxwalras.smoothed_equilibrium`, ``tau_dyn`` traced for the per-good solver."""
    X, V, bm, Y, C, sm, thresh, nb = batch
    thresh_all, nb_all, scale0 = c["thresh_all"], c["nb_all"], c["scale0"]
    obj_scale, star_scale = c["obj_scale"], c["star_scale"]
    B, L = X.shape[0], X.shape[-1]
    theta = scale0 * jnp.exp(raw)
    if rule == "inverse_n":
        alpha = jnp.broadcast_to((theta[0] / jnp.maximum(nb, 1.0))[:, None], (B, L))
    else:
        alpha = jnp.broadcast_to(theta, (B, L))
    w = rv = None
    abar = alpha[:, 0]
    if smooth:
        if rule == "per_good":
            p, lam, mu = jax.vmap(functools.partial(per_good_one, tau=tau_dyn, iters=30))(
                X, V, bm, Y, C, sm, alpha, jnp.zeros((B, L), X.dtype))
        else:
            eco = MenuEconomy._unchecked(X, V, Y, C, bm, sm)
            s = smoothed_equilibrium(eco, markup=alpha[:, 0], tau=tau)
            p, lam, mu = s.prices, s.buyer_weights, s.seller_weights
        x = jnp.einsum("bnk,bnkl->bl", lam, X)
        y = jnp.einsum("bfk,bfkl->bl", mu, Y)
        w = jnp.sum(lam * V, (1, 2)) - jnp.sum(mu * C, (1, 2))
        rv = jnp.sum((1.0 + alpha) * p * x, -1) - jnp.sum(p * y, -1)
        spend = p * x
        abar = jnp.sum(alpha * spend, -1) / jnp.maximum(jnp.sum(spend, -1), 1e-30) \
            if rule == "per_good" else abar
    feas = jax.nn.sigmoid((abar - thresh) / (temp * star_scale) - _SHIFT)
    if rule == "per_good":      # the spending weights need the smoothed outcome: minibatch
        pf = jnp.mean(feas)
    else:                       # the policy's markup alone: the whole training sample
        a_all = theta[0] / jnp.maximum(nb_all, 1.0) if rule == "inverse_n" else theta[0]
        pf = jnp.mean(jax.nn.sigmoid((a_all - thresh_all) / (temp * star_scale) - _SHIFT))
    if objective == "welfare":
        obj = jnp.mean(w * feas)          # the market runs where it is budget feasible
    elif objective == "revenue":
        obj = jnp.mean(rv * feas)
    elif objective == "feasibility":
        obj = pf
    else:
        obj = -jnp.mean(abar)
    return _constrained(-obj / obj_scale, pf, c["target"] if has_target else None, lam_mult,
                        c["rho"], constraint), (obj, pf)


def tune_markups(economies: MenuEconomy | Callable[[KeyLike, int], MenuEconomy], *,
                 rule: str = "uniform", objective: str = "welfare",
                 min_feasibility: float | None = None, constraint: str = "switching",
                 evaluation: str = "cap", method: str = "gradient",
                 heldout: MenuEconomy | int | None = None,
                 n_train: int | None = None, key: int = 0, steps: int = 300,
                 batch_size: int = 128, learning_rate: float = 0.05,
                 tau: tuple = (0.05, 0.02, 0.01), temperature: tuple = (0.3, 0.001),
                 penalty: float = 50.0, dual_learning_rate: float = 1.0,
                 init: dict | None = None, grid: ArrayLike | None = None,
                 generator_args: dict | None = None) -> TuningResult:
    """Tune a markup policy on smoothed outcomes with optax, then evaluate it exactly.

    Parameters
    ----------
    economies : MenuEconomy or callable
        A training sample with one batch axis, or a generator ``f(key, n) -> MenuEconomy``
        (then ``n_train`` economies are drawn with ``key``).
    rule : {"uniform", "per_good", "inverse_n"}
        The policy (module docstring).
    objective : {"welfare", "revenue", "markup", "feasibility"}
        Maximise expected welfare or revenue (counted where the mechanism runs), minimise
        the expected markup, or maximise the probability of budget feasibility.
    min_feasibility : float, optional
        Constraint ``P(budget feasible) >= min_feasibility``.
    constraint : {"switching", "lagrangian", "penalty"}
        Constraint switching (SGD on normalised gradients: the objective's where the
        smoothed constraint holds, else the constraint's; the answer averages the feasible
        iterates of the last quarter), augmented Lagrangian (Adam; multiplier by dual
        ascent, quadratic term ``penalty``), or the quadratic penalty
        ``penalty / 2 * max(0, target - P)^2`` alone (which stops short of the target).
    evaluation : {"cap", "posted"}
        The exact mechanism of the final evaluation (and of ``method="grid"``).
    method : {"gradient", "grid"}
        Adam on the surrogate, or the exact grid search (one-parameter rules).
    heldout : MenuEconomy or int, optional
        A held-out sample, or how many economies to draw from the generator (with a key
        different from the training one).
    n_train : int, optional
        Economies drawn from a generator.
    key : int
        Seed of the draws and of the minibatches.
    steps, batch_size, learning_rate
        Optimiser steps (split evenly over the ``tau`` stages; the learning rate decays by
        a cosine schedule), minibatch size, initial learning rate (the parameters are
        optimised in log space, so it is a relative step).  The feasibility term of
        one-markup rules uses the whole training sample at every step.
    tau : tuple of float
        Smoothing levels of the smoothed equilibrium, one compiled stage each.
    temperature : (float, float)
        Start and end of the feasibility temperature (relative to the median ``alpha*``),
        annealed geometrically.
    penalty, dual_learning_rate : float
        Weight of the quadratic term, and step of the multiplier's dual ascent.
    init : dict, optional
        Initial parameters (default: the median least markup, ``c`` = median ``N alpha*``).
    grid : array_like, optional
        The grid of ``method="grid"`` (default: 64 points geometric around ``alpha*``).
    generator_args : dict, optional
        Extra keyword arguments of the generator.

    Returns
    -------
    TuningResult
        ``converged`` is set from the EXACT training evaluation only.

    Raises
    ------
    TypeError, ValueError
        Bad options (the message names the argument).

    Notes
    -----
    The surrogate models budget feasibility of economy ``e`` as ``abar_e >= alpha*_e``,
    which is exactly the ``"cap"`` mechanism's condition; for posted markups the exact
    feasible set need not be an interval and the surrogate is a model, which is why the
    final answer is always re-evaluated with the exact mechanism.  Economies where the
    markup mechanism finds no budget-feasible markup get ``alpha* = +inf``.

    References
    ----------
    P. Milgrom and M. Watt, "Linear pricing mechanisms for markets without convexity",
    EC 2022.  M. Blondel et al., "Efficient and modular implicit differentiation",
    NeurIPS 2022.  D. P. Kingma and J. Ba, "Adam: a method for stochastic optimization",
    ICLR 2015.  G. Lan and Z. Zhou, "Algorithms for stochastic optimization with function
    or expectation constraints", Computational Optimization and Applications, 2020.

    Examples
    --------
    >>> import jaxwalras as jw
    >>> gen = lambda key, n: jw.examples.large_single_good_market(key, 200, batch_shape=(n,))
    >>> res = jw.tune_markups(gen, rule="inverse_n", objective="markup", min_feasibility=0.9,
    ...                       n_train=200, heldout=100, steps=150, batch_size=200)
    >>> exact = jw.exact_markup_quantile(res.least_markups * 200, 0.9)
    >>> abs(res.params["c"] / exact - 1) < 0.02, res.train.feasibility >= 0.895
    (True, True)
    """
    check_choice(rule, "rule", ("uniform", "per_good", "inverse_n"))
    check_choice(objective, "objective", ("welfare", "revenue", "markup", "feasibility"))
    check_choice(constraint, "constraint", ("switching", "lagrangian", "penalty"))
    check_choice(evaluation, "evaluation", ("cap", "posted"))
    check_choice(method, "method", ("gradient", "grid"))
    if min_feasibility is not None and not 0 < float(min_feasibility) < 1:
        raise ValueError(f"min_feasibility: must be in (0, 1), got {min_feasibility!r}")
    if evaluation == "cap" and rule == "per_good":
        raise ValueError("evaluation: 'cap' has one markup for all goods; per-good markups need "
                         "evaluation='posted'")
    if method == "grid" and rule == "per_good":
        raise ValueError("method: 'grid' searches one parameter; rule='per_good' needs "
                         "method='gradient'")
    for nm, v in (("steps", steps), ("batch_size", batch_size)):
        if not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{nm}: must be a positive integer, got {v!r}")
    if not (isinstance(tau, (tuple, list)) and tau and all(0 < float(t) <= 1 for t in tau)):
        raise ValueError(f"tau: must be a non-empty tuple of numbers in (0, 1], got {tau!r}")
    if not (isinstance(temperature, (tuple, list)) and len(temperature) == 2
            and all(float(t) > 0 for t in temperature)):
        raise ValueError(f"temperature: must be (start, end) > 0, got {temperature!r}")
    kw = dict(generator_args or {})
    gen = (lambda k, n: economies(k, n, **kw)) if callable(economies) else economies
    train = _draw(gen, n_train, key, "economies")
    test = None
    if heldout is not None:
        test = _draw(gen, int(heldout), key + 7919, "heldout") if isinstance(heldout, (int, np.integer)) \
            else _flat(heldout)
    mk = markup_mechanism(train) if evaluation == "cap" else None
    if evaluation == "posted":   # least uniform markup with a posted outcome, on a fine grid
        star = _posted_least_markups(train)
    else:
        assert mk is not None
        star = np.where(np.asarray(mk.status) == Status.OK, np.asarray(mk.markup, np.float64),
                        np.inf)
    fin = star[np.isfinite(star)]
    star_scale = float(np.median(fin[fin > 0])) if np.any(fin > 0) else 1.0
    nb = _n_buyers(train)
    B, L = train.batch_shape[0], train.n_goods
    name = "c" if rule == "inverse_n" else "markup"
    default = star_scale * (float(np.median(nb)) if rule == "inverse_n" else 1.0)
    start = np.asarray((init or {}).get(name, default), np.float64)
    size = L if rule == "per_good" else 1
    start = np.broadcast_to(start.reshape(-1) if start.ndim else start, (size,)).copy()
    if np.any(~np.isfinite(start)) or np.any(start <= 0):
        raise ValueError(f"init: {name} must be finite and > 0, got {start!r}")

    def pack(theta):
        th = np.asarray(theta, np.float64)
        return {name: th if rule == "per_good" else float(th.reshape(-1)[0])}

    if method == "grid":
        g = np.geomspace(default / 20, default * 20, 64) if grid is None else \
            np.asarray(grid, np.float64).ravel()
        if evaluation == "posted":     # the whole grid in one exhaustive evaluation
            al = np.stack([policy_markups(rule, pack([v]), train) for v in g])
            out = posted_markup_outcomes(train, al)
            evs = [_summary(al[i], np.asarray(out.feasible[i]), np.asarray(out.welfare[i]),
                            np.asarray(out.revenue[i]), np.asarray(out.converged[i]),
                            np.asarray(out.status[i]), np.asarray(out.iterations[i]), objective)
                   for i in range(len(g))]
        else:
            evs = [evaluate_markups(train, rule, pack([v]), objective=objective,
                                    evaluation=evaluation, mechanism=mk) for v in g]
        objs = np.array([e.objective for e in evs])
        fe = np.array([e.feasibility for e in evs])
        okc = fe >= (min_feasibility or 0.0) - 1e-12
        j = int(np.argmax(np.where(okc, objs, -np.inf))) if okc.any() else int(np.argmax(fe))
        theta = np.array([g[j]])
        trajectory = {name: np.asarray(g), "objective": objs, "feasibility": fe}
        iters = len(g)
    else:
        smooth = objective in ("welfare", "revenue") or rule == "per_good"
        A = train.host_arrays()
        fdata = [A.X, A.V, A.bm, A.Y, A.C, A.sm]
        obj_scale = 1.0
        if objective == "welfare":
            obj_scale = float(np.mean(np.abs(A.V).max((1, 2)) * np.maximum(nb, 1)))
        elif objective == "revenue":
            obj_scale = float(np.mean(np.abs(A.V).max((1, 2))))
        elif objective == "markup":
            obj_scale = default / (float(np.median(nb)) if rule == "inverse_n" else 1.0)
        target = None if min_feasibility is None else float(min_feasibility)
        last, traj = _optimise(
            _loss, dict(rule=rule, objective=objective, constraint=constraint, smooth=smooth,
                        has_target=target is not None),
            dict(thresh_all=star, nb_all=nb, rho=float(penalty), target=target or 0.0,
                 scale0=start, obj_scale=obj_scale, star_scale=star_scale),
            fdata + [star, nb], size, steps=int(steps), tau=tuple(tau),
            static_tau=rule != "per_good", temperature=tuple(temperature),
            learning_rate=learning_rate, constraint=constraint, target=target,
            dual_learning_rate=dual_learning_rate, batch_size=batch_size, key=key)
        ths = [start * np.exp(r) for r in traj.pop("raw")]
        traj[name] = [th if rule == "per_good" else th[0] for th in ths]
        theta = start * np.exp(last)
        trajectory = {kk: np.asarray(traj[kk]) for kk in (name, "objective", "feasibility",
                                                          "multiplier", "tau", "temperature")}
        iters = int(steps)
    if not np.all(np.isfinite(theta)):
        raise FloatingPointError(f"tune_markups: the parameters became non-finite ({theta}); "
                                 "lower learning_rate")
    params = pack(theta)
    ev_train = evaluate_markups(train, rule, params, objective=objective, evaluation=evaluation,
                                mechanism=mk)
    ev_test = None if test is None else evaluate_markups(test, rule, params, objective=objective,
                                                         evaluation=evaluation)
    ok = bool(np.all(np.isfinite(theta))) and (
        min_feasibility is None or ev_train.feasibility >= float(min_feasibility))
    return TuningResult(params=params, train=ev_train, heldout=ev_test, trajectory=trajectory,
                        least_markups=star, converged=ok,
                        status=int(Status.OK if ok else Status.NOT_CERTIFIED), iterations=iters)


def exact_markup_quantile(values: ArrayLike, q: float) -> float:
    """The least ``c`` with ``values <= c`` for at least a fraction ``q`` of them (the
    exact answer a ``min_feasibility=q`` markup-cap tuner targets; ``inf`` entries count
    as never feasible).

    Examples
    --------
    >>> import jaxwalras as jw
    >>> jw.exact_markup_quantile([3.0, 1.0, 2.0, 4.0], 0.5)
    2.0
    """
    v = np.sort(np.asarray(values, np.float64).ravel())
    if v.size == 0 or not 0 < q <= 1:
        raise ValueError(f"values/q: need a non-empty sample and q in (0, 1], got {v.size}, {q!r}")
    return float(v[int(np.ceil(q * v.size)) - 1])
