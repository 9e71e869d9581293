"""`jaxwalras demo`, multi-unit part: DESIGN §1 examples and a random batch."""
from __future__ import annotations

import time

import numpy as np

from jaxwalras.auction import buyer_optimal_equilibrium
from jaxwalras.checks import is_walrasian
from jaxwalras.lp import lp_min_walrasian_prices
from jaxwalras.multiunit import MultiUnitMarket

EXAMPLES = [
    ("capacities s_j, not infinity", [[3, 4], [2, 1]], [1, 3], [1, 1]),
    ("two buyers, two objects", [[4, 4], [5, 3]], [2, 1], [1, 1]),
    ("copy method fails (true p*)", [[5, 3]], [2], [1, 1]),
    ("copy method fails (copies)", [[5, 3], [5, 3]], [1, 1], [1, 1]),
    ("multi-unit p* is not VCG", [[10], [4]], [2, 1], [2]),
]


def demo_multiunit(print_fn=print, n_markets: int = 500) -> None:
    print_fn("== Multi-unit matching markets: buyer-optimal Walrasian prices (seed 001) ==")
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
