"""Numerics of the multi-unit family (issue 11): integer scaling, batch independence,
integer width, the final check of the auction (Walrasian + least prices), and every class
of bad input.

Oracles share no code with the library: the Lyapunov function written here with exact
Python integers (a buyer takes her ``d_i`` best units), brute force over integer price
grids, and the optimality criteria of L-natural-convex functions (Murota, *Discrete Convex
Analysis*, 2003, Thm. 7.14: ``p`` minimises ``Lyap`` iff no ``p +- 1_X`` is lower; a
minimiser is the least one iff no ``p - 1_X`` with ``X`` inside the support is equal).
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import jaxwalras as jw


# ----------------------------------------------------------------------------- oracles --

def lyap_exact(V, d, s, p):
    """Lyap(p) = s.p + sum_i (sum of buyer i's d_i best positive unit payoffs), Python ints."""
    V, d, s, p = (np.asarray(a).tolist() for a in (V, d, s, p))
    total = sum(int(sj) * int(pj) for sj, pj in zip(s, p))
    for vi, di in zip(V, d):
        units = sorted(((int(vij) - int(pj), int(sj)) for vij, pj, sj in zip(vi, p, s)),
                       reverse=True)
        left = int(di)
        for u, cnt in units:
            if u <= 0 or left == 0:
                break
            take = min(cnt, left)
            total += take * u
            left -= take
    return total


def is_least_minimiser(V, d, s, p):
    """Murota's local criteria, by enumerating all 2^m directions (small m)."""
    p = np.asarray(p, np.int64)
    m = len(p)
    base = lyap_exact(V, d, s, p)
    for bits in itertools.product([0, 1], repeat=m):
        X = np.array(bits, np.int64)
        if not X.any():
            continue
        if lyap_exact(V, d, s, p + X) < base:
            return False
        if ((p - X) >= 0).all() and lyap_exact(V, d, s, p - X) <= base:
            return False               # lower (not a minimiser) or equal (not the least)
    return True


def least_minimiser_grid(V, d, s):
    """p* by brute force over the integer grid [0, max v + 1]^m (tiny markets)."""
    m = len(s)
    top = int(np.max(V, initial=0)) + 1
    grid = [np.array(p) for p in itertools.product(range(top + 1), repeat=m)]
    vals = [lyap_exact(V, d, s, p) for p in grid]
    best = min(vals)
    mins = [p for p, v in zip(grid, vals) if v == best]
    least = np.min(mins, axis=0)
    assert any((q == least).all() for q in mins)     # the minimisers form a lattice
    return least


def random_market(rng, n, m, vmax, dmax, smax):
    return (rng.integers(0, vmax + 1, (n, m)), rng.integers(0, dmax + 1, n),
            rng.integers(0, smax + 1, m))


# --------------------------------------------------- is_buyer_optimal vs brute force --

def test_is_buyer_optimal_matches_grid_brute_force():
    rng = np.random.default_rng(21)
    for _ in range(12):
        n, m = int(rng.integers(1, 4)), int(rng.integers(1, 3))
        V, d, s = random_market(rng, n, m, 5, 3, 2)
        mkt = jw.MultiUnitMarket(V, d, s)
        pstar = least_minimiser_grid(V, d, s)
        grid = np.array(list(itertools.product(range(7), repeat=m)))
        got = jw.is_buyer_optimal(jw.MultiUnitMarket.stack([mkt] * len(grid)), grid)
        want = (grid == pstar).all(-1)
        np.testing.assert_array_equal(got, want, err_msg=f"{V} {d} {s} p*={pstar}")


def test_is_buyer_optimal_batch_equals_loop_and_bad_input():
    rng = np.random.default_rng(22)
    V = rng.integers(0, 9, (6, 3, 2))
    d, s = rng.integers(0, 3, (6, 3)), rng.integers(0, 3, (6, 2))
    mkt = jw.MultiUnitMarket(V, d, s)
    P = rng.integers(0, 9, (6, 2))
    P[0] = jw.buyer_optimal_equilibrium(mkt[0]).prices
    got = jw.is_buyer_optimal(mkt, P)
    assert got.shape == (6,) and got[0]
    assert got.tolist() == [bool(jw.is_buyer_optimal(mkt[b], P[b])) for b in range(6)]
    with pytest.raises(TypeError, match="market: expected MultiUnitMarket"):
        jw.is_buyer_optimal(V, P)
    with pytest.raises(ValueError, match="prices: must be non-negative, found -1"):
        jw.is_buyer_optimal(mkt[0], [-1, 0])
    with pytest.raises(ValueError, match="prices: last axis has 3 entries"):
        jw.is_buyer_optimal(mkt[0], [0, 0, 0])


# ------------------------------------------------------------ integer width (item 3) --

def test_indirect_utility_and_lyapunov_do_not_wrap():
    mkt = jw.MultiUnitMarket([[2**20]], [4096], [4096])
    assert jw.indirect_utility(mkt, [0]).tolist() == [2**32]        # int32 would give 0
    assert int(jw.lyapunov(mkt, [0])) == 2**32
    assert int(jw.preferred_bundles(mkt, [7]).utility[0]) == 4096 * (2**20 - 7)
    rng = np.random.default_rng(23)
    V = rng.integers(2**23, 2**24 + 1, (5, 3, 3))
    d = rng.integers(2**15, 2**16 + 1, (5, 3))
    s = rng.integers(2**15, 2**16 + 1, (5, 3))
    p = rng.integers(0, 2**23, (5, 3))
    batch = jw.MultiUnitMarket(V, d, s)
    util, ly = jw.indirect_utility(batch, p), jw.lyapunov(batch, p)
    assert util.dtype == np.int64 and ly.dtype == np.int64
    for b in range(5):
        assert int(ly[b]) == lyap_exact(V[b], d[b], s[b], p[b])
        assert util[b].tolist() == jw.indirect_utility(batch[b], p[b]).tolist()
    with pytest.raises(ValueError, match="prices: values must not exceed 16777216.*16777217"):
        jw.lyapunov(batch[0], [2**24 + 1, 0, 0])


@pytest.mark.parametrize("k", [16, 21])
def test_lp_baseline_is_exact_for_large_values(k):
    """The LP baseline used to raise 'not integral' on 19% (2**16) / 48% (2**21) of these."""
    rng = np.random.default_rng(k)
    V = rng.integers(2**k - 2**(k - 3), 2**k + 1, (6, 5, 3))
    d, s = rng.integers(1, 6, (6, 5)), rng.integers(1, 6, (6, 3))
    mkt = jw.MultiUnitMarket(V, d, s)
    lp = jw.lp_min_walrasian_prices(mkt)
    np.testing.assert_array_equal(lp, jw.buyer_optimal_equilibrium(mkt).prices)
    for b in range(6):
        assert is_least_minimiser(V[b], d[b], s[b], lp[b])


def test_lp_baseline_bad_input():
    with pytest.raises(TypeError, match="market: expected MultiUnitMarket"):
        jw.lp_min_walrasian_prices(np.ones((2, 2)))


# ------------------------------------------- 8,200 markets with 2**16 units (item 2) --

def test_large_batch_with_large_quantities():
    """The allocation flow used to sum capacities over the whole batch (2.1e9 > int32 here)
    and failed every market; capacities are per market now."""
    rng = np.random.default_rng(24)
    B = 8200
    V = rng.integers(0, 100, (B, 2, 2))
    d = np.full((B, 2), 2**16)
    s = np.full((B, 2), 2**16)
    mkt = jw.MultiUnitMarket(V, d, s)
    res = jw.buyer_optimal_equilibrium(mkt)
    assert res.converged.all()
    assert jw.is_walrasian(mkt, res.prices, res.allocation).all()
    # here supply meets demand, nobody competes: p* = 0 (the least minimiser)
    for b in (0, 4099, B - 1):
        assert is_least_minimiser(V[b], d[b], s[b], res.prices[b])


# --------------------------------------- scaling, batch independence (items 1, 2, 6) --

@st.composite
def small_markets(draw):
    """3 buyers x 3 objects (zero demands / supplies stand for fewer), values <= 8: one
    compiled shape, and the grid oracle stays cheap."""
    ints = lambda shape, hi: np.array(draw(st.lists(  # noqa: E731
        st.integers(0, hi), min_size=int(np.prod(shape)), max_size=int(np.prod(shape))))
                                      ).reshape(shape)
    return ints((3, 3), 8), ints((3,), 3), ints((3,), 3)


@given(small_markets(), st.randoms(use_true_random=False))
def test_property_scaling_and_batch_independence(market, rnd):
    """Values times k (1 and 10**6, keeping integrality) scale p* by k exactly; a market
    alone equals itself inside a shuffled batch with markets a million times larger; every
    answer is the least minimiser (brute force over the grid for k = 1)."""
    V, d, s = market
    n, m = V.shape
    pstar = least_minimiser_grid(V, d, s)
    alone = {}
    for k in (1, 10**6):
        r = jw.buyer_optimal_equilibrium(jw.MultiUnitMarket(V * k, d, s))
        assert r.converged and (r.prices == k * pstar).all()
        assert jw.check_walrasian(jw.MultiUnitMarket(V * k, d, s), r.prices, r.allocation) == []
        alone[k] = r
    # a padded batch: this market at both scales among random markets, some 10**6 larger
    rng = np.random.default_rng(rnd.randint(0, 2**31))
    others = [(rng.integers(0, 9, (n, m)) * (10**6 if j % 2 else 1),
               rng.integers(0, 4, n), rng.integers(0, 4, m)) for j in range(6)]
    mine = [(V, d, s), (V * 10**6, d, s)]
    order = rnd.sample(range(8), 8)
    items = [(mine + others)[j] for j in order]
    batch = jw.MultiUnitMarket(*(np.stack(a) for a in zip(*items)))
    res = jw.buyer_optimal_equilibrium(batch)
    assert res.converged.all()
    for pos, j in enumerate(order):
        if j < 2:
            ref = alone[1 if j == 0 else 10**6]
            np.testing.assert_array_equal(res.prices[pos], ref.prices)
            np.testing.assert_array_equal(res.allocation[pos], ref.allocation)
            assert res.iterations[pos] == ref.iterations
        else:
            assert is_least_minimiser(*items[pos], res.prices[pos])


# ----------------------------------------------- start prices and reoptimize (item 4) --

def test_bad_starts_are_repaired_or_reported():
    rng = np.random.default_rng(25)
    repaired = reported = 0
    for _ in range(10):
        V, d, s = random_market(rng, 3, 2, 12, 3, 2)
        s = np.maximum(s, 1)
        mkt = jw.MultiUnitMarket(V, d, s)
        pstar = least_minimiser_grid(V, d, s)
        start = pstar + rng.integers(0, 4, 2)
        start[rng.integers(2)] += 1                       # not <= p*
        res = jw.buyer_optimal_equilibrium(mkt, start=start)
        assert res.converged and (res.prices == pstar).all()
        repaired += 1
        rep = jw.buyer_optimal_equilibrium(mkt, start=start, on_bad_start="report")
        assert rep.status == jw.Status.START_ABOVE_OPTIMUM and not rep.converged
        assert (rep.prices >= start).all()                # where the ascent stopped
        reported += 1
        # a start below p* is fine and changes nothing
        low = np.maximum(pstar - rng.integers(0, 3, 2), 0)
        ok = jw.buyer_optimal_equilibrium(mkt, start=low, on_bad_start="report")
        assert ok.converged and (ok.prices == pstar).all()
    assert repaired == reported == 10
    # batch: a bad start in one market does not touch its batch mates
    V = rng.integers(0, 12, (4, 3, 2))
    mkt = jw.MultiUnitMarket(V, np.ones((4, 3), int), np.ones((4, 2), int))
    ref = jw.buyer_optimal_equilibrium(mkt)
    start = np.zeros((4, 2), int)
    start[2] = ref.prices[2] + 5
    res = jw.buyer_optimal_equilibrium(mkt, start=start)
    np.testing.assert_array_equal(res.prices, ref.prices)
    np.testing.assert_array_equal(res.iterations[[0, 1, 3]], ref.iterations[[0, 1, 3]])
    with pytest.raises(ValueError, match="on_bad_start: must be one of 'restart', 'report'"):
        jw.buyer_optimal_equilibrium(mkt, on_bad_start="ignore")


def test_reoptimize_with_prices_that_are_not_the_old_optimum():
    old = jw.MultiUnitMarket([[4, 4], [5, 3]], demands=[2, 1], supplies=[1, 1])
    new = jw.MultiUnitMarket([[4, 4], [5, 3]], demands=[2, 2], supplies=[1, 1])
    want = least_minimiser_grid([[4, 4], [5, 3]], [2, 2], [1, 1])
    for p in ([4, 2], [5, 5], [9, 0], [0, 9]):
        r = jw.reoptimize(old, p, new)
        assert r.converged and r.prices.tolist() == want.tolist()
    bad = jw.reoptimize(old, [5, 5], new, on_bad_start="report")
    assert bad.status == jw.Status.START_ABOVE_OPTIMUM


def test_no_buyers_with_a_start():
    mkt = jw.MultiUnitMarket(np.zeros((0, 2), int), np.zeros(0, int), [1, 2])
    assert jw.buyer_optimal_equilibrium(mkt, start=[3, 0]).prices.tolist() == [0, 0]
    rep = jw.buyer_optimal_equilibrium(mkt, start=[3, 0], on_bad_start="report")
    assert rep.status == jw.Status.START_ABOVE_OPTIMUM


# -------------------------------------------------------- unit steps on huge values --

def test_unit_steps_with_huge_values_are_refused_not_run_for_minutes():
    V = [[2**24, 0], [2**24 - 3, 0]]           # both want object 0: p* = (2**24 - 3, 0)
    mkt = jw.MultiUnitMarket(V, [1, 1], [1, 1])
    with pytest.raises(ValueError, match="step: 'unit' raises prices by one per round.*"
                                         "16777218 rounds.*step='long'"):
        jw.buyer_optimal_equilibrium(mkt, step="unit")
    # the same prices by long steps (no jumps: their kernel for 2**24 values compiles
    # slowly); an explicit budget is honoured
    long_ = jw.buyer_optimal_equilibrium(mkt, step="long", jumps=False)
    assert long_.converged and long_.prices.tolist() == [2**24 - 3, 0]
    assert is_least_minimiser(V, [1, 1], [1, 1], long_.prices)
    capped = jw.buyer_optimal_equilibrium(mkt, step="unit", max_rounds=5)
    assert capped.status == jw.Status.ROUND_LIMIT and not capped.converged
    # small values: the default budget is enough for every market (max v + 2 rounds)
    small = jw.MultiUnitMarket([[40], [37]], [1, 1], [1])
    r = jw.buyer_optimal_equilibrium(small, step="unit")
    assert r.converged and r.prices.tolist() == [37] and r.iterations == 37


# ------------------------------------------------------------- bad input (item 4) --

@pytest.mark.parametrize("values, exc, msg", [
    ([[1e300]], ValueError, r"values: values must not exceed 16777216 in absolute value, "
                            r"found 1e\+300"),
    ([[2**63]], ValueError, r"found 9223372036854775808$"),
    ([[2**64]], ValueError, r"found 18446744073709551616$"),
    ([[2**300]], ValueError, r"found 203703597633\.\.\..*\(91 digits\)"),
    ([[-(2**63)]], ValueError, r"must be non-negative, found -9223372036854775808"),
    ([[2**24 + 1]], ValueError, r"found 16777217"),
    ([[float("nan")]], ValueError, r"values: contains nan"),
    ([[float("inf")]], ValueError, r"values: contains inf"),
    ([[2.5]], TypeError, r"values: must hold integers, found the non-integer value 2.5"),
    ([[True]], TypeError, r"values: must hold numbers, got booleans"),
    ([["7"]], TypeError, r"values: must be numeric \(int or float\), got strings \('7'\)"),
    ([[None]], TypeError, r"values: must be a rectangular array of numbers, found None"),
    ([[1, 2], [3]], TypeError, r"values: must be a rectangular array of numbers; got nested"),
    ([[1 + 2j]], TypeError, r"values: must be numeric \(int or float\), got complex"),
])
def test_values_outside_the_range_are_reported_as_given(values, exc, msg):
    n = len(values)
    m = len(values[0]) if n and isinstance(values[0], list) else 1
    with pytest.raises(exc, match=msg):
        jw.MultiUnitMarket(values, [1] * n, [1] * m)


def test_units_outside_the_range():
    with pytest.raises(ValueError, match=r"demands: values must not exceed 65536.*65537"):
        jw.MultiUnitMarket([[1]], [2**16 + 1], [1])
    with pytest.raises(ValueError, match=r"supplies: values must not exceed 65536.*1e\+20"):
        jw.MultiUnitMarket([[1]], [1], [1e20])
    big_n = 2**15 + 1                                      # sum(d) > 2**31 - 1
    with pytest.raises(ValueError, match=r"sum\(supplies\) \+ sum\(demands\) of one market "
                                         r"must not exceed MAX_TOTAL_UNITS = 2147483647"):
        jw.MultiUnitMarket(np.ones((big_n, 1), int), np.full(big_n, 2**16), [1])
    with pytest.raises(ValueError, match=r"market \(1,\) has 2147549185"):
        jw.MultiUnitMarket(np.ones((2, big_n, 1), int),
                           np.stack([np.ones(big_n, int), np.full(big_n, 2**16)]), [[1], [1]])


def test_bad_auction_options():
    mkt = jw.MultiUnitMarket([[3, 4]], [1], [1, 1])
    for kw, exc, msg in [
        (dict(max_rounds=0), ValueError, "max_rounds: must be an integer >= 1, got 0"),
        (dict(max_rounds=2.5), TypeError, "max_rounds: must be an integer, got 2.5"),
        (dict(max_rounds=True), TypeError, "max_rounds: must be an integer, got True"),
        (dict(warm_start="yes"), TypeError, "warm_start: must be True or False"),
        (dict(allocation=None), TypeError, "allocation: must be True or False"),
        (dict(start=[2**25, 0]), ValueError, "start: values must not exceed 16777216"),
        (dict(start=[0.5, 0]), TypeError, "start: must hold integers, found the non-integer "
                                          "value 0.5"),
    ]:
        with pytest.raises(exc, match=msg):
            jw.buyer_optimal_equilibrium(mkt, **kw)
    with pytest.raises(ValueError, match="old_prices: values must not exceed 16777216"):
        jw.reoptimize(mkt, [2**40, 0], mkt)


def test_max_flow_refuses_capacities_beyond_int32():
    from jaxwalras import flows
    net = flows.auction_network(np.ones((1, 1, 1), bool), np.zeros((1, 1, 1), bool),
                                np.zeros((1, 1), np.int64), np.array([[2**31]]))
    with pytest.raises(ValueError, match=r"arc capacities must lie in \[0, 2147483647\]"):
        flows.solve_max_flow(net, 1)
