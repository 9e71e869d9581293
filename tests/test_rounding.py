"""Shapley-Folkman rounding: feasibility guarantee, demand sets, search, batching."""
from __future__ import annotations

import numpy as np
import pytest

import jaxwalras as jw
from jaxwalras.rounding import menu_spread


def surpluses(eco, p, alpha):
    X, V, Y, C = (np.asarray(getattr(eco, f)) for f in
                  ("buyer_bundles", "buyer_values", "seller_bundles", "seller_costs"))
    ub = np.where(eco.buyer_mask, V - (1 + alpha) * X @ p, -np.inf)
    us = np.where(eco.seller_mask, Y @ p - C, -np.inf)
    return ub, us


def check_rounded(eco, ce, r, alpha, tol=1e-7):
    """Definitions, written independently: sets, feasibility, reported totals."""
    ub, us = surpluses(eco, ce.prices, alpha)
    N, F = eco.n_buyers, eco.n_sellers
    for n in range(N):
        assert ub[n].max() - ub[n, r.buyer_choice[n]] <= tol
    for f in range(F):
        assert us[f].max() - us[f, r.seller_choice[f]] <= tol
    x = sum(eco.buyer_bundles[n, r.buyer_choice[n]] for n in range(N))
    y = sum(eco.seller_bundles[f, r.seller_choice[f]] for f in range(F))
    np.testing.assert_allclose(r.excess_supply, y - x, atol=1e-9)
    return x, y


def test_worst_case_reserve_table1():
    eco = jw.examples.milgrom_watt_table1()
    assert jw.worst_case_reserve(eco).tolist() == [6.0]
    assert menu_spread(eco).tolist() == [6.0]


@pytest.mark.parametrize("seed", range(4))
def test_worst_case_reserve_guarantees_feasible_rounding(seed):
    eco = jw.examples.random_menu_economy(6, 4, 3, 3, 2, seed=seed, integer=True)
    R = jw.worst_case_reserve(eco)
    ce = jw.convexified_equilibrium(eco, markup=0.1, reserve=R, method="lp")
    assert bool(ce.converged)
    mixing = ((ce.buyer_weights > 1e-9).sum(-1) > 1).sum() + ((ce.seller_weights > 1e-9).sum(-1) > 1).sum()
    assert mixing <= eco.n_goods                         # vertex: at most L mixing agents
    r = jw.shapley_folkman_rounding(eco, ce.prices, 0.1, ce.buyer_weights, ce.seller_weights)
    assert bool(r.converged)
    x, y = check_rounded(eco, ce, r, 0.1)
    assert np.all(y - x >= -1e-9)
    # the theorem's margin: rounded net supply >= R - L * delta
    assert np.all(y - x >= R - eco.n_goods * menu_spread(eco) - 1e-9)


def test_search_finds_feasible_rounding_of_table1_without_reserve():
    eco = jw.examples.milgrom_watt_table1()
    ce = jw.convexified_equilibrium(eco, markup=0.2, method="lp")
    assert ((ce.seller_weights > 1e-9).sum() == 2)               # the seller mixes
    r = jw.shapley_folkman_rounding(eco, ce.prices, 0.2, ce.buyer_weights, ce.seller_weights)
    assert bool(r.converged) and int(r.seller_choice[0]) == 4     # smallest feasible output
    assert float(r.budget_surplus) == pytest.approx(1.2 * 0.5 * 3.18 - 0.5 * 4)


def test_reports_when_no_feasible_rounding_exists():
    # one buyer mixing (2,0) / (0,2); the seller supplies exactly (1,1): every rounding fails
    X = np.array([[[0, 0], [2, 0], [0, 2]]], float)
    V = np.array([[0, 3.0, 3.0]])
    Y = np.array([[[0, 0], [1, 1]]], float)
    C = np.array([[0, 0.5]])
    eco = jw.MenuEconomy(X, V, Y, C)
    wb = np.array([[0.0, 0.5, 0.5]])
    ws = np.array([[0.0, 1.0]])
    r = jw.shapley_folkman_rounding(eco, [1.0, 1.0], 0.0, wb, ws)
    assert not bool(r.converged) and int(r.n_mixing) == 1
    mk = jw.markup_mechanism(eco, reserve="none", backend="host")
    assert not bool(mk.converged) and int(mk.status) == jw.Status.NO_SOLUTION   # no markup
    mk = jw.markup_mechanism(eco, backend="host")                     # adaptive reserve
    assert not bool(mk.converged) and int(mk.status) == jw.Status.NO_SOLUTION
    assert not bool(mk.certified_minimal)


def test_milp_fallback_equals_enumeration():
    eco = jw.examples.fixed_cost_economy(3, n_buyers=6, n_sellers=2, n_goods=2, batch_shape=(6,))
    ce = jw.convexified_equilibrium(eco, markup=0.2, method="lp")
    a = jw.shapley_folkman_rounding(eco, ce.prices, 0.2, ce.buyer_weights, ce.seller_weights)
    b = jw.shapley_folkman_rounding(eco, ce.prices, 0.2, ce.buyer_weights, ce.seller_weights,
                                    max_combinations=1)
    np.testing.assert_array_equal(a.converged, b.converged)
    ok = a.converged
    np.testing.assert_allclose(a.budget_surplus[ok], b.budget_surplus[ok], atol=1e-9)


def test_batch_equals_per_item():
    eco = jw.examples.fixed_cost_economy(7, n_buyers=6, n_sellers=2, batch_shape=(5,))
    ce = jw.convexified_equilibrium(eco, markup=0.15, method="lp")
    r = jw.shapley_folkman_rounding(eco, ce.prices, 0.15, ce.buyer_weights, ce.seller_weights)
    assert r.buyer_choice.shape == (5, 6) and r.converged.shape == (5,)
    for i in range(5):
        ri = jw.shapley_folkman_rounding(eco[i], ce.prices[i], 0.15, ce.buyer_weights[i],
                                         ce.seller_weights[i])
        np.testing.assert_array_equal(ri.buyer_choice, r.buyer_choice[i])
        np.testing.assert_array_equal(ri.seller_choice, r.seller_choice[i])
        assert float(ri.budget_surplus) == pytest.approx(r.budget_surplus[i])


def test_sellers_only_rounding_gives_excess_demand():
    eco = jw.examples.milgrom_watt_table1()
    ce = jw.convexified_equilibrium(eco, method="lp")
    r = jw.shapley_folkman_rounding(eco, ce.prices, 0.0, ce.buyer_weights, ce.seller_weights,
                                    sellers_only=True)
    assert bool(r.converged) and int(r.seller_choice[0]) == 3      # 3 <= 3.18 demanded


def test_rounding_input_errors():
    eco = jw.examples.milgrom_watt_table1()
    ce = jw.convexified_equilibrium(eco, method="lp")
    with pytest.raises(ValueError, match="prices"):
        jw.shapley_folkman_rounding(eco, [0.5, 0.5], 0.0, ce.buyer_weights, ce.seller_weights)
    with pytest.raises(ValueError, match="buyer_weights"):
        jw.shapley_folkman_rounding(eco, [0.5], 0.0, ce.buyer_weights[:3], ce.seller_weights)
    with pytest.raises(ValueError, match="markup"):
        jw.shapley_folkman_rounding(eco, [0.5], -0.5, ce.buyer_weights, ce.seller_weights)
    with pytest.raises(ValueError, match="max_combinations"):
        jw.shapley_folkman_rounding(eco, [0.5], 0.0, ce.buyer_weights, ce.seller_weights,
                                    max_combinations=0)


def test_top_k_candidates_are_feasible_roundings():
    # the markup mechanism re-prices every candidate: each must be a rounding (only mixing
    # agents moved, to options in their sets or with positive weight), physically feasible,
    # ranked by budget surplus at p, and the first must be the returned rounding
    from jaxwalras.rounding import round_flat
    eco = jw.examples.fixed_cost_economy(12, n_buyers=7, n_sellers=3, n_goods=2, batch_shape=(10,))
    a = np.full(10, 0.1)
    ce = jw.convexified_equilibrium(eco, markup=a, method="lp")
    X, V, Y, C = (np.asarray(getattr(eco, f), float) for f in
                  ("buyer_bundles", "buyer_values", "seller_bundles", "seller_costs"))
    bm, sm = np.asarray(eco.buyer_mask), np.asarray(eco.seller_mask)
    p, wb, ws = (np.asarray(z, float) for z in (ce.prices, ce.buyer_weights, ce.seller_weights))
    cb, cs, feas, exc, bud, nmix, _, (kb, ks, kok) = round_flat(
        jw.MenuArrays(X, V, bm, Y, C, sm), p, a, wb, ws, sellers_only=False,
        max_combinations=4096, top_k=8)
    n_multi = 0
    for i in range(10):
        assert kok[i, 0] == feas[i]
        if feas[i]:
            np.testing.assert_array_equal(kb[i, 0], cb[i])
            np.testing.assert_array_equal(ks[i, 0], cs[i])
        ub = np.where(bm[i], V[i] - (1.1 * X[i]) @ p[i], -np.inf)
        us = np.where(sm[i], Y[i] @ p[i] - C[i], -np.inf)
        scores = []
        for c in np.nonzero(kok[i])[0]:
            x = X[i, np.arange(7), kb[i, c]].sum(0)
            y = Y[i, np.arange(3), ks[i, c]].sum(0)
            assert np.all(y - x >= -1e-9)
            for n in range(7):
                k = kb[i, c, n]
                if (wb[i, n] > 1e-9).sum() > 1:
                    assert wb[i, n, k] > 1e-9 or ub[n].max() - ub[n, k] <= 1e-7
                else:
                    assert wb[i, n, k] > 1e-9
            for f in range(3):
                k = ks[i, c, f]
                if (ws[i, f] > 1e-9).sum() > 1:
                    assert ws[i, f, k] > 1e-9 or us[f].max() - us[f, k] <= 1e-7
                else:
                    assert ws[i, f, k] > 1e-9
            scores.append(1.1 * p[i] @ x - p[i] @ y)
        assert scores == sorted(scores, reverse=True)
        n_multi += len(scores) > 1
    assert n_multi >= 1
