"""Benchmark: buyer-optimal Walrasian prices for batches of multi-unit markets.

jaxwalras (batched ascending auction: device greedy kernels + one union max flow per round)
against the CPU baselines a user would otherwise write:

* the per-market HiGHS LP loop (``jw.lp_min_walrasian_prices``: two LPs per market);
* a plain per-market unit-step auction in numpy + networkx.

Baselines are timed on a subset of the markets and reported per market. Exactness: prices
of every baseline-timed market are compared with jaxwalras'.

    python benchmarks/bench_auction.py                # default workload (README table)
    python benchmarks/bench_auction.py --quick        # seconds-long smoke run
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import machine_info, markdown_table, write_json  # noqa: E402

import jaxwalras as jw  # noqa: E402
from jaxwalras.flows import reference_unit_step_auction  # noqa: E402


def make_markets(seed, B, n, m, vmax, dmax, smax):
    rng = np.random.default_rng(seed)
    return jw.MultiUnitMarket(rng.integers(0, vmax + 1, (B, n, m)),
                              rng.integers(1, dmax + 1, (B, n)),
                              rng.integers(1, smax + 1, (B, m)))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--markets", type=int, default=1000)
    ap.add_argument("--buyers", type=int, default=50)
    ap.add_argument("--objects", type=int, default=10)
    ap.add_argument("--max-value", type=int, default=1000)
    ap.add_argument("--max-demand", type=int, default=5)
    ap.add_argument("--max-supply", type=int, default=10)
    ap.add_argument("--lp-markets", type=int, default=100, help="markets timed with HiGHS")
    ap.add_argument("--nx-markets", type=int, default=2, help="markets timed with networkx")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="tiny sizes, for a smoke test")
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    if a.quick:
        a.markets, a.buyers, a.objects, a.max_value = 64, 10, 5, 100
        a.lp_markets, a.nx_markets, a.repeat = 8, 1, 1
    out = a.out or os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                f"auction_{jax.default_backend()}.json")
    mkt = make_markets(a.seed, a.markets, a.buyers, a.objects, a.max_value, a.max_demand,
                       a.max_supply)
    V, d, s = mkt.host_arrays()
    print(f"workload: {a.markets} markets x {a.buyers} buyers x {a.objects} objects, values "
          f"<= {a.max_value}, demands <= {a.max_demand}, supplies <= {a.max_supply}; "
          f"backend {jax.default_backend()} ({machine_info()['device']})", flush=True)

    def run(backend, **kw):
        t0 = time.perf_counter()
        r = jw.buyer_optimal_equilibrium(mkt, backend=backend, **kw)
        first = time.perf_counter() - t0
        times = []
        for _ in range(a.repeat):
            t0 = time.perf_counter()
            r = jw.buyer_optimal_equilibrium(mkt, backend=backend, **kw)
            times.append(time.perf_counter() - t0)
        return r, first, min(times)

    res, first, t_jw = run("auto")
    extra = []
    # ablation: the same auction without the singleton jumps (the seed's long-step auction)
    r0, _, t0_ = run("auto", jumps=False)
    extra.append((f"jaxwalras batched, no singleton jumps (jumps=False; "
                  f"{r0.iterations.mean():.1f} raises/market vs {res.iterations.mean():.1f})",
                  t0_, bool((r0.prices == res.prices).all())))
    if jax.default_backend() != "cpu":   # also the host-flow path on this machine
        r2, _, t2 = run("host")
        extra.append(("jaxwalras, host max flows (backend='host')", t2,
                      bool((r2.prices == res.prices).all())))
    assert res.converged.all(), "auction did not converge on every market"
    walrasian = bool(jw.is_walrasian(mkt, res.prices, res.allocation).all())

    k = min(a.lp_markets, a.markets)
    t0 = time.perf_counter()
    lp = jw.lp_min_walrasian_prices(mkt[:k])
    t_lp = (time.perf_counter() - t0) / k
    lp_agree = int((lp == res.prices[:k]).all(-1).sum())

    knx = min(a.nx_markets, a.markets)
    t0 = time.perf_counter()
    nx_prices = [reference_unit_step_auction(V[b], d[b], s[b]) for b in range(knx)]
    t_nx = (time.perf_counter() - t0) / max(knx, 1)
    nx_agree = int(sum((p == res.prices[b]).all() for b, p in enumerate(nx_prices)))

    per = t_jw / a.markets
    auto_desc = ("all-device auction (backend='device')" if jax.default_backend() != "cpu"
                 and a.objects <= 12 else "device kernels + host max flows (backend='host')")
    rows = [
        {"method": f"jaxwalras batched, {auto_desc}", "markets timed": a.markets,
         "ms / market": 1e3 * per, "markets / s": 1 / per, "speed-up vs HiGHS": t_lp / per,
         "exact": f"{lp_agree}/{k} vs LP; Walrasian: {walrasian}"},
        {"method": "HiGHS LP loop (scipy)", "markets timed": k, "ms / market": 1e3 * t_lp,
         "markets / s": 1 / t_lp, "speed-up vs HiGHS": 1.0, "exact": "reference"},
        {"method": "networkx unit-step auction loop", "markets timed": knx,
         "ms / market": 1e3 * t_nx, "markets / s": 1 / t_nx, "speed-up vs HiGHS": t_lp / t_nx,
         "exact": f"{nx_agree}/{knx} vs jaxwalras"},
    ]
    for name, tt, same in extra:
        rows.insert(1, {"method": name, "markets timed": a.markets,
                        "ms / market": 1e3 * tt / a.markets, "markets / s": a.markets / tt,
                        "speed-up vs HiGHS": t_lp * a.markets / tt,
                        "exact": f"same prices as above: {same}"})
    cols = ["method", "markets timed", "ms / market", "markets / s", "speed-up vs HiGHS", "exact"]
    print(markdown_table(rows, cols))
    print(f"jaxwalras: first call (incl. compilation) {first:.2f} s, best of {a.repeat} "
          f"{t_jw:.3f} s; rounds {res.timings['rounds']}, raises/market mean "
          f"{res.iterations.mean():.1f} max {res.iterations.max()}, max flows/market mean "
          f"{res.max_flows.mean():.1f}; time split {res.timings}")
    write_json(out, {"benchmark": "auction", "args": vars(a), "rows": rows,
                     "first_call_s": first, "best_s": t_jw, "timings": res.timings,
                     "mean_raises": float(res.iterations.mean())})
    print(f"wrote {out}")
    return 0 if lp_agree == k and nx_agree == knx and walrasian else 1


if __name__ == "__main__":
    sys.exit(main())
