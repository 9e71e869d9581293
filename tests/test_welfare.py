"""Bound-form first welfare theorem and the efficient-allocation MILP, against brute force."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from _hyp import examples

import jaxwalras as jw
from jaxwalras.examples.milgrom_watt import TABLE1_QUANTITIES as Q, TABLE1_VALUES as VV


# ---------------------------------------------------------------- independent oracles
def brute_force_optimum(eco):
    """Max welfare over every combination of pure options (tiny economies only)."""
    X, V, Y, C = (np.asarray(getattr(eco, f)) for f in
                  ("buyer_bundles", "buyer_values", "seller_bundles", "seller_costs"))
    bm, sm = np.asarray(eco.buyer_mask), np.asarray(eco.seller_mask)
    opts = [list(np.nonzero(bm[n])[0]) for n in range(X.shape[0])] + \
           [list(np.nonzero(sm[f])[0]) for f in range(Y.shape[0])]
    N = X.shape[0]
    best = -np.inf
    for combo in itertools.product(*opts):
        x = sum(X[n, combo[n]] for n in range(N))
        y = sum(Y[f, combo[N + f]] for f in range(Y.shape[0]))
        if np.all(x <= y + 1e-12):
            w = sum(V[n, combo[n]] for n in range(N)) - sum(C[f, combo[N + f]] for f in range(Y.shape[0]))
            best = max(best, w)
    return best


def loop_bound(eco, p, cb, cs):
    """The bound's terms written out agent by agent."""
    X, V, Y, C = (np.asarray(getattr(eco, f)) for f in
                  ("buyer_bundles", "buyer_values", "seller_bundles", "seller_costs"))
    bm, sm = np.asarray(eco.buyer_mask), np.asarray(eco.seller_mask)
    tot = 0.0
    for n in range(X.shape[0]):
        best = max(V[n, k] - p @ X[n, k] for k in range(X.shape[1]) if bm[n, k])
        tot += best - (V[n, cb[n]] - p @ X[n, cb[n]])
    for f in range(Y.shape[0]):
        best = max(p @ Y[f, k] - C[f, k] for k in range(Y.shape[1]) if sm[f, k])
        tot += best - (p @ Y[f, cs[f]] - C[f, cs[f]])
    x = sum(X[n, cb[n]] for n in range(X.shape[0]))
    y = sum(Y[f, cs[f]] for f in range(Y.shape[0]))
    return tot + p @ (y - x)


def tiny_economy(seed, N=3, F=2, K=3, L=2):
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 3, (N, K, L)).astype(float)
    V = np.round(X.sum(-1) * rng.uniform(0.3, 1.5, (N, K)), 3)
    Y = rng.integers(0, 4, (F, K, L)).astype(float)
    C = np.round(Y.sum(-1) * rng.uniform(0.2, 1.0, (F, K)) + rng.uniform(0, 1, (F, 1)), 3)
    X[:, 0] = 0
    V[:, 0] = 0
    Y[:, 0] = 0
    C[:, 0] = 0
    return jw.MenuEconomy(X, V, Y, C)


# ---------------------------------------------------------------- efficient allocation
def test_table1_optimum_matches_subset_enumeration():
    best = -np.inf
    for S in itertools.product([0, 1], repeat=10):
        x = np.dot(S, Q)
        units = np.ceil(x - 1e-12)
        if units <= 6:
            best = max(best, np.dot(S, Q * VV) - 0.5 * units)
    opt = jw.efficient_allocation(jw.examples.milgrom_watt_table1())
    assert bool(opt.converged) and int(opt.status) == jw.Status.OK
    assert float(opt.welfare) == pytest.approx(best, abs=1e-9)
    assert float(opt.welfare) == pytest.approx(0.7221, abs=1e-9)


def test_milp_matches_brute_force_on_batch():
    ecos = [tiny_economy(s) for s in range(6)]
    batch = jw.MenuEconomy.stack(ecos)
    opt = jw.efficient_allocation(batch)
    assert opt.welfare.shape == (6,) and opt.buyer_choice.shape == (6, 3)
    for i, e in enumerate(ecos):
        assert opt.welfare[i] == pytest.approx(brute_force_optimum(e), abs=1e-9)
        # the returned allocation is feasible and has the reported welfare
        wb = jw.welfare_bound(e, np.zeros(2), opt.buyer_choice[i], opt.seller_choice[i])
        assert bool(wb.feasible) and float(wb.welfare) == pytest.approx(opt.welfare[i], abs=1e-9)


def test_milp_convex_buyers_matches_lp_oracle():
    from scipy.optimize import linprog
    e = tiny_economy(3)
    opt = jw.efficient_allocation(e, convex_buyers=True)
    X, V, Y, C = e.buyer_bundles, e.buyer_values, e.seller_bundles, e.seller_costs
    best = -np.inf
    for combo in itertools.product(range(3), repeat=2):      # sellers pure, buyers LP
        y = Y[0, combo[0]] + Y[1, combo[1]]
        cost = C[0, combo[0]] + C[1, combo[1]]
        N, K = V.shape
        A_eq = np.kron(np.eye(N), np.ones(K))
        A_ub = np.stack([X[:, :, l].ravel() for l in range(2)])
        r = linprog(-V.ravel(), A_ub=A_ub, b_ub=y, A_eq=A_eq, b_eq=np.ones(N), bounds=(0, 1))
        best = max(best, -r.fun - cost)
    assert float(opt.welfare) == pytest.approx(best, abs=1e-7)
    assert float(opt.welfare) >= brute_force_optimum(e) - 1e-9


def test_efficient_allocation_errors():
    e = tiny_economy(0)
    with pytest.raises(ValueError, match="max_variables"):
        jw.efficient_allocation(e, max_variables=3)
    with pytest.raises(ValueError, match="time_limit"):
        jw.efficient_allocation(e, time_limit=0)
    with pytest.raises(TypeError, match="MenuEconomy"):
        jw.efficient_allocation("economy")


# ---------------------------------------------------------------- welfare bound
@settings(max_examples=examples(25))
@given(seed=st.integers(0, 10_000), data=st.data())
def test_bound_holds_and_matches_loop(seed, data):
    e = tiny_economy(seed)
    rng = np.random.default_rng(seed)
    p = rng.uniform(0, 2, 2).round(2)
    cb = np.array([data.draw(st.integers(0, 2)) for _ in range(3)])
    cs = np.array([data.draw(st.integers(0, 2)) for _ in range(2)])
    wb = jw.welfare_bound(e, p, cb, cs)
    assert float(wb.bound) == pytest.approx(loop_bound(e, p, cb, cs), abs=1e-9)
    assert np.all(wb.buyer_losses >= 0) and np.all(wb.seller_losses >= 0)
    if bool(wb.feasible):
        assert brute_force_optimum(e) - float(wb.welfare) <= float(wb.bound) + 1e-9


def test_bound_with_weights_equals_choices_for_one_hot():
    e = tiny_economy(1)
    cb, cs = np.array([1, 0, 2]), np.array([2, 1])
    w1 = jw.welfare_bound(e, [0.3, 0.7], cb, cs)
    w2 = jw.welfare_bound(e, [0.3, 0.7], np.eye(3)[cb], np.eye(3)[cs])
    assert float(w1.bound) == pytest.approx(float(w2.bound))


def test_bound_batch_equals_per_item():
    ecos = [tiny_economy(s) for s in range(4)]
    batch = jw.MenuEconomy.stack(ecos)
    P = np.random.default_rng(0).uniform(0, 1, (4, 2))
    cb = np.array([[1, 0, 2], [0, 0, 0], [2, 2, 1], [1, 1, 1]])
    cs = np.array([[1, 2], [0, 0], [2, 2], [1, 0]])
    wb = jw.welfare_bound(batch, P, cb, cs)
    assert wb.bound.shape == (4,) and wb.buyer_losses.shape == (4, 3)
    for i in range(4):
        wi = jw.welfare_bound(ecos[i], P[i], cb[i], cs[i])
        assert wb.bound[i] == pytest.approx(float(wi.bound))
        assert wb.revenue_deficit[i] == pytest.approx(float(wi.revenue_deficit))


def test_welfare_bound_input_errors():
    e = tiny_economy(0)
    with pytest.raises(ValueError, match="prices"):
        jw.welfare_bound(e, [-1.0, 0.0], [0, 0, 0], [0, 0])
    with pytest.raises(ValueError, match="prices"):
        jw.welfare_bound(e, [1.0, 0.0, 2.0], [0, 0, 0], [0, 0])
    with pytest.raises(ValueError, match="buyer_allocation"):
        jw.welfare_bound(e, [1.0, 0.0], [0, 0], [0, 0])
    with pytest.raises(ValueError, match="buyer_allocation"):
        jw.welfare_bound(e, [1.0, 0.0], [0, 5, 0], [0, 0])
    with pytest.raises(ValueError, match="seller_allocation"):
        jw.welfare_bound(e, [1.0, 0.0], [0, 0, 0], np.full((2, 3), 0.5))
    with pytest.raises(TypeError, match="buyer_allocation"):
        jw.welfare_bound(e, [1.0, 0.0], ["a", "b", "c"], [0, 0])
    padded = jw.MenuEconomy.stack([e, tiny_economy(1, K=2)])
    with pytest.raises(ValueError, match="masked"):
        jw.welfare_bound(padded[1], [1.0, 0.0], [0, 0, 2], [0, 0])
