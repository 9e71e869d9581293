"""Tuning helpers the suite had no oracle or bad-input test for (issue 16):
``exact_markup_quantile`` against counting, ``policy_markups`` against its definition."""
from __future__ import annotations

import numpy as np
import pytest

import jaxwalras as jw


def test_exact_markup_quantile_against_counting():
    """The least sample value c with #{v <= c} >= q n (inf never feasible), by counting."""
    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(1, 12))
        v = rng.choice([0.0, 0.5, 1.0, 2.0, 3.0, np.inf], n)        # ties and infinities
        q = float(rng.choice([0.1, 0.25, 0.5, 0.8, 1.0]))
        want = min(c for c in v if np.sum(v <= c) >= q * n)
        assert jw.exact_markup_quantile(v, q) == want, (v, q)


def test_exact_markup_quantile_refuses_bad_input():
    for v, q in (([], 0.5), ([1.0], 0.0), ([1.0], 1.5)):
        with pytest.raises(ValueError, match="values/q"):
            jw.exact_markup_quantile(v, q)


def test_policy_markups_definition_batch_and_bad_input():
    """inverse_n: c / (buyers with a real option) per economy -- padding does not count;
    uniform and per_good broadcast to (B, L); each row is the economy's own answer."""
    table1 = jw.examples.milgrom_watt_table1()                  # 10 buyers
    small = jw.examples.random_menu_economy(4, 1, 2, 3, 1, seed=0)   # 4 buyers
    eco = jw.MenuEconomy.stack([table1, small])                 # small padded to 10
    np.testing.assert_array_equal(jw.policy_markups("inverse_n", {"c": 2.0}, eco),
                                  [[2.0 / 10], [2.0 / 4]])
    for b, e in enumerate((table1, small)):
        one = jw.policy_markups("inverse_n", {"c": 2.0}, jw.MenuEconomy.stack([e]))
        np.testing.assert_array_equal(one[0], jw.policy_markups("inverse_n", {"c": 2.0},
                                                                eco)[b])
    two = jw.examples.random_menu_economy(5, 2, 3, 3, 2, seed=1, batch_shape=(3,))
    np.testing.assert_array_equal(jw.policy_markups("uniform", {"markup": 0.3}, two),
                                  np.full((3, 2), 0.3))
    np.testing.assert_array_equal(jw.policy_markups("per_good", {"markup": [0.1, 0.2]}, two),
                                  [[0.1, 0.2]] * 3)
    with pytest.raises(ValueError, match="rule: must be one of"):
        jw.policy_markups("ramsey", {"c": 1.0}, two)
    with pytest.raises(ValueError, match='params: rule "inverse_n" needs'):
        jw.policy_markups("inverse_n", {"markup": 1.0}, two)
    with pytest.raises(ValueError, match="one per good"):
        jw.policy_markups("per_good", {"markup": [0.1, 0.2, 0.3]}, two)
