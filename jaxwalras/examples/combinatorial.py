"""Combinatorial-market examples: Lucier's shoes and Feldman, Gravin and Lucier's shirts."""
from __future__ import annotations

import numpy as np

from ..setfunction import SetFunctionMarket

__all__ = ["shoes", "shirts"]


def shoes() -> SetFunctionMarket:
    """Two shoes (items 0 = left, 1 = right). Alice (buyer 0) values the pair at 10 and a
    single shoe at 0; Bob (buyer 1) values any one shoe at 6 (Lucier 2013). No item-price
    Walrasian equilibrium; the best item-price welfare without clearing is 6; selling the
    pair as one bundle at 10 reaches OPT = 10."""
    return SetFunctionMarket.from_xor([[({0, 1}, 10.0)], [({0}, 6.0), ({1}, 6.0)]], m=2)


def shirts(m: int) -> SetFunctionMarket:
    """``m`` identical shirts (Feldman, Gravin & Lucier 2013). Alex (buyer 0) values any
    ``k > 1`` shirts at ``k`` and one shirt at 2; Betty (buyer 1) values one shirt at
    ``1 - 1/m``. Both are XOS. OPT = ``m`` (Alex takes all); item prices reach at most
    ``3 - 1/m``; one bundle of all shirts priced at ``m`` is a CWE with welfare ``m``."""
    if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or not 2 <= m <= 16:
        raise ValueError(f"m: number of shirts must be an int in [2, 16], got {m!r}")
    k = np.array([bin(s).count("1") for s in range(2 ** m)], float)
    alex = np.where(k == 1, 2.0, k)
    betty = np.where(k >= 1, 1.0 - 1.0 / m, 0.0)
    return SetFunctionMarket(np.stack([alex, betty]))
