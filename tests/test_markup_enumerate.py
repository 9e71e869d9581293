"""markup_mechanism(method="enumerate"): the least markup of small several-good economies.

The brute-force comparison (every pure allocation, scipy LPs over the prices) is
``test_mechanisms::test_enumerate_method_is_least_by_brute_force``; here: one good against
the exact breakpoint scan (a different algorithm), money scale, batch-mates, bad options.
"""
from __future__ import annotations

import numpy as np
import pytest

import jaxwalras as jw
from jaxwalras.economy import MenuEconomy
from test_mechanisms import tiny_economy


def test_one_good_agrees_with_the_exact_scan():
    eco = jw.examples.random_menu_economy(4, 2, 3, 3, 1, seed=2, batch_shape=(3,))
    en = jw.markup_mechanism(eco, method="enumerate")
    sc = jw.markup_mechanism(eco, method="scan")
    assert bool(np.all(sc.certified_minimal))
    for i in range(3):
        if not bool(sc.converged[i]):
            assert not bool(en.converged[i])
            continue
        a, least = float(en.markup[i]), float(sc.markup[i])
        assert least - 1e-9 <= a <= least * 1.01 + 1e-9, (i, a, least)
        assert float(en.markup_lower[i]) <= least + 1e-9


def test_scale_free_and_batch_independent():
    eco = tiny_economy(6, N=3, F=2, K=3)
    base = jw.markup_mechanism(eco, method="enumerate")
    for s in (1e-6, 1e6):
        big = MenuEconomy(eco.buyer_bundles, np.asarray(eco.buyer_values) * s,
                          eco.seller_bundles, np.asarray(eco.seller_costs) * s)
        r = jw.markup_mechanism(big, method="enumerate")
        np.testing.assert_allclose(float(r.markup), float(base.markup), rtol=1e-9)
        np.testing.assert_allclose(np.asarray(r.prices), s * np.asarray(base.prices), rtol=1e-9)
    batch = jw.MenuEconomy.stack([tiny_economy(4, N=3, F=2, K=3), eco,
                                  tiny_economy(7, N=3, F=2, K=3)])
    rb = jw.markup_mechanism(batch, method="enumerate")
    assert float(rb.markup[1]) == float(base.markup)
    np.testing.assert_array_equal(np.asarray(rb.prices[1]), np.asarray(base.prices))


def test_bad_options():
    eco = tiny_economy(4, N=3, F=2, K=3)
    with pytest.raises(ValueError, match="max_outcomes: must be a positive integer"):
        jw.markup_mechanism(eco, method="enumerate", max_outcomes=0)
    with pytest.raises(ValueError, match=r"max_outcomes: economy 0 of the batch has 243 pure"):
        jw.markup_mechanism(eco, method="enumerate", max_outcomes=100)
    with pytest.raises(ValueError, match="method"):
        jw.markup_mechanism(eco, method="enumerated")
