"""Numerics of the combinatorial family (issue 11): money units 1e-6 / 1 / 1e6 change no
decision and scale prices exactly; a market alone equals itself inside shuffled batches
with markets a million times larger; values beyond the float32 range; tolerances relative
to the market and per buyer; every class of bad option.

Oracles share no code with the library: enumeration of allocations, sets and sets of
bundles, the primal configuration LP written here (scipy, on the unit-scale integer
values), and the CWE conditions checked by brute force at the REQUESTED tolerance
``rtol * max_S v_i(S)`` of every buyer.
"""
from __future__ import annotations

import itertools

import jax
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.optimize import linprog

import jaxwalras as jw

SCALES = (1e-6, 1.0, 1e6)


# ----------------------------------------------------------------------------- oracles --
def members(s, m):
    return [j for j in range(m) if (s >> j) & 1]


def brute_opt(v):
    n, t = v.shape
    m = t.bit_length() - 1
    best = 0.0
    for a in itertools.product(range(n + 1), repeat=m):
        best = max(best, sum(v[i, sum(1 << j for j in range(m) if a[j] == i)]
                             for i in range(n)))
    return best


def primal_lp(v):
    """max sum v_i(S) x_iS, each buyer <= 1 set, each item <= 1 holder (HiGHS via scipy)."""
    n, t = v.shape
    m = t.bit_length() - 1
    cols = [(i, s) for i in range(n) for s in range(1, t)]
    a = np.zeros((n + m, len(cols)))
    for c, (i, s) in enumerate(cols):
        a[i, c] = 1
        for j in members(s, m):
            a[n + j, c] = 1
    res = linprog(-np.array([v[i, s] for i, s in cols]), A_ub=a, b_ub=np.ones(n + m),
                  bounds=(0, None), method="highs")
    return -res.fun


def we_exists_oracle(v):
    """Bikhchandani-Mamer on unit-scale integer values: LP value == OPT."""
    return primal_lp(v) <= brute_opt(v) + 1e-7


def we_regret(v, prices, alloc):
    n, t = v.shape
    m = len(prices)
    worst = 0.0
    for i in range(n):
        us = [v[i, s] - sum(prices[j] for j in members(s, m)) for s in range(t)]
        worst = max(worst, max(us) - us[int(alloc[i])])
    sold = 0
    for a in alloc:
        sold |= int(a)
    unsold = [prices[j] for j in range(m) if not (sold >> j) & 1]
    return max([worst] + unsold)


def cwe_violations(v, bundles, prices, holder, tol):
    """Partition + every buyer within tol[i] of her best set of bundles (brute force)."""
    n, t = v.shape
    live = [k for k in range(len(bundles)) if bundles[k]]
    bad = []
    union = total = 0
    for k in live:
        union |= int(bundles[k])
        total += int(bundles[k])
    if union != t - 1 or total != union:
        bad.append("not a partition")
    for i in range(n):
        mine = [k for k in live if holder[k] == i]
        held = v[i, sum(int(bundles[k]) for k in mine)] - sum(prices[k] for k in mine)
        for r in range(len(live) + 1):
            for c in itertools.combinations(live, r):
                u = v[i, sum(int(bundles[k]) for k in c)] - sum(prices[k] for k in c)
                if u > held + tol[i]:
                    bad.append((i, c, u, held))
    return bad


def closure(raw, m):
    """Free-disposal closure (monotone table), by brute force."""
    out = raw.copy()
    out[..., 0] = 0
    for s in range(2 ** m):
        for j in range(m):
            if (s >> j) & 1:
                out[..., s] = np.maximum(out[..., s], out[..., s ^ (1 << j)])
    return out


def cwe_rtol():
    return 1e-6 if jax.numpy.result_type(float) == jax.numpy.float64 else 1e-5


# -------------------------------------------- scale-free and batch-independent (1, 2) --
@st.composite
def tables(draw, n=3, m=3):
    kind = draw(st.sampled_from(["monotone", "xor", "unit"]))
    ints = lambda shape, lo, hi: np.array(draw(st.lists(  # noqa: E731
        st.integers(lo, hi), min_size=int(np.prod(shape)), max_size=int(np.prod(shape))))
                                          ).reshape(shape).astype(float)
    if kind == "monotone":
        return closure(ints((n, 2 ** m), 0, 9), m)
    if kind == "unit":
        return jw.SetFunctionMarket.unit_demand(ints((n, m), 0, 9)).values
    masks = ints((n, 2), 1, 2 ** m - 1).astype(int)
    return jw.SetFunctionMarket.from_xor_arrays(masks, ints((n, 2), 1, 9), m).values


@given(tables(), st.randoms(use_true_random=False))
def test_property_money_units_and_batch_mates_change_nothing(v, rnd):
    m = 3
    n = v.shape[0]
    rng = np.random.default_rng(rnd.randint(0, 2**31))
    others = [closure(rng.integers(0, 10, (n, 2 ** m)).astype(float), m) * 1e6
              for _ in range(4)]
    entries = [("me", c, v * c) for c in SCALES] + [("other", 1e6, o) for o in others]
    order = rnd.sample(range(len(entries)), len(entries))
    batch = jw.SetFunctionMarket(np.stack([entries[k][2] for k in order]))
    pos = {entries[k][1]: p for p, k in enumerate(order) if entries[k][0] == "me"}
    one = jw.SetFunctionMarket(v)

    # WE existence: the same at every scale, alone or batched, and right (oracle)
    exists = bool(we_exists_oracle(v))
    we1, web = jw.walrasian_equilibrium(one), jw.walrasian_equilibrium(batch)
    assert bool(we1.exists) == exists and we1.converged
    assert web.converged.all()
    for c, p in pos.items():
        assert bool(web.exists[p]) == exists
        if exists:               # prices of a Walrasian equilibrium in that money unit
            assert we_regret(v * c, web.prices[p], web.allocation[p]) <= 1e-7 * 9 * c
        np.testing.assert_allclose(web.prices[p], we1.prices * c, rtol=1e-9, atol=1e-12 * c)
    for p, k in enumerate(order):
        if entries[k][0] == "other":
            assert bool(web.exists[p]) == bool(we_exists_oracle(entries[k][2] / 1e6))

    # CWE: valid at the REQUESTED tolerance at every scale; the same bundles and holders,
    # prices scaled, and a market alone equals itself in the batch
    rtol = cwe_rtol()
    c1, cb = (jw.combinatorial_walrasian_equilibrium(one),
              jw.combinatorial_walrasian_equilibrium(batch))
    assert c1.converged and cb.converged.all()
    for c, p in pos.items():
        tol = rtol * (v * c).max(axis=-1)
        assert cwe_violations(v * c, cb.bundles[p], cb.prices[p], cb.holder[p], tol) == []
        np.testing.assert_array_equal(cb.bundles[p], c1.bundles)
        np.testing.assert_array_equal(cb.holder[p], c1.holder)
        np.testing.assert_allclose(cb.prices[p], c1.prices * c, rtol=1e-12)
        assert cb.welfare[p] >= brute_opt(v) * c / 2 - tol.sum()

    # item-price auction with the step in the same money unit: prices scale exactly
    a1 = jw.ascending_auction(one)
    ab = jw.ascending_auction(batch, step=np.array([entries[k][1] for k in order]))
    assert ab.converged.all()
    for c, p in pos.items():
        np.testing.assert_array_equal(ab.prices[p] / c, a1.prices)
        assert bool(ab.is_walrasian[p]) == bool(a1.is_walrasian)
        assert ab.iterations[p] == a1.iterations


def test_gross_substitutes_auction_prices_are_vcg_at_every_scale():
    """Unit demand, unit supply: minimal Walrasian prices are VCG payments (Leonard 1983)."""
    rng = np.random.default_rng(31)
    w = rng.integers(0, 9, (5, 3, 3)).astype(float)
    for c in SCALES:
        cm = jw.SetFunctionMarket.unit_demand(w * c)
        au = jw.ascending_auction(cm, step=c)
        assert au.converged.all() and au.is_walrasian.all()
        for k in range(5):
            v = cm.values[k] / c
            opt = brute_opt(v)
            want = np.zeros(3)
            for i in range(3):
                s_i = int(au.allocation[k, i])
                if s_i:
                    want[members(s_i, 3)[0]] = brute_opt(np.delete(v, i, 0)) - (opt - v[i, s_i])
            np.testing.assert_allclose(au.prices[k], want * c, rtol=1e-12)


# ----------------------------------------------------- values beyond float32 (item 1) --
@pytest.mark.parametrize("c", [1e-30, 1e39, 1e250])
def test_values_beyond_float32_range(c):
    rng = np.random.default_rng(32)
    v = np.stack([closure(rng.integers(0, 10, (3, 8)).astype(float), 3) for _ in range(3)])
    cm, ref = jw.SetFunctionMarket(v * c), jw.SetFunctionMarket(v)
    oa = jw.optimal_allocation(cm)
    assert oa.converged.all() and np.isfinite(oa.welfare).all()
    np.testing.assert_allclose(oa.welfare, [brute_opt(x) * c for x in v], rtol=1e-12)
    we = jw.walrasian_equilibrium(cm)
    assert we.converged.all()
    assert we.exists.tolist() == [bool(we_exists_oracle(x)) for x in v]
    cwe = jw.combinatorial_walrasian_equilibrium(cm)
    assert cwe.converged.all() and np.isfinite(cwe.prices).all()
    for k in range(3):
        tol = cwe_rtol() * cm.values[k].max(axis=-1)
        assert cwe_violations(cm.values[k], cwe.bundles[k], cwe.prices[k], cwe.holder[k],
                              tol) == []
    p = rng.uniform(0, 5, (3, 3))
    d, d1 = jw.item_demand(cm, p * c), jw.item_demand(ref, p)
    np.testing.assert_array_equal(d.demand, d1.demand)
    np.testing.assert_allclose(d.utility, d1.utility * c, rtol=1e-12)


def test_demand_queries_huge_prices_and_brute_force():
    rng = np.random.default_rng(33)
    v = closure(rng.uniform(0, 5, (3, 16)), 4)
    cm = jw.SetFunctionMarket(v)
    for p in (rng.uniform(0, 3, 4), np.array([1e300, 0.5, 1e200, 0.0])):
        d = jw.item_demand(cm, p)
        for i in range(3):
            us = [v[i, s] - sum(p[j] for j in members(s, 4)) for s in range(16)]
            assert us[int(d.demand[i])] == max(us) and d.utility[i] == max(us)
    bundles, prices = np.array([3, 4, 8, 0]), np.array([2.0, 1e300, 0.3, 0.0])
    bd = jw.bundle_demand(cm, bundles, prices)
    for i in range(3):
        best = max(v[i, sum(bundles[list(c)])] - prices[list(c)].sum()
                   for r in range(4) for c in itertools.combinations([0, 1, 2], r))
        assert bd.utility[i] == best


# -------------------------------------------------- per-buyer tolerance (items 1, 6) --
def test_cwe_tolerance_is_each_buyers_own_scale():
    """Buyer 1 values everything a million times less than buyer 0. With one market-wide
    tolerance (1e-5 x 1e6 = 10) she could be left wanting a part priced at half her value
    (gain 0.5); her own tolerance (1e-5) makes the dynamics serve her."""
    v = np.zeros((2, 4))
    v[0] = [0, 1e6, 0, 1e6]        # buyer 0 only wants item 0
    v[1] = [0, 0, 1.0, 1.0]        # buyer 1 only wants item 1
    cm = jw.SetFunctionMarket(v)
    res = jw.combinatorial_walrasian_equilibrium(cm, start=[1, 2], rtol=1e-5)
    assert res.converged
    np.testing.assert_allclose(res.tol, [10.0, 1e-5])
    assert cwe_violations(v, res.bundles, res.prices, res.holder, [10.0, 1e-5]) == []
    assert res.allocation.tolist() == [1, 2] and res.welfare == 1e6 + 1.0
    assert jw.check_cwe(cm, res.bundles, res.prices, res.holder, rtol=1e-5) == []
    # moving item 1's bundle away from her is a violation at her scale
    assert jw.check_cwe(cm, [1, 2], [5e5, 0.5], [0, -1], rtol=1e-5) == [
        "buyer 1 holds utility 0 but can get 0.5"]


def test_gross_substitutes_test_is_scale_free():
    rng = np.random.default_rng(34)
    w = rng.uniform(0, 3, (4, 2, 2, 3))
    for c in SCALES:
        xos = jw.SetFunctionMarket.from_xos(w * c)
        add = jw.SetFunctionMarket.additive(w[:, :, 0] * c)
        assert jw.is_gross_substitutes(add).all()
        np.testing.assert_array_equal(jw.is_gross_substitutes(xos),
                                      jw.is_gross_substitutes(jw.SetFunctionMarket.from_xos(w)))


# ---------------------------------------------------------- bad options (item 4) -----
@pytest.mark.parametrize("bad, exc, msg", [
    (-1.0, ValueError, r"rtol: must be a finite number in \[0, 1\), got -1.0"),
    (float("nan"), ValueError, r"rtol: must be a finite number in \[0, 1\), got nan"),
    (float("inf"), ValueError, r"rtol: must be a finite number in \[0, 1\), got inf"),
    (1.0, ValueError, r"rtol: must be a finite number in \[0, 1\), got 1.0"),
    ("1e-6", TypeError, r"rtol: must be a real number, got '1e-6' \(str\)"),
    (True, TypeError, r"rtol: must be a real number, got True"),
])
def test_bad_rtol_everywhere(bad, exc, msg):
    cm = jw.examples.shoes()
    with pytest.raises(exc, match=msg):
        jw.walrasian_equilibrium(cm, rtol=bad)
    with pytest.raises(exc, match=msg.replace(r"\[0, 1\)", r"\(0, 1\)")):
        jw.combinatorial_walrasian_equilibrium(cm, rtol=bad)
    with pytest.raises(exc, match=msg):
        jw.is_gross_substitutes(cm, rtol=bad)
    with pytest.raises(exc, match=msg):
        jw.check_cwe(cm, [3, 0], [10.0, 0.0], [0, -1], rtol=bad)


def test_bad_options_and_values():
    cm = jw.examples.shoes()
    with pytest.raises(ValueError, match=r"rtol: must be a finite number in \(0, 1\), got 0"):
        jw.combinatorial_walrasian_equilibrium(cm, rtol=0)
    assert bool(jw.walrasian_equilibrium(cm, rtol=0).exists) is False     # 0 is allowed
    for kw, exc, msg in [
        (dict(step=0.0), ValueError, r"step: must be a finite number > 0, got 0.0"),
        (dict(step=float("nan")), ValueError, r"step: must be a finite number > 0, got nan"),
        (dict(step=-1), ValueError, r"step: must be a finite number > 0, got -1"),
        (dict(step=1e-9), ValueError, r"step: the auction raises prices by step = 1e-09 per "
                                      r"round, and max value / step = 1e\+10 exceeds 16777216"),
        (dict(max_steps=0), ValueError, r"max_steps: must be an integer in \[1, 2147483647\], "
                                        r"got 0"),
        (dict(max_steps=1.5), TypeError, r"max_steps: must be an integer, got 1.5"),
    ]:
        with pytest.raises(exc, match=msg):
            jw.ascending_auction(cm, **kw)
    with pytest.raises(ValueError, match=r"chunk_size: must be an integer >= 1, got 0"):
        jw.walrasian_equilibrium(cm, chunk_size=0)
    with pytest.raises(ValueError, match=r"max_allocations: must be an integer >= 1"):
        jw.best_item_price_welfare(cm, max_allocations=0)
    with pytest.raises(ValueError, match=r"prices: must be non-negative, found -1.0"):
        jw.item_demand(cm, [-1.0, 0.0])
    with pytest.raises(ValueError, match=r"prices: contains nan"):
        jw.bundle_demand(cm, [3, 0], [np.nan, 0.0])
    with pytest.raises(ValueError, match=r"atol: must be a finite number >= 0, got -1"):
        jw.check_cwe(cm, [3, 0], [10.0, 0.0], [0, -1], atol=-1)
    with pytest.raises(ValueError, match=r"holder: entries must be -1 \(unsold\) or a buyer"):
        jw.check_cwe(cm, [3, 0], [10.0, 0.0], [2, -1])
    with pytest.raises(ValueError, match=r"values: values must not exceed 1e\+300 in absolute "
                                         r"value, found 1e\+301"):
        jw.SetFunctionMarket([[0, 1e301]])
    with pytest.raises(ValueError, match=r"values: .* too large for a float"):
        jw.SetFunctionMarket([[0, 10**400]])
    with pytest.raises(TypeError, match=r"values: must hold numbers, got booleans"):
        jw.SetFunctionMarket(np.array([[False, True]]))
    with pytest.raises(ValueError, match=r"values must be non-negative; buyer 0"):
        jw.SetFunctionMarket([[0, -1e-300]])
    with pytest.raises(ValueError, match=r"bid_values: values must not exceed 1e\+300"):
        jw.SetFunctionMarket.from_xor_arrays([[1]], [[1e301]], 1)
    with pytest.raises(ValueError, match=r"bids\[0\]\[0\]: value: must be a finite number"):
        jw.SetFunctionMarket.from_xor([[({0}, float("inf"))]], m=1)
    with pytest.raises(TypeError, match=r"bids\[0\]\[0\]: value: must be a real number"):
        jw.SetFunctionMarket.from_xor([[({0}, "3")]], m=1)


# ------------------------------------------------- remaining public functions, batched --
def test_best_item_price_welfare_is_scale_free_and_certified():
    """Shirts: item prices reach 3 - 1/m of OPT = m (Feldman, Gravin and Lucier, 2013), in
    any money unit; batch equals the per-market loop; the host confirms the support."""
    base = jw.examples.shirts(4).values
    batch = jw.SetFunctionMarket(np.stack([base * c for c in SCALES]))
    bip = jw.best_item_price_welfare(batch)
    assert bip.converged.all() and (bip.status == 0).all()
    np.testing.assert_allclose(bip.welfare, [(3 - 1 / 4) * c for c in SCALES], rtol=1e-9)
    for k, c in enumerate(SCALES):
        one = jw.best_item_price_welfare(jw.SetFunctionMarket(base * c))
        assert one.welfare == bip.welfare[k]
        np.testing.assert_array_equal(one.prices, bip.prices[k])
        np.testing.assert_array_equal(one.allocation, bip.allocation[k])
        v = base * c
        for i in range(2):                     # brute force: each buyer's set is a demand
            us = [v[i, s] - sum(bip.prices[k][j] for j in members(s, 4)) for s in range(16)]
            assert us[int(bip.allocation[k, i])] >= max(us) - 1e-9 * c


def test_bundle_demand_batch_equals_loop():
    rng = np.random.default_rng(35)
    v = np.stack([closure(rng.uniform(0, 5, (3, 16)), 4) * c for c in (1.0, 1e-6, 1e6, 2.0)])
    cm = jw.SetFunctionMarket(v)
    bundles = np.array([[3, 12, 0], [1, 2, 12], [15, 0, 0], [5, 10, 0]])
    prices = rng.uniform(0, 4, (4, 3)) * np.array([1.0, 1e-6, 1e6, 2.0])[:, None]
    res = jw.bundle_demand(cm, bundles, prices)
    assert res.demand.shape == (4, 3) and res.utility.shape == (4, 3)
    for k in range(4):
        one = jw.bundle_demand(cm[k], bundles[k], prices[k])
        np.testing.assert_array_equal(one.demand, res.demand[k])
        np.testing.assert_array_equal(one.utility, res.utility[k])
        live = [q for q in range(3) if bundles[k, q]]
        for i in range(3):
            best = max(v[k, i, sum(bundles[k, list(c)])] - prices[k, list(c)].sum()
                       for r in range(len(live) + 1) for c in itertools.combinations(live, r))
            assert res.utility[k, i] == pytest.approx(best, rel=1e-12, abs=0)
