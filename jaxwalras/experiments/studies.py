"""The built-in studies: the headline claims of the three papers, measured over sizes.

=====================  ==================================================================
``markup-scaling``     Table-1-type markets (Milgrom & Watt 2022), ``N`` = 1e2..1e6: the
                       least budget-feasible markup (theory ``O(1/N)``: log-log slope
                       ``-1``), welfare, the bound-form certificate (``O(1)``), budget
                       surplus, and the loss against the convexified optimum.
``rationing-vs-markup`` random multi-good replica economies (sellers grow with ``N``):
                       welfare of the markup and rationing mechanisms against the
                       efficient optimum (exact MILP) and the convexified optimum; the
                       markup mechanism's relative loss and least markup are fitted
                       (theory ``O(1/N)``); the rationing mechanism is compared with the
                       optimum for concave buyers (its loss is often exactly 0 here, so
                       no rate is fitted).
``auction-rounds``     the flow-based ascending auction (Eickhoff et al. 2024): price
                       raises and max flows against ``n``, ``m`` and the value range,
                       with and without jumps, long steps and flow warm starts; the
                       unit-step auction's raise count is exactly ``max_j p*_j``.
``cwe-welfare``        CWE welfare / OPT (Feldman, Gravin & Lucier 2013: at least 1/2)
                       and the item-price Walrasian equilibrium existence rate across the
                       CATS distributions (Leyton-Brown et al. 2000) and ``m``.
``monotonicity``       buyer-optimal prices after demands rise or supplies fall (they
                       rise, Eickhoff et al. 2024, Thm. 14), and the raises and max flows
                       a warm start saves.
=====================  ==================================================================
"""
from __future__ import annotations

from typing import Any

from .spec import Study

__all__ = ["STUDIES", "get_study"]

_HALF_DECADES = [100, 316, 1000, 3162, 10000, 31623, 100000, 316228, 1000000]

MARKUP_SCALING = Study(
    name="markup-scaling",
    description="least markup, welfare, certificate and budget surplus of the markup "
                "mechanism on Table-1-type markets, N = 1e2..1e6 (Milgrom & Watt 2022)",
    generator="single-good",
    grid={"n_buyers": _HALF_DECADES},
    seeds=5,
    compute=[{"capability": "markup", "prefix": ""},
             {"capability": "convexified", "prefix": "convexified_"}],
    derive={
        "relative_loss_bound": "welfare_bound / welfare",
        "loss": "convexified_value - welfare",
        "relative_loss": "(convexified_value - welfare) / convexified_value",
        "bound_holds": "convexified_value - welfare <= welfare_bound"
                       " + 1e-9 * abs(convexified_value)",
    },
    size_param="n_buyers",
    cost="n_buyers",
    batch_size=16,
    batch_cost=2_000_000,
    fits=[{"x": "n_buyers", "y": "markup", "expected": -1.0, "band": [-1.6, -0.5],
           "label": "least markup ~ N^b (theory O(1/N))"},
          {"x": "n_buyers", "y": "welfare_bound", "expected": 0.0, "band": [-0.5, 0.5],
           "label": "welfare-loss certificate ~ N^b (theory O(1))"},
          {"x": "n_buyers", "y": "relative_loss_bound", "expected": -1.0,
           "band": [-1.5, -0.5], "label": "certified relative loss ~ N^b"}],
    figure={"title": "markup mechanism on Table-1-type markets",
            "panels": [
                {"x": "n_buyers", "y": "markup", "logx": True, "logy": True,
                 "title": "least budget-feasible markup"},
                {"x": "n_buyers", "y": "welfare_bound", "logx": True, "logy": True,
                 "title": "welfare-loss certificate (bound form)"},
                {"x": "n_buyers", "y": "relative_loss_bound", "logx": True, "logy": True,
                 "title": "certificate / welfare"},
                {"x": "n_buyers", "y": "budget_surplus", "logx": True,
                 "title": "budget surplus"}]},
)

RATIONING_VS_MARKUP = Study(
    name="rationing-vs-markup",
    description="welfare of the markup and rationing mechanisms against the efficient "
                "optimum as N grows (random 2-good replica economies, Milgrom & Watt 2022)",
    generator="menu",
    grid={"n_buyers": [10, 20, 40, 80, 160]},
    fixed={"buyers_per_seller": 5, "n_goods": 2, "buyer_options": 4, "seller_options": 4},
    seeds=4,
    compute=[{"capability": "markup", "prefix": "markup_", "options": {"backend": "host"}},
             {"capability": "rationing", "prefix": "rationing_",
              "options": {"backend": "host"}},
             {"capability": "efficient", "prefix": "opt_",
              "options": {"time_limit": 30.0}},
             {"capability": "efficient", "prefix": "opt_convex_",
              "options": {"convex_buyers": True, "time_limit": 30.0}},
             {"capability": "convexified", "prefix": "convexified_",
              "options": {"method": "lp"}}],
    derive={
        "markup_ratio": "markup_welfare / opt_welfare",
        "rationing_ratio": "rationing_welfare / opt_convex_welfare",
        "markup_loss": "(convexified_value - markup_welfare) / convexified_value",
        "rationing_loss": "(convexified_value - rationing_welfare) / convexified_value",
        "markup_bound_holds": "opt_welfare - markup_welfare <= markup_welfare_bound"
                              " + 1e-7 * abs(opt_welfare)",
        "rationing_bound_holds": "opt_convex_welfare - rationing_welfare <= "
                                 "rationing_welfare_bound + 1e-7 * abs(opt_convex_welfare)",
    },
    size_param="n_buyers",
    cost="n_buyers",
    batch_size=8,
    fits=[{"x": "n_buyers", "y": "markup_loss", "expected": -1.0,
           "label": "markup mechanism: relative loss ~ N^b (theory O(1/N))"},
          {"x": "n_buyers", "y": "markup_markup", "expected": -1.0,
           "label": "least markup ~ N^b"}],
    figure={"title": "markup vs rationing mechanism (random 2-good replica economies)",
            "panels": [
                {"x": "n_buyers", "y": "markup_ratio", "logx": True, "hline": 1.0,
                 "title": "markup mechanism: welfare / optimum"},
                {"x": "n_buyers", "y": "rationing_ratio", "logx": True, "hline": 1.0,
                 "title": "rationing mechanism: welfare / optimum (concave buyers)"},
                {"x": "n_buyers", "y": "markup_loss", "logx": True, "logy": True,
                 "title": "markup: loss / convexified optimum"},
                {"x": "n_buyers", "y": "markup_markup", "logx": True, "logy": True,
                 "title": "least markup"}]},
)

_VARIANT = ["step", "jumps", "warm_start"]
_AT_BASE_NM = {"n_buyers": "$fixed", "n_objects": "$fixed"}      # the value-range sweep
_AT_BASE_MV = {"n_objects": "$fixed", "max_value": "$fixed", "step": "long"}   # the n sweep
AUCTION_ROUNDS = Study(
    name="auction-rounds",
    description="price raises and max flows of the flow-based ascending auction against "
                "n, m and the value range; jumps, long steps, flow warm starts "
                "(Eickhoff et al. 2024)",
    generator="multiunit",
    grid=[
        {"n_buyers": [10, 20, 50, 100, 200], "step": ["long"], "jumps": [True, False],
         "warm_start": [True, False]},
        {"n_objects": [4, 6, 10, 14, 20], "step": ["long"], "jumps": [True, False]},
        {"max_value": [10, 30, 100, 300, 1000], "step": ["long", "search", "unit"],
         "jumps": [False]},
        {"max_value": [10, 30, 100, 300, 1000], "step": ["long"], "jumps": [True]},
    ],
    fixed={"n_buyers": 50, "n_objects": 10, "max_value": 1000, "max_demand": 5,
           "max_supply": 10, "warm_start": True},
    seeds=8,
    compute={"capability": "auction", "options": {"check": True}},
    derive={"unit_raises_equal_max_price":
            "raises == max_price if step == 'unit' and not jumps else True"},
    size_param="n_buyers",
    cost="n_buyers * n_objects * (max_value / 50 if step == 'unit' else 1)",
    batch_size=16,
    fits=[{"x": "max_value", "y": "raises", "by": _VARIANT,
           "where": {"step": "unit", "jumps": False, **_AT_BASE_NM},
           "expected": 1.0, "band": [0.7, 1.3],
           "label": "unit-step auction: raises ~ (value range)^b (theory: = max p*, linear)"},
          {"x": "max_value", "y": "raises", "by": _VARIANT,
           "where": {"step": ["long", "search"], **_AT_BASE_NM},
           "label": "long / search steps: raises ~ (value range)^b"},
          {"x": "n_buyers", "y": "max_flows", "by": _VARIANT, "where": _AT_BASE_MV,
           "label": "max flows ~ n^b"}],
    figure={"title": "flow-based ascending auction: rounds",
            "panels": [
                {"x": "n_buyers", "y": "raises", "by": _VARIANT, "logx": True, "logy": True,
                 "where": _AT_BASE_MV, "title": "price raises vs n"},
                {"x": "n_buyers", "y": "max_flows", "by": _VARIANT, "logx": True,
                 "logy": True, "where": _AT_BASE_MV, "title": "max flows vs n"},
                {"x": "n_objects", "y": "raises", "by": _VARIANT,
                 "where": {"n_buyers": "$fixed", "max_value": "$fixed", "step": "long"},
                 "title": "price raises vs m"},
                {"x": "max_value", "y": "raises", "by": _VARIANT, "logx": True,
                 "logy": True, "where": _AT_BASE_NM, "title": "price raises vs value range"},
                {"x": "max_value", "y": "max_flows", "by": _VARIANT, "logx": True,
                 "logy": True, "where": _AT_BASE_NM, "title": "max flows vs value range"}]},
)

CWE_WELFARE = Study(
    name="cwe-welfare",
    description="CWE welfare / OPT and item-price WE existence across the CATS "
                "distributions and m (Feldman, Gravin & Lucier 2013)",
    generator="cats",
    grid={"distribution": ["arbitrary", "regions", "paths", "scheduling"],
          "m": [5, 6, 8, 10]},
    fixed={"n_bidders": 5},
    seeds=12,
    compute=[{"capability": "cwe", "prefix": "cwe_"},
             {"capability": "walrasian", "prefix": "we_"}],
    derive={"half_bound_holds": "cwe_welfare >= cwe_start_welfare / 2 - n_bidders * cwe_tol"},
    size_param="m",
    cost="2 ** m",
    batch_size=32,
    figure={"title": "combinatorial Walrasian equilibria on CATS workloads",
            "panels": [
                {"x": "m", "y": "cwe_ratio", "by": "distribution", "hline": 0.5,
                 "title": "CWE welfare / OPT (theory >= 1/2)"},
                {"x": "m", "y": "we_exists", "by": "distribution",
                 "title": "item-price WE exists (rate)"}]},
)

MONOTONICITY = Study(
    name="monotonicity",
    description="buyer-optimal prices after demand rises / supply falls on random "
                "multi-unit markets, and the warm-start savings (Eickhoff et al. 2024, "
                "Thm. 14)",
    generator="multiunit",
    grid={"n_buyers": [10, 20, 50, 100], "change": ["demand", "supply"]},
    fixed={"n_objects": 10, "max_value": 1000, "max_demand": 5, "max_supply": 10},
    seeds=8,
    compute="monotonicity",
    size_param="n_buyers",
    cost="n_buyers * n_objects",
    batch_size=16,
    figure={"title": "monotonicity and warm starts",
            "panels": [
                {"x": "n_buyers", "y": "raises_cold", "by": "change", "logx": True,
                 "title": "price raises from scratch"},
                {"x": "n_buyers", "y": "raises_warm", "by": "change", "logx": True,
                 "title": "price raises warm-started"},
                {"x": "n_buyers", "y": "flow_savings", "by": "change", "logx": True,
                 "title": "max flows saved by the warm start"},
                {"x": "n_buyers", "y": "monotone", "by": "change", "logx": True,
                 "title": "new prices >= old (rate; theory 1)"}]},
)

#: name -> built-in :class:`~jaxwalras.experiments.Study`
STUDIES: dict[str, Study] = {s.name: s for s in (MARKUP_SCALING, RATIONING_VS_MARKUP,
                                                 AUCTION_ROUNDS, CWE_WELFARE, MONOTONICITY)}


def get_study(name: Any, field: str = "study") -> Study:
    """The built-in study ``name``.

    Raises
    ------
    ValueError
        Unknown name (the message lists the built-in studies).

    Examples
    --------
    >>> from jaxwalras.experiments import get_study
    >>> get_study("markup-scaling").size_param
    'n_buyers'
    """
    if isinstance(name, str) and name in STUDIES:
        return STUDIES[name]
    raise ValueError(f"{field}: unknown study {name!r}; built-in studies are "
                     f"{', '.join(STUDIES)} (or give a .toml/.json spec file)")
