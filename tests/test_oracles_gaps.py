"""Bad input and batch == per-market loop for the functions tests/README.md listed as gaps,
each against its definition computed here where values are involved."""
from __future__ import annotations

import numpy as np
import pytest

import jaxwalras as jw


@pytest.fixture(scope="module")
def eco():
    return jw.examples.random_menu_economy(4, 2, 3, 3, 2, seed=5, batch_shape=(3,))


# ------------------------------------------------------------------------------ uplift
def _uplift_by_definition(e, p, cs):
    """max_k (p.Y[f,k] - C[f,k]) - (p.Y[f,cs_f] - C[f,cs_f]) over the allowed options."""
    Y, C, sm = (np.asarray(getattr(e, f)) for f in ("seller_bundles", "seller_costs",
                                                   "seller_mask"))
    prof = np.where(sm, Y @ p - C, -np.inf)
    return prof.max(-1) - prof[np.arange(len(cs)), cs]


def test_uplift_batch_equals_the_loop_and_the_definition(eco):
    rng = np.random.default_rng(0)
    p = rng.uniform(0.2, 2.0, (3, 2))
    cs = rng.integers(0, 3, (3, 2))
    up = jw.uplift(eco, p, cs)
    assert up.shape == (3, 2)
    for b in range(3):
        one = jw.uplift(eco[b], p[b], cs[b])
        np.testing.assert_allclose(up[b], one, rtol=0, atol=0)
        np.testing.assert_allclose(one, _uplift_by_definition(eco[b], p[b], cs[b]),
                                   rtol=1e-12, atol=1e-12)
    assert np.all(up >= 0)


def test_uplift_refuses_bad_input(eco):
    with pytest.raises(TypeError, match="economy"):
        jw.uplift("economy", [0.5, 0.5], [0, 0])
    with pytest.raises(ValueError, match="prices"):
        jw.uplift(eco[0], [-1.0, 0.5], [0, 0])
    with pytest.raises(ValueError, match="prices"):
        jw.uplift(eco[0], [np.nan, 0.5], [0, 0])
    with pytest.raises(ValueError, match="seller"):
        jw.uplift(eco[0], [0.5, 0.5], [0, 7])


# -------------------------------------------------------------- posted_markup_outcomes
def test_posted_markup_outcomes_batch_equals_the_loop(eco):
    a = np.array([[0.0, 0.0], [0.3, 0.1], [1.0, 2.0]])
    res = jw.posted_markup_outcomes(eco, a)
    for b in range(3):
        one = jw.posted_markup_outcomes(eco[b], a[b])
        for f in ("feasible", "welfare", "revenue", "buyer_choice", "seller_choice",
                  "converged", "status"):
            np.testing.assert_array_equal(np.asarray(getattr(res, f))[b],
                                          np.asarray(getattr(one, f)), err_msg=f)
        np.testing.assert_allclose(np.asarray(res.prices)[b], np.asarray(one.prices),
                                   rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------- evaluate_markups
def test_evaluate_markups_refuses_bad_input_and_rows_equal_single_economies(eco):
    with pytest.raises(TypeError, match="economies"):
        jw.evaluate_markups("eco", "uniform", {"markup": 0.1})
    with pytest.raises(ValueError, match="rule"):
        jw.evaluate_markups(eco, "quadratic", {"markup": 0.1})
    with pytest.raises(ValueError, match="objective"):
        jw.evaluate_markups(eco, "uniform", {"markup": 0.1}, objective="profit")
    with pytest.raises(ValueError, match="params"):
        jw.evaluate_markups(eco, "uniform", {"c": 0.1})
    ev = jw.evaluate_markups(eco, "uniform", {"markup": 0.5}, evaluation="posted")
    assert ev.feasible.shape == (3,)
    # each row is the posted-markup outcome of that economy alone at alpha = 0.5
    for b in range(3):
        one = jw.posted_markup_outcomes(eco[b], [0.5, 0.5])
        assert bool(ev.feasible[b]) == bool(one.feasible)
        np.testing.assert_allclose(ev.economy_welfare[b],
                                   float(one.welfare) if bool(one.feasible) else 0.0,
                                   rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ev.feasibility, np.mean(ev.feasible))


# ---------------------------------------------------------- per_good_smoothed_equilibrium
def test_per_good_smoothed_equilibrium_batch_and_bad_input(eco):
    a = np.array([[0.1, 0.2], [0.0, 0.0], [0.3, 0.05]])
    p, lam, mu = jw.per_good_smoothed_equilibrium(eco, a)
    assert np.shape(p) == (3, 2)
    for b in range(3):
        p1, _, _ = jw.per_good_smoothed_equilibrium(eco[b], a[b])
        np.testing.assert_allclose(np.asarray(p)[b], np.asarray(p1), rtol=1e-5, atol=1e-7)
    with pytest.raises(TypeError, match="economy"):
        jw.per_good_smoothed_equilibrium("eco", a)
    with pytest.raises(ValueError, match="markups"):
        jw.per_good_smoothed_equilibrium(eco[0], [-2.0, 0.0])
    with pytest.raises(ValueError, match="tau"):
        jw.per_good_smoothed_equilibrium(eco[0], [0.1, 0.1], tau=0.0)
    with pytest.raises(ValueError, match="reserve"):
        jw.per_good_smoothed_equilibrium(eco[0], [0.1, 0.1], reserve=[np.inf, 0.0])


# ----------------------------------------------------------------- best_item_price_welfare
def test_best_item_price_welfare_batch_equals_the_loop():
    mk = [jw.examples.shoes(), jw.examples.shirts(2),
          jw.SetFunctionMarket.additive([[3.0, 1.0], [2.0, 2.5]])]
    batch = jw.SetFunctionMarket.stack(mk)
    res = jw.best_item_price_welfare(batch)
    for b, m in enumerate(mk):
        one = jw.best_item_price_welfare(m)
        assert float(res.welfare[b]) == pytest.approx(float(one.welfare), rel=1e-12, abs=1e-12)
        np.testing.assert_array_equal(np.asarray(res.allocation)[b], np.asarray(one.allocation))
        assert bool(res.converged[b]) == bool(one.converged)


# --------------------------------------------------------- set-function files, batches
def test_setfunction_files_hold_batches(tmp_path):
    mk = [jw.examples.shoes(), jw.examples.shirts(2)]
    batch = jw.SetFunctionMarket.stack(mk)
    path = tmp_path / "batch.json"
    jw.save_setfunction_market(batch, path)
    back = jw.load_setfunction_market(path)
    assert back.batch_shape == (2,)
    for b, m in enumerate(mk):
        path1 = tmp_path / f"one{b}.json"
        jw.save_setfunction_market(m, path1)
        one = jw.load_setfunction_market(path1)
        np.testing.assert_array_equal(np.asarray(back.values)[b], np.asarray(one.values))
        np.testing.assert_array_equal(np.asarray(one.values), np.asarray(m.values))


# ------------------------------------------------------------------------ stack_markets
def test_stack_markets_refuses_bad_input():
    with pytest.warns(FutureWarning), pytest.raises(ValueError, match="at least one"):
        jw.stack_markets([])
    with pytest.warns(FutureWarning), pytest.raises(TypeError, match=r"markets\[0\]"):
        jw.stack_markets([jw.examples.shoes()])
