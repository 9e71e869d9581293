"""jaxwalras: market equilibria and the pricing mechanisms that replace them when
equilibria fail -- exact where exactness is possible, batched over thousands of markets
on GPU or CPU with JAX.

Three bodies of work (see ``DESIGN.md`` in the project docs and the README):

* multi-unit matching markets: buyer-optimal Walrasian prices by a flow-based ascending
  auction (seed 001);
* non-convex economies: convexified equilibria, markup and rationing mechanisms
  (Milgrom & Watt, seed 000);
* combinatorial markets: item-price Walrasian equilibria and bundling
  (Lucier; Feldman, Gravin & Lucier, seed 002).
"""
from __future__ import annotations

__version__ = "0.1.0"

# --- seed 001: multi-unit matching markets -------------------------------------------
from jaxwalras.multiunit import (MultiUnitMarket, PreferredBundles, indirect_utility,
                                 lyapunov, preferred_bundles, stack_markets)
from jaxwalras.auction import STATUS, AuctionResult, buyer_optimal_equilibrium, reoptimize
from jaxwalras.checks import check_walrasian, is_walrasian
from jaxwalras.lp import lp_min_walrasian_prices
# --- seed 000: non-convex economies ----------------------------------------------------
from .economy import MenuEconomy  # noqa: E402
from .convexified import (ConvexifiedResult, convexified_equilibrium,  # noqa: E402
                          demand_gaps, dual_objective, smoothed_equilibrium,
                          SmoothedEquilibrium)
from . import examples  # noqa: E402,F401
# seed 000, issue 4: rounding, mechanisms, bound-form welfare theorem
from .rounding import RoundingResult, shapley_folkman_rounding, worst_case_reserve  # noqa: E402
from .mechanisms import (MarkupResult, RationingResult, markup_mechanism,  # noqa: E402
                         rationing_mechanism)
from .welfare import (EfficientAllocation, WelfareBound, efficient_allocation,  # noqa: E402
                      welfare_bound)
from .economy_json import load_economy, save_economy  # noqa: E402
# --- seed 002: combinatorial markets ---------------------------------------------------
from .combinatorial import (  # noqa: E402
    CWEResult, DemandResult, ItemPriceWelfareResult, OptimalAllocationResult,
    SetFunctionMarket, WalrasianResult, allocation_welfare, ascending_auction,
    best_item_price_welfare, bundle_demand, check_cwe, combinatorial_walrasian_equilibrium,
    is_gross_substitutes, item_demand, optimal_allocation, walrasian_equilibrium,
)
from .combinatorial import ItemPriceAuctionResult  # noqa: E402
from . import cats  # noqa: E402  (CATS workload generators: jw.cats.regions(...), ...)
