"""Multi-unit markets against oracles that share no code (and no formulation) with the
library: the Walrasian conditions written here from their definition and checked by
enumerating every integer allocation, and the least Walrasian prices found by brute force
over an integer price grid (the set of Walrasian price vectors is a lattice, so its least
element is the componentwise minimum, asserted to be Walrasian itself).  No LP and no
Lyapunov function: the library's LP baseline, its auction and its differentiable prices
are all checked against this one enumeration.

Also: every public multi-unit function's bad input and batch == per-market loop."""
from __future__ import annotations

import itertools
import re
import warnings

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import jaxwalras as jw
from _hyp import examples


# ----------------------------------------------------------------- definitions, by hand --

def all_bundles(d, s):
    """Every integer bundle x with 0 <= x_j <= s_j and sum x <= d."""
    return [np.array(x, np.int64) for x in itertools.product(*[range(int(sj) + 1) for sj in s])
            if sum(x) <= d]


def best_utility(v, d, s, p):
    """max_x x.(v - p) over all bundles (enumeration)."""
    return max(int(x @ (np.asarray(v) - p)) for x in all_bundles(d, s))


def walrasian_by_definition(V, d, s, p, x):
    """Prices >= 0; supplies and demands respected; every buyer gets a utility-maximising
    bundle; unsold units only at price 0; sum x = min(sum s, sum d)."""
    V, d, s, p, x = (np.asarray(a, np.int64) for a in (V, d, s, p, x))
    if (p < 0).any() or (x < 0).any():
        return False
    if (x.sum(0) > s).any() or (x.sum(1) > d).any():
        return False
    if any(int(x[i] @ (V[i] - p)) != best_utility(V[i], d[i], s, p) for i in range(len(d))):
        return False
    if ((p > 0) & (x.sum(0) < s)).any():
        return False
    return int(x.sum()) == min(int(s.sum()), int(d.sum()))


def walrasian_allocation_exists(V, d, s, p):
    """Is there an allocation making ``p`` Walrasian?  Enumerates the products of every
    buyer's utility-maximising bundles."""
    V, d, s, p = (np.asarray(a, np.int64) for a in (V, d, s, p))
    if (p < 0).any():
        return False
    pref = []
    for i in range(len(d)):
        bs = all_bundles(d[i], s)
        u = [int(x @ (V[i] - p)) for x in bs]
        pref.append([x for x, ui in zip(bs, u) if ui == max(u)])
    target = min(int(s.sum()), int(d.sum()))
    for combo in itertools.product(*pref):
        tot = np.sum(combo, axis=0) if combo else np.zeros_like(s)
        if (tot <= s).all() and not ((p > 0) & (tot < s)).any() and int(tot.sum()) == target:
            return True
    return False


def least_walrasian_prices(V, d, s):
    """The least Walrasian price vector, by brute force over the integer grid
    ``[0, max v + 1]^m`` (prices above every value leave an object unsold)."""
    m = len(s)
    top = int(np.max(V, initial=0)) + 1
    W = [np.array(p) for p in itertools.product(range(top + 1), repeat=m)
         if walrasian_allocation_exists(V, d, s, np.array(p))]
    assert W, "no Walrasian prices on the grid"
    least = np.min(W, axis=0)
    assert any((w == least).all() for w in W), "Walrasian prices are not a lattice here"
    return least


def random_markets(rng, B, n, m, vmax, dmax, smax):
    return (rng.integers(0, vmax + 1, (B, n, m)), rng.integers(0, dmax + 1, (B, n)),
            rng.integers(0, smax + 1, (B, m)))


# ------------------------------------------------------- least prices by brute force --

@settings(max_examples=examples(2))
@given(seed=st.integers(0, 2**32 - 1), shape=st.sampled_from([(3, 2, 6), (2, 3, 4)]))
def test_least_walrasian_prices_equal_the_grid_brute_force(seed, shape):
    """The auction, the LP baseline and the differentiable prices all return the least
    Walrasian prices of the integer grid, and the auction's allocation is Walrasian by
    definition (a batch of 24 tiny markets: one compiled shape)."""
    n, m, vmax = shape
    rng = np.random.default_rng(seed)
    V, d, s = random_markets(rng, 24, n, m, vmax, 3, 2)
    mkt = jw.MultiUnitMarket(V, d, s)
    res = jw.buyer_optimal_equilibrium(mkt)
    lp = jw.lp_min_walrasian_prices(mkt)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jw.DegeneratePointWarning)   # integer ties: kinks
        real = np.asarray(jw.buyer_optimal_prices(mkt))
    assert res.converged.all()
    for b in range(24):
        want = least_walrasian_prices(V[b], d[b], s[b])
        assert res.prices[b].tolist() == want.tolist(), (V[b], d[b], s[b])
        assert lp[b].tolist() == want.tolist()
        np.testing.assert_array_equal(real[b], want)
        assert walrasian_by_definition(V[b], d[b], s[b], res.prices[b], res.allocation[b])


def test_textbook_markets_least_prices():
    """The docs' worked examples by brute force, then the library: the copy-method pitfall
    ((5, 3), d = 2: p* = (0, 0)) and a multi-unit p* that is not VCG."""
    cases = (([[4, 4], [5, 3]], [2, 1], [1, 1], [4, 2]),
             ([[5, 3]], [2], [1, 1], [0, 0]),
             ([[10, 0], [4, 0]], [2, 1], [2, 0], [4, 0]),
             ([[3, 4], [2, 1]], [1, 3], [1, 1], [0, 1]))
    got = jw.buyer_optimal_equilibrium(jw.MultiUnitMarket.stack(
        [jw.MultiUnitMarket(V, d, s) for V, d, s, _ in cases])).prices
    for k, (V, d, s, want) in enumerate(cases):
        assert least_walrasian_prices(np.array(V), np.array(d), np.array(s)).tolist() == want
        assert got[k].tolist() == want


# ------------------------------------------------ indirect utility and the Lyapunov --

def test_indirect_utility_and_lyapunov_against_enumeration():
    rng = np.random.default_rng(31)
    V, d, s = random_markets(rng, 10, 3, 3, 9, 4, 2)
    P = rng.integers(0, 11, (10, 3))
    mkt = jw.MultiUnitMarket(V, d, s)
    util, ly = jw.indirect_utility(mkt, P), jw.lyapunov(mkt, P)
    assert util.shape == (10, 3) and ly.shape == (10,)
    for b in range(10):
        want = [best_utility(V[b, i], d[b, i], s[b], P[b]) for i in range(3)]
        assert util[b].tolist() == want
        assert int(ly[b]) == int(s[b] @ P[b]) + sum(want)


def test_lyapunov_minimisers_are_the_walrasian_prices():
    """A theorem's statement checked by enumeration: on the integer grid, the Walrasian
    price vectors are exactly the minimisers of jw.lyapunov."""
    rng = np.random.default_rng(32)
    V, d, s = random_markets(rng, 6, 3, 2, 5, 3, 2)
    grid = np.array(list(itertools.product(range(7), repeat=2)))
    for b in range(6):
        mk = jw.MultiUnitMarket.stack([jw.MultiUnitMarket(V[b], d[b], s[b])] * len(grid))
        ly = jw.lyapunov(mk, grid)
        walras = np.array([walrasian_allocation_exists(V[b], d[b], s[b], p) for p in grid])
        np.testing.assert_array_equal(ly == ly.min(), walras, err_msg=f"{V[b]} {d[b]} {s[b]}")


def test_indirect_utility_and_lyapunov_batches_equal_the_loop():
    rng = np.random.default_rng(33)
    V, d, s = random_markets(rng, 12, 4, 3, 50, 5, 4)
    mkt = jw.MultiUnitMarket(V, d, s).reshape_batch((3, 4))
    P = rng.integers(0, 60, (3, 4, 3))
    util, ly = jw.indirect_utility(mkt, P), jw.lyapunov(mkt, P)
    assert util.shape == (3, 4, 4) and ly.shape == (3, 4)
    for i, j in np.ndindex(3, 4):
        assert util[i, j].tolist() == jw.indirect_utility(mkt[i][j], P[i, j]).tolist()
        assert int(ly[i, j]) == int(jw.lyapunov(mkt[i][j], P[i, j]))
    # one price vector broadcast against the whole batch
    np.testing.assert_array_equal(jw.indirect_utility(mkt, P[0, 0]),
                                  jw.indirect_utility(mkt, np.broadcast_to(P[0, 0], (3, 4, 3))))


@pytest.mark.parametrize("fn", [jw.indirect_utility, jw.lyapunov, jw.preferred_bundles])
def test_utility_functions_refuse_bad_input(fn):
    mkt = jw.MultiUnitMarket([[3, 4]], [1], [1, 1])
    with pytest.raises(TypeError, match="market: expected MultiUnitMarket"):
        fn(np.ones((1, 2)), [0, 0])
    with pytest.raises(ValueError, match="prices: must be non-negative, found -1"):
        fn(mkt, [-1, 0])
    with pytest.raises(ValueError, match="prices: last axis has 3"):
        fn(mkt, [0, 0, 0])
    with pytest.raises(TypeError, match="prices: must hold integers"):
        fn(mkt, [0.5, 0])
    with pytest.raises(ValueError, match="prices: values must not exceed 16777216"):
        fn(mkt, [2**24 + 1, 0])


# ---------------------------------------------------------------- preferred bundles --

def test_preferred_bundles_batch_equals_the_loop():
    rng = np.random.default_rng(34)
    V, d, s = random_markets(rng, 8, 5, 4, 30, 6, 3)
    P = rng.integers(0, 35, (8, 4))
    mkt = jw.MultiUnitMarket(V, d, s)
    b = jw.preferred_bundles(mkt, P)
    assert b.strict.shape == (8, 5, 4) and b.utility.shape == (8, 5)
    for k in range(8):
        one = jw.preferred_bundles(mkt[k], P[k])
        for field in b._fields:
            np.testing.assert_array_equal(np.asarray(getattr(one, field)),
                                          np.asarray(getattr(b, field))[k], err_msg=field)
        # the utility is the enumeration's
        assert one.utility.tolist() == [best_utility(V[k, i], d[k, i], s[k], P[k])
                                        for i in range(5)]


# ------------------------------------------------------------------- is_walrasian --

def test_is_walrasian_against_the_definition():
    """Random price / allocation pairs (most not Walrasian), the auction's own answers and
    small perturbations of them: jw.is_walrasian and jw.check_walrasian agree with the
    definition written here, market by market and as a batch."""
    rng = np.random.default_rng(35)
    V, d, s = random_markets(rng, 40, 3, 2, 6, 3, 2)
    mkt = jw.MultiUnitMarket(V, d, s)
    res = jw.buyer_optimal_equilibrium(mkt)
    P, X = res.prices.copy(), res.allocation.copy()
    for b in range(10, 40):               # perturb three quarters of them
        if b % 3 == 0:
            P[b] = np.maximum(P[b] + rng.integers(-1, 2, 2), 0)
        elif b % 3 == 1:
            X[b] = rng.integers(0, 3, (3, 2))
        else:
            i, j = rng.integers(3), rng.integers(2)
            X[b, i, j] = max(X[b, i, j] - 1, 0)
    got = jw.is_walrasian(mkt, P, X)
    want = np.array([walrasian_by_definition(V[b], d[b], s[b], P[b], X[b]) for b in range(40)])
    np.testing.assert_array_equal(got, want)
    assert want[:10].all() and 5 <= (~want).sum() <= 30      # both verdicts occur
    for b in range(40):                                       # batch == per-market loop
        assert bool(jw.is_walrasian(mkt[b], P[b], X[b])) == want[b]
        assert (jw.check_walrasian(mkt[b], P[b], X[b]) == []) == want[b]
    msgs = jw.check_walrasian(mkt, P, X)         # "market (b,): ..." for each violation
    flagged = {int(re.match(r"market \((\d+),\): ", msg).group(1)) for msg in msgs}
    assert flagged == set(np.flatnonzero(~want).tolist())


def test_is_walrasian_and_check_walrasian_refuse_bad_input():
    mkt = jw.MultiUnitMarket([[3, 4], [1, 2]], [1, 1], [1, 1])
    for fn in (jw.is_walrasian, jw.check_walrasian):
        with pytest.raises(TypeError, match="market: expected MultiUnitMarket"):
            fn(np.ones((2, 2)), [0, 0], [[0, 0], [0, 0]])
        with pytest.raises(ValueError, match="prices: expected shape \\(2,\\)"):
            fn(mkt, [0, 0, 0], [[0, 0], [0, 0]])
        with pytest.raises(ValueError, match="allocation: expected shape \\(2, 2\\)"):
            fn(mkt, [0, 0], [[0, 0]])
        with pytest.raises(TypeError, match="allocation: must hold integers"):
            fn(mkt, [0, 0], [[0.5, 0], [0, 0]])
    # negative prices are not an error but a violated condition
    assert not bool(jw.is_walrasian(mkt, [-1, 0], [[1, 0], [0, 1]]))
    assert any("negative prices" in m for m in jw.check_walrasian(mkt, [-1, 0], [[1, 0], [0, 1]]))


# ------------------------------------------------------------------- reoptimize --

def test_reoptimize_batch_equals_the_loop_and_the_brute_force():
    rng = np.random.default_rng(36)
    V, d, s = random_markets(rng, 10, 3, 2, 6, 2, 2)
    s = np.maximum(s, 1)
    old = jw.MultiUnitMarket(V, d, s)
    p_old = jw.buyer_optimal_equilibrium(old).prices
    d2, s2 = d.copy(), s.copy()
    d2[np.arange(10), rng.integers(0, 3, 10)] += 1        # one demand rises per market
    s2[::2, 0] -= 1                                       # and half lose a unit of supply
    new = jw.MultiUnitMarket(V, d2, s2)
    warm = jw.reoptimize(old, p_old, new)
    assert warm.converged.all()
    for b in range(10):
        one = jw.reoptimize(old[b], p_old[b], new[b])
        np.testing.assert_array_equal(one.prices, warm.prices[b])
        np.testing.assert_array_equal(one.allocation, warm.allocation[b])
        assert warm.prices[b].tolist() == least_walrasian_prices(V[b], d2[b], s2[b]).tolist()
        assert walrasian_by_definition(V[b], d2[b], s2[b], warm.prices[b], warm.allocation[b])


def test_reoptimize_refuses_bad_input():
    old = jw.MultiUnitMarket([[5, 3], [4, 4]], [2, 1], [1, 1])
    new = jw.MultiUnitMarket([[5, 3], [4, 4]], [2, 2], [1, 1])
    with pytest.raises(TypeError, match="old_market: expected MultiUnitMarket"):
        jw.reoptimize(np.ones((2, 2)), [0, 0], new)
    with pytest.raises(TypeError, match="new_market: expected MultiUnitMarket"):
        jw.reoptimize(old, [0, 0], np.ones((2, 2)))
    with pytest.raises(ValueError, match="old_prices: shape \\(3,\\) does not match"):
        jw.reoptimize(old, [0, 0, 0], new)
    with pytest.raises(ValueError, match="old_prices: must be non-negative"):
        jw.reoptimize(old, [-1, 0], new)
    with pytest.raises(ValueError, match="new_market: must have the same shape"):
        jw.reoptimize(old, [0, 0], jw.MultiUnitMarket([[5, 3, 1], [4, 4, 1]], [2, 2], [1, 1, 1]))


# ------------------------------------------------------- differentiable prices batch --

def test_buyer_optimal_prices_batch_equals_the_loop():
    rng = np.random.default_rng(37)
    d, s = rng.integers(1, 4, (6, 4)), rng.integers(1, 3, (6, 3))
    v = rng.uniform(0.0, 10.0, (6, 4, 3))
    mkt = jw.MultiUnitMarket(np.zeros((6, 4, 3), int), d, s)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jw.DegeneratePointWarning)
        batch, info = jw.buyer_optimal_prices(mkt, v, info=True)
        assert batch.shape == (6, 3) and info.converged.shape == (6,)
        for b in range(6):
            one = jw.buyer_optimal_prices(mkt[b], v[b])
            np.testing.assert_allclose(one, batch[b], rtol=1e-6, atol=1e-6)
