"""Benchmark: batched convexified equilibria (device method + exact finish) vs the
per-economy HiGHS LP loop a user would otherwise write.

    python benchmarks/bench_convexified.py            # default workload (< 4 min on 2 CPUs)
    python benchmarks/bench_convexified.py --quick    # seconds-long smoke run

Workload 1: a batch of random non-convex menu economies (``jw.examples.random_menu_economy``).
Workload 2: one large single-good market (Milgrom-Watt "large version", ``v, q ~ U[0,1]``).
The LP baseline is timed on ``--lp-subset`` economies and extrapolated per economy (stated
in the output).  Accuracy: relative duality gap of the jaxwalras answer and the difference
of its LP objective from HiGHS'.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

import jaxwalras as jw  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--economies", type=int, default=1000)
    ap.add_argument("--buyers", type=int, default=100)
    ap.add_argument("--sellers", type=int, default=10)
    ap.add_argument("--options", type=int, default=8)
    ap.add_argument("--goods", type=int, default=5)
    ap.add_argument("--lp-subset", type=int, default=200, help="economies timed for the LP baseline")
    ap.add_argument("--large-n", type=int, nargs="*", default=[10_000, 30_000],
                    help="buyers in the large single-good markets (the LP baseline grows fast: 1e6 is for the GPU run with patience)")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    if args.quick:
        args.economies, args.lp_subset, args.large_n = 64, 16, [10_000]
    backend = jax.default_backend()
    out = args.out or os.path.join(os.path.dirname(__file__), "results",
                                   f"convexified_{backend}.json")
    rows = []

    # ---- workload 1: batch of menu economies
    B = args.economies
    eco = jw.examples.random_menu_economy(args.buyers, args.sellers, args.options, args.options,
                                          args.goods, seed=0, batch_shape=(B,))
    sub = min(args.lp_subset, B)
    t0 = time.perf_counter()
    ref = jw.convexified_equilibrium(eco[:sub], method="lp")
    t_lp = (time.perf_counter() - t0) / sub
    jw.convexified_equilibrium(eco)                        # compile (same shapes as timed run)
    t0 = time.perf_counter()
    res = jw.convexified_equilibrium(eco)
    t_dev = (time.perf_counter() - t0) / B
    t0 = time.perf_counter()
    jax.block_until_ready(jw.convexified_equilibrium(eco, exact=False).prices)
    t_dev_only = (time.perf_counter() - t0) / B
    dprim = np.abs(res.primal_value[:sub] - ref.primal_value) / np.maximum(1, np.abs(ref.primal_value))
    rows.append(dict(workload=f"batch {B} x (N={args.buyers}, F={args.sellers}, K={args.options}, L={args.goods})",
                     method="device+exact", ms_per_economy=1e3 * t_dev,
                     lp_ms_per_economy=1e3 * t_lp, speedup=t_lp / t_dev,
                     max_rel_gap=float(res.rel_gap.max()), converged=float(res.converged.mean()),
                     max_rel_obj_diff_vs_lp=float(dprim.max())))
    rows.append(dict(workload=rows[-1]["workload"], method="device only (float32, exact=False)",
                     ms_per_economy=1e3 * t_dev_only, lp_ms_per_economy=1e3 * t_lp,
                     speedup=t_lp / t_dev_only,
                     max_rel_gap=float(jw.convexified_equilibrium(eco[:sub], exact=False).rel_gap.max()),
                     converged=float("nan"), max_rel_obj_diff_vs_lp=float("nan")))

    # ---- workload 2: large single-good markets
    for n in args.large_n:
        big = jw.examples.milgrom_watt_random(n, seed=1)
        t0 = time.perf_counter()
        ref = jw.convexified_equilibrium(big, method="lp")
        t_lp = time.perf_counter() - t0
        jw.convexified_equilibrium(big)
        t0 = time.perf_counter()
        res = jw.convexified_equilibrium(big)
        t_dev = time.perf_counter() - t0
        rows.append(dict(workload=f"single good, N={n} buyers", method="device+exact",
                         ms_per_economy=1e3 * t_dev, lp_ms_per_economy=1e3 * t_lp,
                         speedup=t_lp / t_dev, max_rel_gap=float(res.rel_gap),
                         converged=float(res.converged),
                         max_rel_obj_diff_vs_lp=float(abs(res.primal_value - ref.primal_value)
                                                      / max(1, abs(ref.primal_value)))))
    cols = ["workload", "method", "ms_per_economy", "lp_ms_per_economy", "speedup",
            "max_rel_gap", "converged", "max_rel_obj_diff_vs_lp"]
    print(_common.markdown_table(rows, cols))
    print(f"\nLP baseline (HiGHS dual simplex per economy via scipy) timed on {sub} of {B} "
          f"economies and extrapolated per economy; backend={backend}.")
    _common.write_json(out, {"benchmark": "convexified", "args": vars(args), "rows": rows})
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
