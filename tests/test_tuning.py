"""Mechanism tuning: the tuned markup rule against exact answers (the certified least
markups of Table-1 markets, exhaustive posted-markup outcomes, an exact grid search), the
exact evaluators against independent brute force, and the per-good smoothed equilibrium."""
from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import linprog

import jaxwalras as jw


def table1_gen(N):
    return lambda key, n: jw.examples.large_single_good_market(key, N, batch_shape=(n,))


# ---------------------------------------------------------------- exact answers
def test_inverse_n_rule_matches_the_exact_quantile_within_two_percent():
    N, n = 200, 400
    res = jw.tune_markups(table1_gen(N), rule="inverse_n", objective="markup",
                          min_feasibility=0.9, n_train=n, heldout=200, steps=200, batch_size=n)
    train = jw.examples.large_single_good_market(0, N, batch_shape=(n,))
    mk = jw.markup_mechanism(train)
    assert bool(np.all(mk.certified_minimal))          # the scan certifies each least markup
    np.testing.assert_allclose(res.least_markups, mk.markup, rtol=0, atol=0)
    need = np.sort(N * np.asarray(mk.markup))[int(np.ceil(0.9 * n)) - 1]   # exact quantile
    assert abs(res.params["c"] / need - 1) < 0.02
    assert res.train.feasibility >= 0.9 and res.converged and res.status == jw.Status.OK
    # exact held-out evaluation: close to the target (sampling error of 200 economies)
    assert 0.82 <= res.heldout.feasibility <= 0.97
    assert res.heldout.feasible.shape == (200,)
    # the trajectory reports parameters, surrogate feasibility and the annealing
    tr = res.trajectory
    assert tr["c"].shape == (200,) and tr["temperature"][0] > tr["temperature"][-1]


def test_least_markups_are_the_least_posted_markups_on_small_table1_markets():
    """Independent check of the thresholds: on small Table-1 markets, exhaustive search
    finds no markup outcome below the certified least markup and one at it."""
    eco = jw.examples.large_single_good_market(3, 7, batch_shape=(6,))
    mk = jw.markup_mechanism(eco)
    a = np.asarray(mk.markup)
    grid = a[None, :] * np.linspace(0.0, 0.999, 12)[:, None]
    below = jw.posted_markup_outcomes(eco, grid[..., None])
    assert not np.asarray(below.feasible).any()
    at = jw.posted_markup_outcomes(eco, (a * (1 + 1e-9))[:, None])
    assert np.asarray(at.feasible).all() and np.asarray(at.converged).all()


def test_grid_method_is_the_exact_optimum_of_its_grid():
    N, n = 100, 60
    train = jw.examples.large_single_good_market(1, N, batch_shape=(n,))
    g = np.linspace(1.0, 8.0, 36)
    res = jw.tune_markups(train, rule="inverse_n", objective="markup", min_feasibility=0.8,
                          method="grid", grid=g)
    star = N * np.asarray(jw.markup_mechanism(train).markup)
    frac = (star[None, :] <= g[:, None] * (1 + 1e-12)).mean(1)
    assert res.params["c"] == g[np.argmax(frac >= 0.8)]
    np.testing.assert_allclose(res.trajectory["feasibility"], frac)
    assert res.converged and res.iterations == g.size


def brute_force_posted(eco, alpha):
    """Best markup outcome at per-good markups ``alpha`` of ONE small economy by
    enumeration and a scipy LP in the prices per outcome (independent of the library)."""
    X, V, bm, Y, C, sm = (np.asarray(getattr(eco, k)) for k in (
        "buyer_bundles", "buyer_values", "buyer_mask", "seller_bundles", "seller_costs",
        "seller_mask"))
    N, F, L = V.shape[0], C.shape[0], X.shape[-1]
    best = None
    opts = [np.flatnonzero(m) for m in list(bm) + list(sm)]
    for om in itertools.product(*opts):
        cb, cs = om[:N], om[N:]
        x = sum(X[n, cb[n]] for n in range(N))
        y = sum(Y[f, cs[f]] for f in range(F))
        if np.any(y < x - 1e-12):
            continue
        w = sum(V[n, cb[n]] for n in range(N)) - sum(C[f, cs[f]] for f in range(F))
        if best is not None and w <= best:
            continue
        rows, rhs = [], []
        for n in range(N):          # V[n,k] - b.X[n,k] <= V[n,cb] - b.X[n,cb], b = (1+a) p
            for k in np.flatnonzero(bm[n]):
                rows.append((1 + alpha) * (X[n, cb[n]] - X[n, k]))
                rhs.append(V[n, cb[n]] - V[n, k])
        for f in range(F):          # p.Y[f,k] - C[f,k] <= p.Y[f,cs] - C[f,cs]
            for k in np.flatnonzero(sm[f]):
                rows.append(Y[f, k] - Y[f, cs[f]])
                rhs.append(C[f, k] - C[f, cs[f]])
        rows.append(-((1 + alpha) * x - y))        # budget >= 0
        rhs.append(0.0)
        res = linprog(np.zeros(L), A_ub=np.array(rows), b_ub=np.array(rhs) + 1e-9,
                      bounds=(0, None), method="highs")
        if res.status == 0:
            best = w
    return best


def test_posted_outcomes_match_brute_force_and_the_papers_table1_intervals():
    eco = jw.examples.fixed_cost_economy(5, n_buyers=3, n_sellers=2, n_goods=2, buyer_options=3,
                                         seller_options=3, batch_shape=(3,))
    for alpha in (np.array([0.0, 0.0]), np.array([0.3, 0.1]), np.array([0.05, 0.6])):
        out = jw.posted_markup_outcomes(eco, alpha)
        for b in range(3):
            ref = brute_force_posted(eco[b], alpha)
            assert bool(out.feasible[b]) == (ref is not None)
            if ref is not None:
                assert float(out.welfare[b]) == pytest.approx(ref, rel=1e-12, abs=1e-12)
    # Milgrom and Watt's Table 1: markup outcomes exist exactly on [0.2579, 0.80] u [0.94, inf)
    t1 = jw.examples.milgrom_watt_table1()
    feas = jw.posted_markup_outcomes(t1, np.array([0.25, 0.26, 0.5, 0.79, 0.85, 0.93, 0.95, 2.0])
                                     [:, None]).feasible
    assert np.asarray(feas).tolist() == [False, True, True, True, False, False, True, True]


def test_per_good_markups_against_an_exact_grid_of_uniform_markups():
    """Tuned per-good markups (smoothed surrogate) against the exact grid search of uniform
    markups, both evaluated exactly (exhaustive posted outcomes) on held-out economies."""
    gen = lambda key, n: jw.examples.fixed_cost_economy(  # noqa: E731
        key, n_buyers=4, n_sellers=2, n_goods=2, buyer_options=3, seller_options=3,
        batch_shape=(n,))
    train, test = gen(11, 24), gen(101, 32)
    grid = jw.tune_markups(train, rule="uniform", objective="welfare", evaluation="posted",
                           method="grid", grid=np.linspace(0.0, 1.0, 11), heldout=test)
    tuned = jw.tune_markups(train, rule="per_good", objective="welfare", evaluation="posted",
                            heldout=test, steps=60, batch_size=24)
    start = jw.evaluate_markups(train, "uniform", {"markup": float(np.median(
        tuned.least_markups[np.isfinite(tuned.least_markups) & (tuned.least_markups > 0)]))},
        evaluation="posted")
    assert tuned.params["markup"].shape == (2,) and tuned.converged
    # tuning improved on its starting point, exactly evaluated
    assert tuned.train.objective >= start.objective
    # and comes close to the exact best uniform markup on the training economies (per-good
    # markups include the uniform ones) ...
    assert tuned.train.objective >= 0.95 * grid.train.objective
    # ... and is not significantly worse on the held-out ones (paired, two standard errors:
    # each economy's welfare jumps with the markups, so held-out means are noisy)
    d = tuned.heldout.economy_welfare - grid.heldout.economy_welfare
    assert d.mean() >= -2.0 * d.std(ddof=1) / np.sqrt(d.size)
    # the grid's answer is the best of its grid (exact)
    assert grid.train.objective == pytest.approx(grid.trajectory["objective"].max())


def test_constraint_methods_and_objectives_run():
    N, n = 100, 120
    gen = table1_gen(N)
    for constraint, tol, steps in (("lagrangian", 0.03, 300), ("penalty", 0.1, 150)):
        res = jw.tune_markups(gen, rule="inverse_n", objective="markup", min_feasibility=0.8,
                              constraint=constraint, n_train=n, steps=steps, batch_size=n)
        need = jw.exact_markup_quantile(res.least_markups * N, 0.8)
        assert abs(res.params["c"] / need - 1) < tol, constraint
        assert res.converged == (res.status == jw.Status.OK)
        assert res.trajectory["multiplier"].max() > 0 or constraint == "penalty"
    # maximising P(feasible) under the cap mechanism: every market becomes feasible
    res = jw.tune_markups(gen, rule="inverse_n", objective="feasibility", n_train=n, steps=100,
                          batch_size=n)
    assert res.train.feasibility == 1.0 and res.train.objective == 1.0
    small = jw.examples.large_single_good_market(2, 30, batch_shape=(16,))
    res = jw.tune_markups(small, rule="uniform", objective="revenue", min_feasibility=0.5,
                          steps=20, batch_size=16, tau=(0.05,))
    assert np.isfinite(res.params["markup"]) and np.isfinite(res.trajectory["objective"]).all()


# ---------------------------------------------------------------- per-good smoothing
def test_per_good_smoothed_equilibrium_clears_and_differentiates():
    eco = jw.examples.random_menu_economy(6, 2, 3, 3, 2, seed=1)
    with jax.enable_x64(True):
        a = jnp.array([0.1, 0.3])
        p, lam, mu = jw.per_good_smoothed_equilibrium(eco, a, tau=1e-3)
        X, Y = jnp.asarray(eco.buyer_bundles), jnp.asarray(eco.seller_bundles)
        ex = jnp.einsum("fk,fkl->l", mu, Y) - jnp.einsum("nk,nkl->l", lam, X)
        assert np.all(np.abs(np.where(np.asarray(p) > 1e-6, ex, 0.0)) < 1e-8)
        # tau -> 0: the exact convexified price (one markup for all goods)
        exact = np.asarray(jw.equilibrium_prices(eco, markup=0.2, method="lp"))
        err = [np.abs(np.asarray(jw.per_good_smoothed_equilibrium(
            eco, jnp.array([0.2, 0.2]), tau=t)[0]) / exact - 1).max() for t in (1e-2, 1e-4)]
        assert err[1] < err[0] / 5 and err[1] < 1e-2
        # implicit derivatives against central differences of the solve itself
        f = lambda a: jw.per_good_smoothed_equilibrium(eco, a, tau=1e-2)[0]  # noqa: E731
        J = np.asarray(jax.jacfwd(f)(a))
        h = 1e-6
        fd = np.stack([(np.asarray(f(a.at[i].add(h))) - np.asarray(f(a.at[i].add(-h)))) / (2 * h)
                       for i in range(2)], 1)
        np.testing.assert_allclose(J, fd, rtol=1e-4, atol=1e-8)
        assert np.abs(J).max() > 1e-3


# ---------------------------------------------------------------- bad input
def test_bad_options_name_the_argument():
    eco = jw.examples.large_single_good_market(0, 20, batch_shape=(4,))
    with pytest.raises(ValueError, match="evaluation: 'cap'"):
        jw.tune_markups(eco, rule="per_good")
    with pytest.raises(ValueError, match="method: 'grid'"):
        jw.tune_markups(eco, rule="per_good", evaluation="posted", method="grid")
    with pytest.raises(ValueError, match="rule: must be one of"):
        jw.tune_markups(eco, rule="ramsey")
    with pytest.raises(ValueError, match="min_feasibility"):
        jw.tune_markups(eco, min_feasibility=1.5)
    with pytest.raises(ValueError, match="economies: a generator needs"):
        jw.tune_markups(table1_gen(10))
    with pytest.raises(ValueError, match="ONE batch axis"):
        jw.tune_markups(jw.examples.milgrom_watt_table1())
    with pytest.raises(TypeError, match="economies: expected"):
        jw.tune_markups([1, 2])
    with pytest.raises(ValueError, match="exceed max_outcomes"):
        jw.posted_markup_outcomes(jw.examples.large_single_good_market(0, 40), 0.1)
    with pytest.raises(ValueError, match="markups: must be non-negative"):
        jw.posted_markup_outcomes(jw.examples.milgrom_watt_table1(), -0.1)
    assert {"converged", "status", "iterations"} <= set(jw.TuningResult._fields)
    assert {"converged", "status", "iterations"} <= set(jw.MarkupEvaluation._fields)
    assert {"converged", "status", "iterations"} <= set(jw.PostedOutcome._fields)
