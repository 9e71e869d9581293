"""Combinatorial markets (Lucier 2013; Feldman, Gravin and Lucier 2013): set-function markets, demand queries, optimal allocation,
item-price Walrasian equilibria, ascending auction, CWE (bundling), best item-price welfare.

Every oracle here is written independently of the library: brute-force enumeration of
allocations / sets / prices, the *primal* configuration LP and a MILP through scipy, and the
paper's numbers (shoes, shirts)."""
from __future__ import annotations

import itertools

import jax
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from _hyp import examples
from scipy.optimize import LinearConstraint, linprog, milp

import jaxwalras as jw
from jaxwalras.examples import shirts, shoes


# ----------------------------------------------------------------------------- oracles
def sets_of(m):
    return range(2 ** m)


def members(s, m):
    return [j for j in range(m) if (s >> j) & 1]


def brute_opt(v):
    """max sum_i v_i(X_i) by enumerating every assignment of items to buyers / nobody."""
    n, t = v.shape
    m = t.bit_length() - 1
    best = 0.0
    for a in itertools.product(range(n + 1), repeat=m):
        masks = [sum(1 << j for j in range(m) if a[j] == i) for i in range(n)]
        best = max(best, sum(v[i, masks[i]] for i in range(n)))
    return best


def config_constraints(v):
    """Columns (buyer, set) and rows: one per buyer (<= 1 set), one per item (<= 1 holder)."""
    n, t = v.shape
    m = t.bit_length() - 1
    cols = [(i, s) for i in range(n) for s in range(1, t)]
    a = np.zeros((n + m, len(cols)))
    for c, (i, s) in enumerate(cols):
        a[i, c] = 1
        for j in members(s, m):
            a[n + j, c] = 1
    return cols, a


def primal_config_lp(v):
    """max sum v_i(S) x_iS, sum_S x_iS <= 1, sum_{i, S ni j} x_iS <= 1, x >= 0 (HiGHS)."""
    cols, a = config_constraints(v)
    res = linprog(-np.array([v[i, s] for i, s in cols]), A_ub=a, b_ub=np.ones(a.shape[0]),
                  bounds=(0, None), method="highs")
    assert res.status == 0
    return -res.fun


def milp_opt(v):
    """Integral configuration programme through scipy.optimize.milp."""
    cols, a = config_constraints(v)
    res = milp(-np.array([v[i, s] for i, s in cols]), integrality=np.ones(len(cols)),
               bounds=(0, 1), constraints=LinearConstraint(a, -np.inf, 1))
    return -res.fun


def utility(v_i, s, p):
    return v_i[s] - sum(p[j] for j in members(s, len(p)))


def is_walrasian_bf(v, prices, alloc, tol=1e-6):
    n, t = v.shape
    m = t.bit_length() - 1
    for i in range(n):
        best = max(utility(v[i], s, prices) for s in range(t))
        if utility(v[i], int(alloc[i]), prices) < best - tol:
            return False
    sold = 0
    for a in alloc:
        sold |= int(a)
    return all(prices[j] <= tol for j in range(m) if not (sold >> j) & 1)


def cwe_violations_bf(v, bundles, prices, holder, tol):
    """Independent brute-force CWE check: partition + every buyer gets a best set of bundles."""
    n, t = v.shape
    live = [k for k in range(len(bundles)) if bundles[k]]
    union, total = 0, 0
    for k in live:
        union |= int(bundles[k])
        total += int(bundles[k])
    bad = []
    if union != t - 1 or total != union:
        bad.append("not a partition")
    tol = np.broadcast_to(np.asarray(tol, float), (n,))   # one per buyer, or one for all
    for i in range(n):
        mine = [k for k in live if holder[k] == i]
        u_held = v[i, sum(int(bundles[k]) for k in mine)] - sum(prices[k] for k in mine)
        for r in range(len(live) + 1):
            for c in itertools.combinations(live, r):
                u = v[i, sum(int(bundles[k]) for k in c)] - sum(prices[k] for k in c)
                if u > u_held + tol[i]:
                    bad.append((i, c, u, u_held))
    return bad


def random_monotone(rng, n, m, integer=True, hi=10):
    """Random monotone tables: the free-disposal closure of random set values."""
    raw = rng.integers(0, hi, (n, 2 ** m)).astype(float) if integer else \
        rng.uniform(0, hi, (n, 2 ** m))
    raw[:, 0] = 0
    for s in range(2 ** m):           # closure by brute force (independent of the library)
        for j in range(m):
            if (s >> j) & 1:
                raw[:, s] = np.maximum(raw[:, s], raw[:, s ^ (1 << j)])
    return raw


# ----------------------------------------------------------------------------- market + validation
def test_constructors_match_definitions(rng):
    m, n = 4, 3
    w = rng.uniform(0, 5, (n, m))
    add = jw.SetFunctionMarket.additive(w).values
    ud = jw.SetFunctionMarket.unit_demand(w).values
    ba = jw.SetFunctionMarket.budget_additive(w, [3.0, 6.0, 100.0]).values
    clauses = rng.uniform(0, 5, (n, 3, m))
    xos = jw.SetFunctionMarket.from_xos(clauses).values
    sm = jw.SetFunctionMarket.single_minded([3, 12, 5], [7.0, 2.0, 4.0], m).values
    for s in sets_of(m):
        mem = members(s, m)
        for i in range(n):
            assert add[i, s] == pytest.approx(sum(w[i, j] for j in mem))
            assert ud[i, s] == pytest.approx(max([w[i, j] for j in mem], default=0.0))
            assert ba[i, s] == pytest.approx(min([3.0, 6.0, 100.0][i], sum(w[i, j] for j in mem)))
            assert xos[i, s] == pytest.approx(max(sum(clauses[i, k, j] for j in mem)
                                                  for k in range(3)))
            need = [3, 12, 5][i]
            assert sm[i, s] == ([7.0, 2.0, 4.0][i] if s & need == need else 0.0)


def test_from_xor_and_arrays_agree():
    bids = [[({0, 1}, 10.0), ({2}, 3.0)], [({1}, 4.0), ({0, 2}, 5.0), ({0, 1, 2}, 8.0)]]
    cm = jw.SetFunctionMarket.from_xor(bids, m=3)
    for i, bl in enumerate(bids):
        for s in range(8):
            want = max([val for items, val in bl if all((s >> j) & 1 for j in items)],
                       default=0.0)
            assert cm.values[i, s] == want
    masks = [[3, 4, 0], [2, 5, 7]]
    vals = [[10.0, 3.0, 0.0], [4.0, 5.0, 8.0]]
    np.testing.assert_array_equal(jw.SetFunctionMarket.from_xor_arrays(masks, vals, 3).values,
                                  cm.values)


@pytest.mark.parametrize("values, match", [
    (np.zeros((2, 3)), "2\\*\\*m entries"),
    (np.array([[1.0, 1, 1, 1]]), "v\\(empty set\\) must be 0"),
    (np.array([[0.0, 1, 1, 1], [0.0, 5, 2, 3]]), "buyer 1 .*v\\(\\{0\\}\\) = 5.0 > v\\(\\{0,1\\}\\)"),
    (np.array([[0.0, np.nan, 1, 1]]), "values: contains nan"),
    (np.zeros((1, 2 ** 17)), "at most 16 items"),
    ([[0, 1], [0]], "values: must be a rectangular array of numbers"),
    (np.array([["a", "b"]]), "numeric"),
])
def test_bad_tables(values, match):
    with pytest.raises((ValueError, TypeError), match=match):
        jw.SetFunctionMarket(values)


def test_bad_constructor_and_call_inputs():
    with pytest.raises(ValueError, match="item 5"):
        jw.SetFunctionMarket.from_xor([[({5}, 1.0)]], m=3)
    with pytest.raises(ValueError, match="value: must be a finite number in \\[0, 1e\\+300\\], got -1.0"):
        jw.SetFunctionMarket.from_xor([[({0}, -1.0)]], m=3)
    with pytest.raises(TypeError, match="m: number of items must be an int"):
        jw.SetFunctionMarket.from_xor([[({0}, 1.0)]], m=2.5)
    with pytest.raises(ValueError, match="weights: must be non-negative"):
        jw.SetFunctionMarket.additive([[1.0, -2.0]])
    with pytest.raises(ValueError, match="sets: bitmasks"):
        jw.SetFunctionMarket.single_minded([0], [1.0], 2)
    cm = shoes()
    with pytest.raises(ValueError, match="prices: axis 'm' has size 3"):
        jw.item_demand(cm, [1.0, 2.0, 3.0])
    with pytest.raises(TypeError, match="expected a jw.SetFunctionMarket"):
        jw.optimal_allocation(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="start: buyers' sets must be disjoint"):
        jw.combinatorial_walrasian_equilibrium(cm, start=[1, 3])
    with pytest.raises(ValueError, match="start: bitmasks must be < 2\\*\\*m"):
        jw.combinatorial_walrasian_equilibrium(cm, start=[4, 0])
    with pytest.raises(ValueError, match="start: shape \\(3, 2\\) does not broadcast"):
        jw.combinatorial_walrasian_equilibrium(jw.SetFunctionMarket(np.stack([cm.values] * 2)),
                                               start=np.zeros((3, 2), int))
    with pytest.raises(ValueError, match="rtol: must be a finite number in \\(0, 1\\), got 0.0"):
        jw.combinatorial_walrasian_equilibrium(cm, rtol=0.0)
    with pytest.raises(ValueError, match="bundles: the bundles of a market must be pairwise"):
        jw.bundle_demand(cm, [1, 3], [1.0, 1.0])
    with pytest.raises(ValueError, match="step: values are not all integers"):
        jw.ascending_auction(shirts(3))
    with pytest.raises(ValueError, match="exceed max_allocations"):
        jw.best_item_price_welfare(jw.SetFunctionMarket(np.zeros((9, 2 ** 8))))


def test_batch_indexing():
    v = np.stack([shoes().values, 2 * shoes().values])
    cm = jw.SetFunctionMarket(v)
    assert cm.batch_shape == (2,) and cm.n_buyers == 2 and cm.n_items == 2
    np.testing.assert_array_equal(cm[1].values, 2 * shoes().values)
    assert cm[:, None].batch_shape == (2, 1)
    with pytest.raises(IndexError):
        cm[0, 0]


# ----------------------------------------------------------------------------- demand kernels
def test_item_demand_matches_loop_and_batches(rng):
    n, m, b, q = 3, 5, 4, 6
    v = np.stack([random_monotone(rng, n, m, integer=False) for _ in range(b)])
    cm = jw.SetFunctionMarket(v)
    prices = rng.uniform(0, 3, (b, q, m))
    res = jw.item_demand(cm[:, None], prices)
    assert res.demand.shape == (b, q, n)
    for bb in range(b):
        for qq in range(q):
            single = jw.item_demand(cm[bb], prices[bb, qq])
            np.testing.assert_array_equal(single.demand, res.demand[bb, qq])
            for i in range(n):
                utils = [utility(v[bb, i], s, prices[bb, qq]) for s in range(2 ** m)]
                assert res.utility[bb, qq, i] == pytest.approx(max(utils), abs=1e-4)
                assert utils[int(res.demand[bb, qq, i])] == pytest.approx(max(utils), abs=1e-4)


def test_bundle_demand_matches_brute_force(rng):
    n, m = 3, 6
    v = random_monotone(rng, n, m, integer=False)
    bundles = np.array([3, 12, 16, 32, 0, 0])
    prices = np.array([1.0, 2.5, 0.5, 3.0, 0.0, 0.0])
    res = jw.bundle_demand(jw.SetFunctionMarket(v), bundles, prices)
    live = [0, 1, 2, 3]
    for i in range(n):
        best = max(v[i, sum(bundles[list(c)])] - prices[list(c)].sum()
                   for r in range(5) for c in itertools.combinations(live, r))
        ch = int(res.demand[i])
        assert ch < 16                      # never an empty slot
        slots = members(ch, 6)
        assert v[i, sum(bundles[slots])] - prices[slots].sum() == pytest.approx(best, abs=1e-4)
        assert float(res.utility[i]) == pytest.approx(best, abs=1e-4)


# ----------------------------------------------------------------------------- optimal allocation
def test_optimal_allocation_vs_brute_force_and_milp(rng):
    n, m, b = 3, 5, 6
    v = np.stack([random_monotone(rng, n, m) for _ in range(b)])
    oa = jw.optimal_allocation(jw.SetFunctionMarket(v))
    assert oa.welfare.shape == (b,) and oa.allocation.shape == (b, n)
    for k in range(b):
        bf = brute_opt(v[k])
        assert oa.welfare[k] == bf
        assert milp_opt(v[k]) == pytest.approx(bf)
        a = oa.allocation[k]
        assert sum(a) == np.bitwise_or.reduce(a)          # disjoint
        assert sum(v[k, i, a[i]] for i in range(n)) == bf
        single = jw.optimal_allocation(jw.SetFunctionMarket(v[k]))
        assert single.welfare == bf


def test_no_recompilation_for_same_shapes(rng):
    from jaxwalras import combinatorial as C
    v1 = np.stack([random_monotone(rng, 2, 4) for _ in range(3)])
    v2 = np.stack([random_monotone(rng, 2, 4) for _ in range(3)])
    jw.optimal_allocation(jw.SetFunctionMarket(v1))
    jw.item_demand(jw.SetFunctionMarket(v1), np.ones(4))
    sizes = (C._dp_jit._cache_size(), C._item_demand_jit._cache_size())
    for _ in range(3):
        jw.optimal_allocation(jw.SetFunctionMarket(v2))
        jw.item_demand(jw.SetFunctionMarket(v2), np.full(4, 2.0))
    assert (C._dp_jit._cache_size(), C._item_demand_jit._cache_size()) == sizes


# ----------------------------------------------------------------------------- paper examples
def test_shoes():
    cm = shoes()
    we = jw.walrasian_equilibrium(cm)
    assert not we.exists and we.welfare == 10 and we.lp_value == pytest.approx(11.0)
    assert jw.best_item_price_welfare(cm).welfare == pytest.approx(6.0)
    cwe = jw.combinatorial_walrasian_equilibrium(cm)
    assert cwe.welfare == pytest.approx(10.0)
    assert cwe_violations_bf(cm.values, cwe.bundles, cwe.prices, cwe.holder, 1e-6) == []
    # brute force over an integer price grid: no item prices support a WE
    for p in itertools.product(range(12), repeat=2):
        for alloc in [(3, 0), (0, 1), (0, 2), (0, 0)]:
            assert not is_walrasian_bf(cm.values, np.array(p, float), alloc)


@pytest.mark.parametrize("m", [3, 4, 5, 6])
def test_shirts(m):
    cm = shirts(m)
    assert not jw.walrasian_equilibrium(cm).exists
    assert primal_config_lp(cm.values) > m + 1e-9          # fractional optimum beats OPT
    bip = jw.best_item_price_welfare(cm)
    assert bip.welfare == pytest.approx(3 - 1 / m)
    # the supporting prices really make every buyer's set a demand (unsold items: any price)
    for i in range(2):
        best = max(utility(cm.values[i], s, bip.prices) for s in range(2 ** m))
        assert utility(cm.values[i], int(bip.allocation[i]), bip.prices) >= best - 1e-7
    cwe = jw.combinatorial_walrasian_equilibrium(cm)
    assert cwe.welfare == pytest.approx(m)
    assert cwe_violations_bf(cm.values, cwe.bundles, cwe.prices, cwe.holder, 1e-5) == []


def test_best_item_price_welfare_vs_price_grid(rng):
    """Independent check on integer markets: no allocation supported by a grid price vector
    beats it, and the LP-found prices really support its allocation."""
    n, m = 2, 3
    for _ in range(3):
        v = random_monotone(rng, n, m, hi=6)
        cm = jw.SetFunctionMarket(v)
        bip = jw.best_item_price_welfare(cm)
        for i in range(n):
            best = max(utility(v[i], s, bip.prices) for s in range(2 ** m))
            assert utility(v[i], int(bip.allocation[i]), bip.prices) >= best - 1e-7
        grid = np.arange(0, 7) * 0.5
        for p in itertools.product(grid, repeat=m):
            demands = []
            for i in range(n):
                us = [utility(v[i], s, p) for s in range(2 ** m)]
                demands.append([s for s in range(2 ** m) if us[s] >= max(us) - 1e-12])
            for combo in itertools.product(*demands):
                if sum(combo) == np.bitwise_or.reduce(combo):
                    assert sum(v[i, combo[i]] for i in range(n)) <= bip.welfare + 1e-9


# ----------------------------------------------------------------------------- Walrasian equilibrium
def test_we_existence_agrees_with_primal_lp(rng):
    """Existence iff the primal configuration LP (solved here, independently) equals the
    brute-force optimum; returned prices pass a brute-force WE check."""
    n, m, b = 3, 4, 10
    v = np.stack([random_monotone(rng, n, m, hi=8) for _ in range(b)])
    with jax.enable_x64(True):
        we = jw.walrasian_equilibrium(jw.SetFunctionMarket(v))
    agreed = []
    for k in range(b):
        opt, lp = brute_opt(v[k]), primal_config_lp(v[k])
        assert we.lp_value[k] == pytest.approx(lp, abs=1e-7)
        assert bool(we.exists[k]) == (lp <= opt + 1e-7)
        if we.exists[k]:
            assert (we.exists[k] and we.converged[k])
            assert is_walrasian_bf(v[k], we.prices[k], we.allocation[k])
        agreed.append(bool(we.exists[k]))
    assert any(agreed) and not all(agreed)      # the sample exercises both outcomes


def test_we_existence_vs_integer_price_grid():
    """Small integer markets: if some grid price vector supports a WE, the library must say
    a WE exists (and when none exists, no grid point may support one)."""
    rng = np.random.default_rng(7)
    for _ in range(6):
        v = random_monotone(rng, 2, 2, hi=5)
        we = jw.walrasian_equilibrium(jw.SetFunctionMarket(v))
        found = any(is_walrasian_bf(v, np.array(p, float), (a0, a1), tol=1e-9)
                    for p in itertools.product(np.arange(0, 11) * 0.5, repeat=2)
                    for a0 in range(4) for a1 in range(4) if a0 & a1 == 0)
        if found:
            assert we.exists
        if not we.exists:
            assert not found


def test_gross_substitutes_have_we_and_auction_agrees(rng):
    n, m, b = 3, 4, 6
    w = rng.integers(0, 9, (b, n, m)).astype(float)
    ud = jw.SetFunctionMarket.unit_demand(w)
    add = jw.SetFunctionMarket.additive(w)
    assert jw.is_gross_substitutes(ud).all() and jw.is_gross_substitutes(add).all()
    assert not jw.is_gross_substitutes(shoes())[0]          # Alice: complements
    for cm in (ud, add):
        we = jw.walrasian_equilibrium(cm)
        assert we.exists.all() and we.converged.all()
        we_min = jw.walrasian_equilibrium(cm, minimal_prices=True)
        au = jw.ascending_auction(cm)
        assert au.converged.all() and au.is_walrasian.all()
        for k in range(b):
            assert is_walrasian_bf(cm.values[k], au.prices[k], au.allocation[k])
            # the auction ends at the *minimal* Walrasian prices: below the LP's WE prices,
            # and equal to the LP's least-total-price dual optimum
            assert np.all(au.prices[k] <= we.prices[k] + 1e-6)
            np.testing.assert_allclose(au.prices[k], we_min.prices[k], atol=1e-6)
            assert au.iterations[k] == au.prices[k].max()
    # unit demand + unit supply: minimal WE prices are the VCG payments (Leonard 1983):
    # the item held by buyer i costs OPT(without i) - (OPT - v_i(item)); unsold items 0
    au = jw.ascending_auction(ud)
    for k in range(b):
        v = ud.values[k]
        opt = brute_opt(v)
        want = np.zeros(m)
        for i in range(n):
            s_i = int(au.allocation[k, i])
            if s_i:
                others = np.delete(v, i, axis=0)
                want[members(s_i, m)[0]] = brute_opt(others) - (opt - v[i, s_i])
        np.testing.assert_allclose(au.prices[k], want, atol=1e-6)


# ----------------------------------------------------------------------------- CWE
def default_cwe_rtol():
    return 1e-6 if jax.numpy.result_type(float) == jax.numpy.float64 else 1e-5


def _check_cwe(cm, res, start_w, rtol=None):
    """Brute-force CWE check at the REQUESTED tolerance rtol * max_S v_i(S) of each buyer
    (never the tolerance the result reports about itself), the half-welfare bound, and
    that the result did not loosen its tolerance."""
    n = cm.n_buyers
    rtol = default_cwe_rtol() if rtol is None else rtol
    for idx in np.ndindex(*cm.batch_shape):
        v = cm.values[idx]
        tol_i = rtol * v.max(axis=-1)
        bad = cwe_violations_bf(v, res.bundles[idx], res.prices[idx], res.holder[idx], tol_i)
        assert bad == [], bad
        assert res.welfare[idx] >= start_w[idx] / 2 - tol_i.sum()
        alloc = res.allocation[idx]
        assert res.welfare[idx] == pytest.approx(sum(v[i, alloc[i]] for i in range(n)))
        np.testing.assert_allclose(res.tol[idx], tol_i, rtol=1e-12)
    assert res.converged.all() and (res.status == 0).all()


def test_cwe_random_xor_markets_default_start(rng):
    n, m, b = 4, 5, 8
    masks = rng.integers(1, 2 ** m, (b, n, 3))
    vals = rng.integers(1, 20, (b, n, 3)).astype(float)
    cm = jw.SetFunctionMarket.from_xor_arrays(masks, vals, m)
    res = jw.combinatorial_walrasian_equilibrium(cm)
    opt = np.array([brute_opt(cm.values[k]) for k in range(b)])
    np.testing.assert_allclose(res.start_welfare, opt)
    _check_cwe(cm, res, opt)


def test_cwe_batch_matches_single(rng):
    n, m, b = 3, 4, 5
    cm = jw.SetFunctionMarket(np.stack([random_monotone(rng, n, m, integer=False)
                                        for _ in range(b)]))
    res = jw.combinatorial_walrasian_equilibrium(cm)
    for k in range(b):
        one = jw.combinatorial_walrasian_equilibrium(cm[k])
        np.testing.assert_array_equal(one.bundles, res.bundles[k])
        np.testing.assert_array_equal(one.holder, res.holder[k])
        np.testing.assert_allclose(one.prices, res.prices[k], rtol=1e-6)


@settings(max_examples=examples(15))
@given(seed=st.integers(0, 2 ** 31 - 1), kind=st.sampled_from(["xor", "xos", "monotone"]))
def test_cwe_property_random_starts(seed, kind):
    """Any start allocation: the result is a CWE (brute force) keeping half its welfare."""
    rng = np.random.default_rng(seed)
    n, m = 3, 4
    if kind == "xor":
        cm = jw.SetFunctionMarket.from_xor_arrays(rng.integers(1, 16, (n, 3)),
                                                  rng.integers(1, 9, (n, 3)), m)
    elif kind == "xos":
        cm = jw.SetFunctionMarket.from_xos(rng.integers(0, 5, (n, 2, m)).astype(float))
    else:
        cm = jw.SetFunctionMarket(random_monotone(rng, n, m, hi=6))
    owner = rng.integers(0, n + 1, m)               # random start (n = unallocated)
    start = np.array([sum(1 << j for j in range(m) if owner[j] == i) for i in range(n)])
    res = jw.combinatorial_walrasian_equilibrium(cm, start=start)
    sw = sum(cm.values[i, start[i]] for i in range(n))
    assert res.start_welfare == pytest.approx(sw)
    _check_cwe(jw.SetFunctionMarket(cm.values[None]), jax.tree.map(lambda x: np.asarray(x)[None], res),
               np.array([sw]))


def test_cwe_exact_tie_price_war_terminates():
    """Three unit-demand buyers with equal values for three identical single-item parts plus
    ties everywhere: the dynamics must stop (tolerance) with a valid CWE."""
    v = jw.SetFunctionMarket.unit_demand(np.full((4, 3), 5.0))
    res = jw.combinatorial_walrasian_equilibrium(v, start=[1, 2, 4, 0])
    _check_cwe(jw.SetFunctionMarket(v.values[None]), jax.tree.map(lambda x: np.asarray(x)[None], res),
               np.array([15.0]))
    assert res.welfare >= 7.5
    # the price-war jump resolves the war without loosening the tolerance
    np.testing.assert_allclose(res.tol, jw.combinatorial_walrasian_equilibrium(
        v, start=[1, 2, 4, 0], patience=10 ** 9).tol)
    assert res.iterations < 1000


def test_cwe_price_wars_on_cats_scheduling_keep_tolerance():
    """CATS scheduling has many exact ties (a bidder values all feasible intervals equally):
    every market must finish at the requested tolerance and be a valid CWE."""
    cm = jw.cats.scheduling(n_bidders=6, m=8, seed=1, n_markets=64)
    res = jw.combinatorial_walrasian_equilibrium(cm, rtol=1e-5)
    requested = 1e-5 * cm.values.max(axis=-1)                # each buyer's own scale
    np.testing.assert_allclose(res.tol, requested)
    assert (res.regret <= requested).all() and res.converged.all()
    assert (res.welfare >= res.start_welfare / 2 - requested.sum(-1)).all()
    for k in range(0, 64, 9):                                  # brute force, requested tol
        assert cwe_violations_bf(cm.values[k], res.bundles[k], res.prices[k], res.holder[k],
                                 requested[k]) == []


def test_cwe_loosened_tolerance_is_reported_not_converged():
    """patience=1 forces the last-resort loosening (tol x10 per purchase) on CATS
    scheduling: every market is checked by brute force at the REQUESTED tolerance, and
    `converged` must agree with that check -- a market that is a CWE only at the loosened
    tolerance is reported TOLERANCE_LOOSENED, never OK."""
    cm = jw.cats.scheduling(n_bidders=6, m=8, seed=1, n_markets=16)
    res = jw.combinatorial_walrasian_equilibrium(cm, rtol=1e-5, patience=1)
    requested = 1e-5 * cm.values.max(axis=-1)
    n_loosened = 0
    for k in range(16):
        ok = cwe_violations_bf(cm.values[k], res.bundles[k], res.prices[k], res.holder[k],
                               requested[k]) == []
        assert bool(res.converged[k]) == ok, k
        assert (int(res.status[k]) == jw.Status.OK) == ok, k
        assert np.all(res.tol[k] >= requested[k] * (1 - 1e-12))      # never tightened
        if not ok:
            n_loosened += 1
            assert int(res.status[k]) == jw.Status.TOLERANCE_LOOSENED
            assert (res.tol[k] > requested[k]).any()           # reports what it used
            assert cwe_violations_bf(cm.values[k], res.bundles[k], res.prices[k],
                                     res.holder[k], res.tol[k] * (1 + 1e-9)) == []
    assert n_loosened >= 1                    # the path is exercised on this draw


def test_check_cwe_reports_violations():
    cm = shoes()
    assert jw.check_cwe(cm, [3, 0], [10.0, 0.0], [0, -1]) == []
    assert jw.check_cwe(cm, [1, 2], [4.0, 4.0], [0, 1])   # Alice cannot use one shoe
    assert "partition" in jw.check_cwe(cm, [1, 0], [1.0, 0.0], [1, -1])[0]


def test_cwe_float64_tight_tolerance(rng):
    """Under x64 the dynamics run in float64 with rtol 1e-6: check validity tightly."""
    n, m, b = 3, 5, 4
    cm = jw.SetFunctionMarket(np.stack([random_monotone(rng, n, m, integer=False)
                                        for _ in range(b)]))
    with jax.enable_x64(True):
        res = jw.combinatorial_walrasian_equilibrium(cm)
    opt = np.array([brute_opt(cm.values[k]) for k in range(b)])
    _check_cwe(cm, res, opt, rtol=1e-6)


def test_cwe_bad_patience_and_chunk():
    with pytest.raises(ValueError, match="patience: must be an integer >= 1, got 0"):
        jw.combinatorial_walrasian_equilibrium(shoes(), patience=0)
    with pytest.raises(ValueError, match="rounds_per_call: must be an integer >= 1, got 0"):
        jw.combinatorial_walrasian_equilibrium(shoes(), rounds_per_call=0)


def test_demo_prints_table():
    from jaxwalras.demo import demo_combinatorial
    lines = []
    demo_combinatorial(print_fn=lines.append)
    text = "\n".join(lines)
    assert "| shoes | 10 | no | 6 | 10 | 1 |" in text
    assert "shirts(m=6) | 6 | no | 2.833 | 6" in text and "CATS regions" in text
