"""Example economies of Milgrom and Watt, "Linear pricing mechanisms for markets without
convexity" (EC 2022): the paper's one-good example (Table 1) and random menu economies."""
from __future__ import annotations

import numpy as np

from ..economy import MenuEconomy

__all__ = ["milgrom_watt_table1", "milgrom_watt_random", "random_menu_economy",
           "TABLE1_VALUES", "TABLE1_QUANTITIES"]

#: per-unit values ``v_n`` of the ten buyers of Table 1
TABLE1_VALUES = np.array([0.97, 0.90, 0.85, 0.79, 0.65, 0.63, 0.42, 0.30, 0.20, 0.18])
#: the exact quantity ``q_n`` each buyer wants (all or nothing)
TABLE1_QUANTITIES = np.array([0.28, 0.65, 0.50, 0.50, 0.75, 0.50, 0.45, 0.95, 0.60, 0.30])


def milgrom_watt_table1(max_units: int = 6, marginal_cost: float = 0.5) -> MenuEconomy:
    """The paper instance (Table 1 of Milgrom & Watt 2021/2022) as a ``MenuEconomy``.

    One good; one seller who produces any integer quantity ``0..max_units`` at marginal cost
    0.50; buyer ``n`` values exactly ``q_n`` units at ``q_n v_n`` (menu ``{0, q_n}``, free
    disposal).  No Walrasian equilibrium exists; the convexified equilibrium trades 3.18
    units at price 0.50 (buyers 1-6 buy).
    """
    q = TABLE1_QUANTITIES
    units = np.arange(1, int(max_units) + 1, dtype=float)
    return MenuEconomy.single_good(q[:, None], (q * TABLE1_VALUES)[:, None],
                                   units[None, :], marginal_cost * units[None, :])


def milgrom_watt_random(n_buyers: int, *, seed: int = 0, batch_shape: tuple[int, ...] = (),
                        marginal_cost: float = 0.5, max_units: int | None = None) -> MenuEconomy:
    """The large version of Table 1: ``v_n, q_n ~ U[0, 1]``, one integer-production seller
    at marginal cost ``marginal_cost`` with capacity ``max_units`` (default: enough for all)."""
    rng = np.random.default_rng(seed)
    shape = tuple(batch_shape) + (int(n_buyers),)
    v = rng.uniform(size=shape)
    q = rng.uniform(size=shape)
    if max_units is None:
        max_units = int(np.ceil(q.sum(-1).max())) + 1
    units = np.arange(1, max_units + 1, dtype=float)
    return MenuEconomy.single_good(q[..., None], (q * v)[..., None],
                                   units[None, :], marginal_cost * units[None, :])


def random_menu_economy(n_buyers: int = 20, n_sellers: int = 4, buyer_options: int = 4,
                        seller_options: int = 4, n_goods: int = 2, *, seed: int = 0,
                        batch_shape: tuple[int, ...] = (), integer: bool = False) -> MenuEconomy:
    """Random non-convex menu economy (a workload generator for tests and benchmarks).

    Buyer option bundles are uniform on ``[0, 1]^L`` (``integer=True``: on ``{0,1,2}^L``)
    with values ``bundle-sum * U[0.5, 1.5]`` (non-concave); seller plans are uniform on
    ``[0, 2]^L`` (``{0,..,4}^L``) with costs ``plan-sum * U[0.3, 1.2]`` plus a fixed cost
    ``U[0, 0.5]`` (non-convex).  Option 0 is empty.  Supply capacity comfortably exceeds
    demand for moderate ``n_buyers / n_sellers``.
    """
    rng = np.random.default_rng(seed)
    b = tuple(batch_shape)
    N, F, Kb, Ks, L = int(n_buyers), int(n_sellers), int(buyer_options), int(seller_options), int(n_goods)
    if integer:
        X = rng.integers(0, 3, size=b + (N, Kb, L)).astype(float)
        Y = rng.integers(0, 5, size=b + (F, Ks, L)).astype(float)
    else:
        X = rng.uniform(size=b + (N, Kb, L))
        Y = 2.0 * rng.uniform(size=b + (F, Ks, L)) * max(1.0, N / (2.0 * F * L))
    V = X.sum(-1) * rng.uniform(0.5, 1.5, size=b + (N, Kb))
    C = Y.sum(-1) * rng.uniform(0.3, 1.2, size=b + (F, Ks)) + rng.uniform(0, 0.5, size=b + (F, 1))
    if integer:
        V = np.round(V, 2)
        C = np.round(C, 2)
    X[..., 0, :] = 0.0
    V[..., 0] = 0.0
    Y[..., 0, :] = 0.0
    C[..., 0] = 0.0
    return MenuEconomy(X, V, Y, C)
