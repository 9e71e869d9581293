"""Menu-economy functions the suite had no oracle, bad-input or batch test for (issue 16):
``dual_objective`` against the dual written out in tests/test_convexified.py and LP duality
with the independent HiGHS LP there; ``demand_gaps`` and ``smoothed_equilibrium`` batches
equal the per-economy loop; ``save_economy`` refuses what it cannot write back."""
from __future__ import annotations

import numpy as np
import pytest

import jaxwalras as jw
from test_convexified import oracle_dual, oracle_lp, oracle_prices


@pytest.fixture(scope="module")
def eco():
    return jw.examples.random_menu_economy(6, 2, 3, 3, 2, seed=11, batch_shape=(4,))


def test_dual_objective_against_the_written_out_dual_and_lp_duality(eco):
    rng = np.random.default_rng(0)
    P = rng.uniform(0, 2, (4, 2))
    a = np.array([0.0, 0.1, 0.5, 2.0])
    R = rng.uniform(-0.5, 0.5, (4, 2))
    g = jw.dual_objective(eco, P, a, R)
    assert g.shape == (4,)
    for b in range(4):
        assert g[b] == pytest.approx(oracle_dual(eco[b], P[b], a[b], R[b]), rel=1e-12, abs=1e-12)
        # weak duality: every price's dual value bounds the LP optimum from above ...
        opt = oracle_lp(eco[b], a[b], R[b])
        assert g[b] >= opt - 1e-9 * max(1.0, abs(opt))
        # ... with equality at optimal prices (the oracle's least ones)
        p_star = oracle_prices(eco[b], a[b], R[b])
        g_star = float(jw.dual_objective(eco[b], p_star, a[b], R[b]))
        assert g_star == pytest.approx(opt, rel=1e-8, abs=1e-8)


def test_dual_objective_batch_equals_the_loop(eco):
    rng = np.random.default_rng(1)
    P = rng.uniform(0, 2, (3, 4, 2))                    # an extra leading axis of prices
    g = jw.dual_objective(eco, P, 0.2)
    assert g.shape == (3, 4)
    for i in range(3):
        for b in range(4):
            assert g[i, b] == float(jw.dual_objective(eco[b], P[i, b], 0.2))


def test_dual_objective_refuses_bad_input(eco):
    with pytest.raises(ValueError, match="prices: last axis must be L=2"):
        jw.dual_objective(eco, [1.0, 2.0, 3.0])
    with pytest.raises(TypeError, match="economy: expected a jaxwalras.MenuEconomy"):
        jw.dual_objective("economy", [1.0])
    with pytest.raises(ValueError, match="do not match/broadcast"):
        jw.dual_objective(eco, [[1.0, 2.0]] * 3)
    with pytest.raises(ValueError, match="prices: contains nan"):
        jw.dual_objective(eco, [np.nan, 1.0])
    with pytest.raises(ValueError, match="markup: must be > -1"):
        jw.dual_objective(eco, [1.0, 1.0], markup=-2.0)


def test_demand_gaps_batch_equals_the_loop_and_the_definition(eco):
    rng = np.random.default_rng(2)
    P = rng.uniform(0, 2, (4, 2))
    bg, sg = jw.demand_gaps(eco, P, 0.3)
    assert bg.shape == (4, 6, 3) and sg.shape == (4, 2, 3)
    for b in range(4):
        b1, s1 = jw.demand_gaps(eco[b], P[b], 0.3)
        np.testing.assert_array_equal(bg[b], b1)
        np.testing.assert_array_equal(sg[b], s1)
        e = eco[b]
        X, V, Y, C = (np.asarray(getattr(e, k), float) for k in
                      ("buyer_bundles", "buyer_values", "seller_bundles", "seller_costs"))
        bm, sm = np.asarray(e.buyer_mask), np.asarray(e.seller_mask)
        for n in range(X.shape[0]):
            u = [V[n, k] - 1.3 * P[b] @ X[n, k] for k in range(X.shape[1])]
            best = max(u[k] for k in range(len(u)) if bm[n, k])
            for k in range(len(u)):
                if bm[n, k]:
                    assert bg[b, n, k] == pytest.approx(best - u[k], abs=1e-12)
                else:
                    assert bg[b, n, k] == np.inf
        for f in range(Y.shape[0]):
            w = [P[b] @ Y[f, k] - C[f, k] for k in range(Y.shape[1])]
            best = max(w[k] for k in range(len(w)) if sm[f, k])
            for k in range(len(w)):
                if sm[f, k]:
                    assert sg[b, f, k] == pytest.approx(best - w[k], abs=1e-12)


def test_smoothed_equilibrium_batch_equals_the_loop():
    """Each economy of a batch gets the answer it gets alone (stages=2, steps=2 keep the
    compiled solver small: the default 6 x 5 takes ~20 s to compile per shape).
    Not converged at this budget, so this checks batch independence only."""
    eco = jw.examples.random_menu_economy(3, 1, 2, 2, 2, seed=3, batch_shape=(3,))
    opts = dict(markup=0.1, tau=1e-2, stages=2, steps=2)
    s = jw.smoothed_equilibrium(eco, **opts)
    assert np.shape(s.prices) == (3, 2)
    # unconverged, but still prices: finite and >= 0 (the implicit-derivative step used to
    # overshoot to -0.43 here)
    assert np.all(np.isfinite(np.asarray(s.prices))) and np.all(np.asarray(s.prices) >= 0)
    for b in range(3):
        one = jw.smoothed_equilibrium(eco[b], **opts)
        np.testing.assert_allclose(np.asarray(one.prices), np.asarray(s.prices)[b],
                                   rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="tau"):
        jw.smoothed_equilibrium(eco, tau=0.0)


def test_save_economy_refuses_bad_input(tmp_path, eco):
    with pytest.raises(TypeError, match="economy: expected a jaxwalras.MenuEconomy"):
        jw.save_economy("economy", tmp_path / "a.json")
    two = jw.examples.random_menu_economy(4, 2, 3, 3, 2, seed=1, batch_shape=(2, 2))
    with pytest.raises(ValueError, match=r"1-D batch, got batch shape \(2, 2\)"):
        jw.save_economy(two, tmp_path / "b.json")
    # names of the goods: one per good (a wrong count used to be written, and then refused
    # by load_economy)
    with pytest.raises(ValueError, match="goods: 1 names for L=2 goods"):
        jw.save_economy(eco[0], tmp_path / "c.json", goods=["kWh"])
    with pytest.raises(TypeError, match="goods"):
        jw.save_economy(eco[0], tmp_path / "d.json", goods="kWh")
    assert not any(tmp_path.iterdir())                   # nothing half-written
    jw.save_economy(eco[0], tmp_path / "e.json", goods=["kWh", "MWh"])
    back = jw.load_economy(tmp_path / "e.json")
    np.testing.assert_array_equal(back.buyer_values, eco[0].buyer_values)


def _spread(Z, mask):
    """Largest spread max_k z_l - min_k z_l of any agent's (unmasked) options, per good."""
    out = np.zeros(Z.shape[-1])
    for a in range(Z.shape[0]):
        opts = Z[a][np.asarray(mask[a], bool)]
        out = np.maximum(out, opts.max(0) - opts.min(0))
    return out


def test_worst_case_reserve_definition_batch_and_bad_input():
    """R_l = L * delta_l, delta_l the largest spread of any agent's menu in good l (of the
    sellers' only with sellers_only), computed here; batch == loop; a non-economy refused."""
    eco = jw.examples.random_menu_economy(5, 2, 3, 3, 2, seed=1, batch_shape=(3,))
    R, Rs = jw.worst_case_reserve(eco), jw.worst_case_reserve(eco, sellers_only=True)
    assert R.shape == Rs.shape == (3, 2)
    for b in range(3):
        e = eco[b]
        X, Y = np.asarray(e.buyer_bundles, float), np.asarray(e.seller_bundles, float)
        ds = _spread(Y, e.seller_mask)
        np.testing.assert_allclose(Rs[b], 2 * ds, rtol=1e-15)
        np.testing.assert_allclose(R[b], 2 * np.maximum(ds, _spread(X, e.buyer_mask)),
                                   rtol=1e-15)
        np.testing.assert_array_equal(jw.worst_case_reserve(e), R[b])
    with pytest.raises(TypeError, match="economy: expected a jaxwalras.MenuEconomy"):
        jw.worst_case_reserve("economy")
