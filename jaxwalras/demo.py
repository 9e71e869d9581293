"""``jaxwalras demo``: solves the built-in example markets of the three families and prints
what it computed (tables in Markdown).  Each section is a function ``demo_<name>(print_fn)``
listed in :data:`SECTIONS`; the command-line interface is in :mod:`jaxwalras.cli`."""
from __future__ import annotations

import math
import time
from typing import Any, Callable

import numpy as np

from . import cats, examples
from .auction import buyer_optimal_equilibrium
from .bundling import combinatorial_walrasian_equilibrium
from .checks import is_walrasian
from .combinatorial import optimal_allocation
from .item_prices import best_item_price_welfare, walrasian_equilibrium
from .convexified import convexified_equilibrium
from .lp import lp_min_walrasian_prices
from .markup import markup_mechanism
from .multiunit import MultiUnitMarket
from .rationing import rationing_mechanism
from .welfare import efficient_allocation

__all__ = ["SECTIONS", "demo_multiunit", "demo_convexified", "demo_mechanisms",
           "demo_combinatorial", "run_demo"]

EXAMPLES = [
    ("capacities s_j, not infinity", [[3, 4], [2, 1]], [1, 3], [1, 1]),
    ("two buyers, two objects", [[4, 4], [5, 3]], [2, 1], [1, 1]),
    ("copy method fails (true p*)", [[5, 3]], [2], [1, 1]),
    ("copy method fails (copies)", [[5, 3], [5, 3]], [1, 1], [1, 1]),
    ("multi-unit p* is not VCG", [[10], [4]], [2, 1], [2]),
]


def demo_multiunit(print_fn=print, n_markets: int = 500) -> None:
    print_fn("== Multi-unit matching markets: buyer-optimal Walrasian prices (Eickhoff et al. 2024) ==")
    print_fn("Flow-based ascending auction: greedy bundles on the device, left-most min cuts "
             "on the host.\n")
    print_fn(f"{'example':32s} {'values':22s} {'d':8s} {'s':8s} {'p*':8s} {'allocation':18s} raises")
    for name, V, d, s in EXAMPLES:
        mkt = MultiUnitMarket(V, d, s)
        r = buyer_optimal_equilibrium(mkt)
        print_fn(f"{name:32s} {str(V):22s} {str(d):8s} {str(s):8s} {str(r.prices.tolist()):8s} "
                 f"{str(r.allocation.tolist()):18s} {int(r.iterations)}")
    rng = np.random.default_rng(0)
    B, n, m = n_markets, 30, 8
    mkt = MultiUnitMarket(rng.integers(0, 1001, (B, n, m)), rng.integers(1, 6, (B, n)),
                          rng.integers(1, 11, (B, m)))
    t0 = time.perf_counter()
    r = buyer_optimal_equilibrium(mkt)
    t_first = time.perf_counter() - t0
    t0 = time.perf_counter()
    r = buyer_optimal_equilibrium(mkt)
    t_batch = time.perf_counter() - t0
    k = 20
    t0 = time.perf_counter()
    lp = lp_min_walrasian_prices(mkt[:k])
    t_lp = (time.perf_counter() - t0) / k
    ok = is_walrasian(mkt, r.prices, r.allocation)
    print_fn(f"\nRandom batch: {B} markets x {n} buyers x {m} objects (values <= 1000, "
             f"demands <= 5, supplies <= 10)")
    print_fn(f"  all converged: {bool(r.converged.all())}; allocations Walrasian: "
             f"{int(ok.sum())}/{B}; prices equal the HiGHS LP on {int((lp == r.prices[:k]).all(-1).sum())}/{k} checked")
    print_fn(f"  raises per market: mean {r.iterations.mean():.1f}, max {r.iterations.max()}; "
             f"max flows per market: mean {r.max_flows.mean():.1f}")
    print_fn(f"  time: {1e3 * t_batch / B:.2f} ms/market batched (first call with compilation "
             f"{t_first:.1f} s) vs {1e3 * t_lp:.1f} ms/market for the HiGHS LP loop "
             f"-> {t_lp * B / t_batch:.0f}x")
    print_fn(f"  first market: p* = {r.prices[0].tolist()}")


def demo_convexified(print_fn: Any = print) -> None:
    """CLI demo: the Milgrom-Watt Table 1 economy and a small batch (built-in data)."""
    eco = examples.milgrom_watt_table1()
    r = convexified_equilibrium(eco)
    q = np.asarray(eco.buyer_bundles[:, 1, 0])
    v = np.asarray(eco.buyer_values[:, 1]) / q
    print_fn("Convexified equilibrium of Milgrom & Watt's Table 1 economy (seller: marginal cost 0.50)")
    print_fn("| buyer | value/unit | quantity | weight on buying |")
    print_fn("|---|---|---|---|")
    for n in range(len(q)):
        print_fn(f"| {n + 1} | {v[n]:.2f} | {q[n]:.2f} | {float(r.buyer_weights[n, 1]):.3f} |")
    sold = float((r.buyer_weights[:, 1] * q).sum())
    print_fn(f"price {float(r.prices[0]):.2f}, units traded {sold:.2f}, seller mixes "
             f"{[(k, round(float(w), 3)) for k, w in enumerate(r.seller_weights[0]) if w > 0]} "
             f"(k units, weight); rel. duality gap {float(r.rel_gap):.1e}")
    batch = examples.random_menu_economy(40, 4, 5, 5, 3, seed=0, batch_shape=(64,))
    rb = convexified_equilibrium(batch, markup=np.array([[0.0], [0.1]]))
    print_fn(f"64 random 3-good economies x 2 markups on the device + exact finish: all converged "
             f"= {bool(rb.converged.all())}, max rel. gap {float(rb.rel_gap.max()):.1e}, "
             f"mean welfare {rb.primal_value.mean(-1).round(3).tolist()} at markups [0, 0.1]")


# ---------------------------------------------------------------------------------------
def demo_mechanisms(print_fn: Any = print) -> None:
    """CLI demo: Milgrom & Watt's Table 1 -- pseudo-equilibrium, markup and rationing
    outcomes, the efficient allocation and the welfare-bound certificates (< 5 s on CPU)."""
    eco = examples.milgrom_watt_table1()
    ce = convexified_equilibrium(eco, method="lp")
    q = np.asarray(eco.buyer_bundles)[:, 1, 0]
    mk = markup_mechanism(eco)
    ra = rationing_mechanism(eco, backend="host")
    opt = efficient_allocation(eco)
    optc = efficient_allocation(eco, convex_buyers=True)
    print_fn("Milgrom & Watt, Table 1: one good, 10 all-or-nothing buyers, one integer seller "
             "at marginal cost 0.50 (no Walrasian equilibrium)")
    print_fn(f"convexified pseudo-equilibrium: p = {float(ce.prices[0]):.2f}, "
             f"{float((np.asarray(ce.buyer_weights)[:, 1] * q).sum()):.2f} units demanded")
    print_fn("| outcome | seller price | buyer price | units | buyers served | budget surplus "
             "| welfare | S* | loss bound |")
    print_fn("|---|---|---|---|---|---|---|---|---|")
    served = ",".join(str(i + 1) for i in np.nonzero(np.asarray(mk.buyer_choice))[0])
    print_fn(f"| markup (alpha={float(mk.markup):.4f}) | {float(mk.prices[0]):.3f} | "
             f"{float(mk.buyer_prices[0]):.4f} | {int(mk.seller_choice[0])} | {served} | "
             f"{float(mk.budget_surplus):.3g} | {float(mk.welfare):.4f} | "
             f"{float(opt.welfare):.4f} | {float(mk.welfare_bound):.4f} |")
    alloc = np.asarray(ra.buyer_allocation)[:, 0]
    rs = ",".join(f"{i + 1}" + ("" if abs(alloc[i] - q[i]) < 1e-9 else f"({alloc[i]:.2f})")
                  for i in np.nonzero(alloc > 1e-9)[0])
    print_fn(f"| rationing | {float(ra.prices[0]):.3f} | {float(ra.prices[0]):.3f} | "
             f"{int(ra.seller_choice[0])} | {rs} | {float(ra.budget_surplus):.3g} | "
             f"{float(ra.welfare):.4f} | {float(optc.welfare):.4f} | "
             f"{float(ra.welfare_bound):.4f} |")
    served = ",".join(str(i + 1) for i in np.nonzero(np.asarray(opt.buyer_choice))[0])
    print_fn(f"| efficient (MILP) | - | - | {int(opt.seller_choice[0])} | {served} | - | "
             f"{float(opt.welfare):.4f} | {float(opt.welfare):.4f} | 0 |")
    print_fn("(rationing: buyers' values are convexified, so its S* is the concave-buyer optimum)")


# ============================================================================ demo
def demo_combinatorial(print_fn: Callable[[str], None] = print) -> None:
    """Print shoes, shirts and one CATS market: item-price welfare vs bundling (CLI demo)."""
    rows = []
    for name, cm in [("shoes", examples.shoes())] + [(f"shirts(m={k})", examples.shirts(k))
                                                  for k in (3, 4, 6)]:
        oa = optimal_allocation(cm)
        we = walrasian_equilibrium(cm)
        bip = best_item_price_welfare(cm)
        cwe = combinatorial_walrasian_equilibrium(cm)
        rows.append((name, float(oa.welfare), bool(we.exists), float(bip.welfare),
                     float(cwe.welfare), int((cwe.bundles > 0).sum())))
    cm = cats.regions(n_bidders=6, m=8, seed=0)
    oa = optimal_allocation(cm)
    we = walrasian_equilibrium(cm)
    cwe = combinatorial_walrasian_equilibrium(cm)
    rows.append(("CATS regions n=6 m=8", float(oa.welfare), bool(we.exists), float("nan"),
                 float(cwe.welfare), int((cwe.bundles > 0).sum())))
    print_fn("Combinatorial markets (Feldman, Gravin & Lucier 2013): item prices vs bundling (CWE)")
    print_fn("| market | OPT | item-price WE? | best item-price welfare | CWE welfare | bundles |")
    print_fn("|---|---|---|---|---|---|")
    for r in rows:
        bip_text = "-" if math.isnan(r[3]) else f"{r[3]:.4g}"
        print_fn(f"| {r[0]} | {r[1]:.4g} | {'yes' if r[2] else 'no'} | {bip_text} | {r[4]:.4g} | {r[5]} |")

#: demo sections in the order ``jaxwalras demo`` runs them
SECTIONS: dict[str, Callable[..., None]] = {
    "multiunit": demo_multiunit,
    "convexified": demo_convexified,
    "mechanisms": demo_mechanisms,
    "combinatorial": demo_combinatorial,
}


def run_demo(sections: list[str] | None = None, print_fn: Callable[[str], Any] = print) -> int:
    """Run the demo ``sections`` (default: all) and print their tables and timings."""
    import jax
    print_fn(f"jaxwalras demo on built-in data (JAX backend: {jax.default_backend()}, "
             f"device: {jax.devices()[0].device_kind})\n")
    for name in sections or list(SECTIONS):
        t0 = time.perf_counter()
        SECTIONS[name](print_fn)
        print_fn(f"[{name}: {time.perf_counter() - t0:.1f} s]\n")
    return 0
