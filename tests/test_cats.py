"""CATS-style generators (jw.cats): shapes, seeds, valid markets, distribution structure,
end-to-end WE / CWE on generated markets against brute force."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

import jaxwalras as jw

GENS = sorted(jw.cats.GENERATORS)


def atoms(v_i, m):
    """Sets whose value exceeds every proper subset's (the XOR bids that matter)."""
    out = []
    for s in range(1, 2 ** m):
        if all(v_i[s] > v_i[s ^ (1 << j)] for j in range(m) if (s >> j) & 1):
            out.append(s)
    return out


@pytest.mark.parametrize("name", GENS)
def test_generator_shapes_seeds_and_validity(name):
    gen = jw.cats.GENERATORS[name]
    cm = gen(n_bidders=4, m=6, seed=3)
    assert cm.batch_shape == () and cm.n_buyers == 4 and cm.n_items == 6
    batch = gen(n_bidders=4, m=6, seed=3, n_markets=3)
    assert batch.batch_shape == (3,)
    np.testing.assert_array_equal(batch.values[0], cm.values)       # market k uses [seed, k]
    np.testing.assert_array_equal(gen(n_bidders=4, m=6, seed=3).values, cm.values)
    assert not np.array_equal(gen(n_bidders=4, m=6, seed=4).values, cm.values)
    # a valid market: re-validation passes (monotone, v(empty) = 0, finite)
    jw.SetFunctionMarket(batch.values)
    assert (batch.values[..., -1] > 0).any()                         # somebody wants something


def test_scheduling_bids_are_intervals():
    cm = jw.cats.scheduling(n_bidders=5, m=8, seed=1)
    for i in range(cm.n_buyers):
        lengths = set()
        for s in atoms(cm.values[i], cm.n_items):
            bits = [j for j in range(cm.n_items) if (s >> j) & 1]
            assert bits == list(range(bits[0], bits[-1] + 1))         # consecutive slots
            lengths.add(len(bits))
        assert len(lengths) <= 1                                      # one job length


def test_paths_bids_are_connected_paths():
    cm = jw.cats.paths(n_bidders=4, m=8, seed=2)
    for i in range(cm.n_buyers):
        vals = [cm.values[i, s] for s in atoms(cm.values[i], cm.n_items)]
        # detours are worth less: the bidder's values are not all equal unless one path
        assert len(vals) >= 1 and all(v > 0 for v in vals)


def test_regions_and_arbitrary_bundle_sizes():
    for gen in (jw.cats.regions, jw.cats.arbitrary):
        cm = gen(n_bidders=6, m=9, seed=5, max_bundle_size=3)
        for i in range(cm.n_buyers):
            assert all(bin(s).count("1") <= 3 for s in atoms(cm.values[i], cm.n_items))


@pytest.mark.parametrize("kwargs, match", [
    (dict(n_bidders=0), "n_bidders: must be in"),
    (dict(m=17), "m: must be in \\[1, 16\\]"),
    (dict(m=4.0), "m: must be an int"),
    (dict(seed=-1), "seed: must be in"),
    (dict(n_markets=0), "n_markets: must be in"),
])
@pytest.mark.parametrize("name", GENS)
def test_bad_parameters(name, kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        jw.cats.GENERATORS[name](**kwargs)


def test_bad_probability():
    with pytest.raises(ValueError, match="p_add: must be a probability"):
        jw.cats.regions(p_add=1.5)


@pytest.mark.parametrize("gen, kwargs, exc, match", [
    ("regions", dict(p_add=float("nan")), ValueError, "p_add: must be a probability in \\[0, 1\\], got nan"),
    ("regions", dict(p_add="0.5"), TypeError, "p_add: must be a real number, got '0.5'"),
    ("regions", dict(alpha=float("inf")), ValueError, "alpha: must be a finite number >= 0, got inf"),
    ("arbitrary", dict(deviation=-0.1), ValueError, "deviation: must be a finite number in \\[0, 1\\]"),
    ("arbitrary", dict(budget_factor=float("nan")), ValueError, "budget_factor: must be a finite"),
    ("arbitrary", dict(resale_factor=-1), ValueError, "resale_factor: must be a finite number >= 0"),
    ("regions", dict(max_substitutable_bids=2.0), TypeError, "max_substitutable_bids: must be an int"),
    ("scheduling", dict(deviation=1.5), ValueError, "deviation: must be a finite number in \\[0, 1\\]"),
    ("paths", dict(budget_factor=-2), ValueError, "budget_factor: must be a finite number >= 0"),
])
def test_bad_shape_parameters(gen, kwargs, exc, match):
    """Non-finite or out-of-range shape parameters are refused by name, not passed on as
    NaN values to the market's own validation."""
    with pytest.raises(exc, match=match):
        jw.cats.GENERATORS[gen](**kwargs)


def brute_opt(v):
    n, t = v.shape
    m = t.bit_length() - 1
    best = 0.0
    for a in itertools.product(range(n + 1), repeat=m):
        best = max(best, sum(v[i, sum(1 << j for j in range(m) if a[j] == i)]
                             for i in range(n)))
    return best


@pytest.mark.parametrize("name", GENS)
def test_end_to_end_on_cats(name):
    """Optimal allocation = brute force; WE (when it exists) passes a brute-force check;
    the CWE is valid by brute force and keeps half of OPT."""
    cm = jw.cats.GENERATORS[name](n_bidders=3, m=6, seed=11, n_markets=3)
    oa = jw.optimal_allocation(cm)
    we = jw.walrasian_equilibrium(cm)
    cwe = jw.combinatorial_walrasian_equilibrium(cm, rtol=1e-5)
    for k in range(3):
        v = cm.values[k]
        assert oa.welfare[k] == pytest.approx(brute_opt(v), rel=1e-6)
        if we.exists[k]:
            p, a = we.prices[k], we.allocation[k]
            for i in range(cm.n_buyers):
                us = [v[i, s] - sum(p[j] for j in range(6) if (s >> j) & 1) for s in range(64)]
                assert us[a[i]] >= max(us) - 1e-3
        tol = 1e-5 * v.max(axis=-1)          # the REQUESTED tolerance of each buyer
        assert cwe.converged[k]
        live = [s for s in range(6) if cwe.bundles[k, s]]
        for i in range(cm.n_buyers):
            mine = [s for s in live if cwe.holder[k, s] == i]
            u_held = v[i, sum(cwe.bundles[k, mine])] - cwe.prices[k, mine].sum()
            for r in range(len(live) + 1):
                for c in itertools.combinations(live, r):
                    c = list(c)
                    assert (v[i, sum(cwe.bundles[k, c])] - cwe.prices[k, c].sum()
                            <= u_held + tol[i])
        assert cwe.welfare[k] >= oa.welfare[k] / 2 - tol.sum()
