"""Reserve tuning (issue 14): the thresholds and the exact evaluator against direct runs of
the mechanisms with reserves built from the worst-case reserve's definition, the tuned
least reserve against the exact threshold quantile, the gradient tuner against the exact
grid search, money scales, mixed batches, one compilation of the optimiser step, and bad
input."""
from __future__ import annotations

import jax
import jax.monitoring
import numpy as np
import pytest

import jaxwalras as jw

_EVENT = "/jax/core/compile/backend_compile_duration"


def fixed_gen(key, n):
    return jw.examples.fixed_cost_economy(key, 12, 3, 2, batch_shape=(n,))


def spread_reserve(eco, sellers_only):
    """L * (largest spread of any agent's menu per good), written out from the definition."""
    Y, sm = np.asarray(eco.seller_bundles), np.asarray(eco.seller_mask)
    spreads = [np.where(sm[..., None], Y, -np.inf).max(-2) - np.where(sm[..., None], Y, np.inf).min(-2)]
    if not sellers_only:
        X, bm = np.asarray(eco.buyer_bundles), np.asarray(eco.buyer_mask)
        spreads.append(np.where(bm[..., None], X, -np.inf).max(-2)
                       - np.where(bm[..., None], X, np.inf).min(-2))
    return eco.n_goods * np.concatenate(spreads, -2).max(-2)


def scaled(eco, k):
    return eco.replace(buyer_values=np.asarray(eco.buyer_values) * k,
                       seller_costs=np.asarray(eco.seller_costs) * k)


@pytest.fixture(scope="module")
def train():
    return fixed_gen(3, 40)


def test_thresholds_and_evaluation_against_direct_mechanism_runs(train):
    grid = np.array([0.0, 0.02, 0.05, 0.1, 0.25, 1.0])
    R = spread_reserve(train, sellers_only=True)
    runs = np.stack([np.asarray(jw.rationing_mechanism(train, reserve=s * R).status) == 0
                     for s in grid])                                   # (G, B)
    want = np.where(runs.any(0), grid[np.argmax(runs, 0)], np.inf)
    thr = jw.reserve_thresholds(train, grid=grid)
    np.testing.assert_array_equal(thr, want)
    assert np.isfinite(thr).all() and (thr == 0).any() and (thr > 0).any()   # both kinds occur
    # the exact evaluation is the mechanism run at s * R: welfare where it runs, else 0
    ra = jw.rationing_mechanism(train, reserve=0.05 * R)
    ok = np.asarray(ra.status) == 0
    ev = jw.evaluate_reserves(train, 0.05)
    np.testing.assert_array_equal(ev.feasible, ok)
    np.testing.assert_allclose(ev.economy_welfare, np.where(ok, ra.welfare, 0.0), rtol=0, atol=0)
    np.testing.assert_allclose(ev.economy_reserves, 0.05 * R)
    assert ev.feasibility == ok.mean() and ev.objective == pytest.approx(ev.welfare)
    # s = 1 is the worst-case reserve: Shapley-Folkman makes every seller rounding feasible
    assert jw.evaluate_reserves(train, 1.0, objective="feasibility").objective == 1.0
    # one scale per good multiplies good by good
    sv = np.array([0.02, 0.2])
    ra = jw.rationing_mechanism(train, reserve=sv * R)
    ev = jw.evaluate_reserves(train, sv)
    np.testing.assert_array_equal(ev.feasible, np.asarray(ra.status) == 0)
    np.testing.assert_allclose(ev.economy_reserves, sv * R)
    np.testing.assert_array_equal(ev.scale, sv)
    # per-good thresholds: from the common threshold s*, good l alone lowered to t_l still
    # runs, and the grid scale just below t_l does not
    tg = jw.reserve_thresholds(train, grid=grid, per_good=True)
    assert (tg <= thr[:, None]).all() and (tg[thr == 0] == 0).all()   # corners below s*
    for i in np.flatnonzero(thr > 0)[:3]:
        for lg in range(train.n_goods):
            sc = np.full(train.n_goods, thr[i])
            sc[lg] = tg[i, lg]
            assert jw.rationing_mechanism(train[i:i + 1], reserve=sc * R[i:i + 1]).status[0] == 0
            for b in grid[grid < tg[i, lg]]:                 # every lower grid scale fails
                sc[lg] = b
                st = jw.rationing_mechanism(train[i:i + 1], reserve=sc * R[i:i + 1]).status[0]
                assert st != 0


@pytest.mark.parametrize("money", [1e-6, 1e6])
def test_money_scale_and_mixed_batches(train, money):
    """Scales are unit-free: thresholds and running do not move with the money unit,
    welfare scales with it, and a row of a mixed batch equals the economy alone."""
    sub = train[:6]
    big = scaled(sub, money)
    grid = [0.0, 0.05, 0.25, 1.0]
    np.testing.assert_array_equal(jw.reserve_thresholds(big, grid=grid),
                                  jw.reserve_thresholds(sub, grid=grid))
    e0, e1 = jw.evaluate_reserves(sub, 0.05), jw.evaluate_reserves(big, 0.05)
    np.testing.assert_array_equal(e1.feasible, e0.feasible)
    np.testing.assert_allclose(e1.economy_welfare, money * e0.economy_welfare, rtol=1e-9)
    mixed = jax.tree_util.tree_map(lambda a, b: np.concatenate([np.asarray(a), np.asarray(b)]),
                                   sub, big)
    em = jw.evaluate_reserves(mixed, 0.05)
    for i in (0, 3, 8):
        alone = jw.evaluate_reserves(mixed[i:i + 1], 0.05)
        assert alone.feasible[0] == em.feasible[i]
        assert alone.economy_welfare[0] == em.economy_welfare[i]


def test_grid_method_is_the_exact_optimum_of_its_grid(train):
    """Markup mechanism, least mean markup subject to running in 90%: the grid tuner's
    answer is the best of direct runs of markup_mechanism at each scale."""
    sub = train[:16]
    grid = np.array([0.0, 0.05, 0.1, 0.2])
    R = spread_reserve(sub, sellers_only=False)
    rows = []
    for s in grid:
        mk = jw.markup_mechanism(sub, reserve=s * R)
        ok = np.asarray(mk.status) == 0
        rows.append((ok.mean(), -np.mean(np.asarray(mk.markup)[ok]) if ok.any() else -np.inf))
    fe, obj = np.array(rows).T
    best = int(np.argmax(np.where(fe >= 0.9, obj, -np.inf)))
    res = jw.tune_reserves(sub, mechanism="markup", objective="markup", min_feasibility=0.9,
                           method="grid", grid=grid)
    assert res.params["scale"] == grid[best]
    np.testing.assert_allclose(res.trajectory["feasibility"], fe)
    np.testing.assert_allclose(res.trajectory["objective"], obj)
    assert res.train.markup == pytest.approx(-obj[best]) and res.converged


def test_least_reserve_matches_the_exact_threshold_quantile():
    """min s subject to P(runs) >= 0.9: the answer the thresholds certify is their 90%
    quantile; the tuned scale is within 2% of it and runs in >= 90% exactly."""
    res = jw.tune_reserves(fixed_gen(0, 60), objective="reserve", min_feasibility=0.9, steps=150,
                           heldout=fixed_gen(11, 20))
    need = jw.exact_markup_quantile(res.thresholds, 0.9)
    assert need > 0 and abs(res.params["scale"] / need - 1) < 0.02
    assert res.train.feasibility >= 0.9 and res.converged and res.status == jw.Status.OK
    assert res.heldout.feasible.shape == (20,)
    tr = res.trajectory
    assert tr["scale"].shape == (150,) and tr["temperature"][0] > tr["temperature"][-1]


def test_gradient_welfare_against_the_exact_grid_search():
    """Max E[welfare] of the rationing mechanism: the gradient tuner's EXACT training
    welfare is within 3% of the best scale of the exact grid search."""
    eco = jw.examples.random_menu_economy(20, 4, 4, 4, 2, seed=5, batch_shape=(40,))
    grid = jw.tune_reserves(eco, method="grid")
    res = jw.tune_reserves(eco, steps=60, tau=(0.02,), batch_size=40)
    assert res.train.welfare >= 0.97 * grid.train.welfare
    assert grid.train.welfare == pytest.approx(grid.trajectory["objective"].max())
    assert np.isfinite(res.trajectory["objective"]).all()
    # one scale per good: at least as good as the uniform optimum, up to the surrogate's 3%
    pg = jw.tune_reserves(eco, rule="per_good", steps=60, tau=(0.02,), batch_size=40)
    assert pg.params["scale"].shape == (2,) and pg.trajectory["scale"].shape == (60, 2)
    assert pg.thresholds.shape == (40, 2)
    assert pg.train.welfare >= 0.97 * grid.train.welfare
    # money units change nothing: the surrogate is normalised by each economy's value scale
    for money in (1e-6, 1e6):
        big = jw.tune_reserves(scaled(eco, money), steps=60, tau=(0.02,), batch_size=40)
        assert big.params["scale"] == pytest.approx(res.params["scale"], rel=1e-3)
        np.testing.assert_array_equal(big.thresholds, res.thresholds)
        assert big.train.welfare == pytest.approx(money * res.train.welfare, rel=1e-9)
    # the thresholds the surrogate used: running at s* exactly (spot-check three economies)
    pos = np.flatnonzero(np.isfinite(res.thresholds))[:3]
    for i in pos:
        assert jw.evaluate_reserves(eco[i:i + 1], float(res.thresholds[i])).feasible[0]


def test_repeated_tuning_compiles_the_step_once(train):
    """A second call with the same shapes reuses the compiled optimiser step (the
    optimisers are built once; the learning rate is an injected hyperparameter)."""
    names: list[str] = []

    def listen(event, duration, **kw):
        if event == _EVENT:
            names.append(str(kw.get("fun_name", "?")))

    kw = dict(objective="reserve", min_feasibility=0.8, steps=8)
    gen = lambda key, n: jw.examples.large_single_good_market(key, 50, batch_shape=(n,))  # noqa: E731
    mk = dict(rule="inverse_n", objective="markup", min_feasibility=0.8, steps=6, n_train=30)
    jw.tune_reserves(train, **kw)
    jw.tune_markups(gen, **mk)
    jax.monitoring.register_event_duration_secs_listener(listen)
    try:
        jw.tune_reserves(fixed_gen(4, 40), **kw)
        jw.tune_markups(gen, key=1, **mk)
        jax.jit(lambda x: x * 3.0 + 1.0)(np.arange(7.0))     # the listener does hear compiles
    finally:
        jax.monitoring.unregister_event_duration_listener(listen)
    assert names and not [n for n in names if "_step" in n], names


def test_bad_input_names_the_argument(train):
    sub = train[:4]
    with pytest.raises(ValueError, match="scale"):
        jw.evaluate_reserves(sub, -0.1)
    with pytest.raises(ValueError, match="one per good"):
        jw.evaluate_reserves(sub, [0.1, 0.2, 0.3])                   # L = 2
    with pytest.raises(ValueError, match="scale"):
        jw.evaluate_reserves(sub, float("nan"))
    with pytest.raises(ValueError, match="mechanism"):
        jw.evaluate_reserves(sub, 0.1, mechanism="auction")
    with pytest.raises(ValueError, match="objective"):
        jw.evaluate_reserves(sub, 0.1, objective="markup")          # rationing has no markup
    with pytest.raises(TypeError, match="economies"):
        jw.evaluate_reserves("eco", 0.1)
    with pytest.raises(ValueError, match="ONE batch axis"):
        jw.evaluate_reserves(jw.examples.fixed_cost_economy(0, 4, 2, 2, batch_shape=(2, 2)), 0.1)
    with pytest.raises(ValueError, match="grid"):
        jw.reserve_thresholds(sub, grid=[0.5, 0.1])
    with pytest.raises(ValueError, match="method"):
        jw.tune_reserves(sub, mechanism="markup")                    # gradient: rationing only
    with pytest.raises(ValueError, match="objective"):
        jw.tune_reserves(sub, objective="revenue")                   # gradient objectives
    with pytest.raises(ValueError, match="min_feasibility"):
        jw.tune_reserves(sub, min_feasibility=1.5)
    with pytest.raises(ValueError, match="init"):
        jw.tune_reserves(sub, init=0.0)
    with pytest.raises(ValueError, match="method"):
        jw.tune_reserves(sub, rule="per_good", method="grid")
    with pytest.raises(ValueError, match="rule"):
        jw.tune_reserves(sub, rule="inverse_n")
    with pytest.raises(ValueError, match="steps"):
        jw.tune_reserves(sub, steps=0)
    with pytest.raises(ValueError, match="economies"):
        jw.tune_reserves(fixed_gen)                                  # a generator needs n_train
    with pytest.raises(ValueError, match="mechanism_options"):
        jw.evaluate_reserves(sub, 0.1, mechanism_options={"reserve": 1.0})
    with pytest.raises(TypeError, match="mechanism_options"):
        jw.reserve_thresholds(sub, mechanism_options=["lp"])
