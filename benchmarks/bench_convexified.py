"""Benchmark: batched convexified equilibria (device method + exact finish) vs the
per-economy HiGHS LP loop a user would otherwise write.

    python benchmarks/bench_convexified.py            # default workload (~2 min on 2 CPUs)
    python benchmarks/bench_convexified.py --quick    # seconds-long smoke run

Workload 1: a batch of random non-convex menu economies (``jw.examples.random_menu_economy``):
the device method (projected Newton on the smoothed dual, float32) + exact finish (restricted
HiGHS LPs, certified against the full menu), and the device solve alone (``exact=False``).
Workload 2: large single-good markets (Milgrom-Watt "large version", ``v, q ~ U[0,1]``, one
integer-production seller at marginal cost 0.5 with room for everyone): the exact envelope
method (``L == 1``), up to 10^6 buyers; HiGHS only up to ``--lp-max-n`` buyers (its time grows
fast: n/a beyond).  Times are best-of-``--repeat`` wall clock after a warm-up run; the LP
baseline of workload 1 is timed on ``--lp-subset`` economies and extrapolated per economy.
Accuracy: relative duality gap of the jaxwalras answer and the difference of its LP
objective from HiGHS'.
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


def _best(fn, repeat: int) -> tuple[float, object]:
    """Best-of-``repeat`` wall time (seconds) and the last result."""
    best, out = float("inf"), None
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        out = fn()
        jax.block_until_ready(getattr(out, "prices", out))
        best = min(best, time.perf_counter() - t0)
    return best, out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--economies", type=int, default=1000)
    ap.add_argument("--buyers", type=int, default=100)
    ap.add_argument("--sellers", type=int, default=10)
    ap.add_argument("--options", type=int, default=8)
    ap.add_argument("--goods", type=int, default=5)
    ap.add_argument("--lp-subset", type=int, default=200, help="economies timed for the LP baseline")
    ap.add_argument("--large-n", type=int, nargs="*",
                    default=[10_000, 30_000, 100_000, 300_000, 1_000_000],
                    help="buyers in the large single-good markets")
    ap.add_argument("--lp-max-n", type=int, default=30_000,
                    help="largest single-good market also solved by HiGHS (n/a beyond)")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs (best of) per row")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    if args.quick:
        args.economies, args.lp_subset, args.large_n, args.repeat = 64, 16, [10_000, 100_000], 1
    backend = jax.default_backend()
    out = args.out or os.path.join(os.path.dirname(__file__), "results",
                                   f"convexified_{backend}.json")
    rows = []

    # ---- workload 1: batch of menu economies
    B = args.economies
    eco = jw.examples.random_menu_economy(args.buyers, args.sellers, args.options, args.options,
                                          args.goods, seed=0, batch_shape=(B,))
    sub = min(args.lp_subset, B)
    jw.convexified_equilibrium(eco[:2], method="lp")
    t_lp, ref = _best(lambda: jw.convexified_equilibrium(eco[:sub], method="lp"), args.repeat)
    t_lp /= sub
    jw.convexified_equilibrium(eco)                        # compile (same shapes as timed run)
    t_dev, res = _best(lambda: jw.convexified_equilibrium(eco), args.repeat)
    t_dev /= B
    jw.convexified_equilibrium(eco, exact=False)
    t_dev_only, res0 = _best(lambda: jw.convexified_equilibrium(eco, exact=False), args.repeat)
    t_dev_only /= B
    dprim = np.abs(res.primal_value[:sub] - ref.primal_value) / np.maximum(1, np.abs(ref.primal_value))
    work = f"batch {B} x (N={args.buyers}, F={args.sellers}, K={args.options}, L={args.goods})"
    rows.append(dict(workload=work, method="device+exact", ms_per_economy=1e3 * t_dev,
                     lp_ms_per_economy=1e3 * t_lp, speedup=t_lp / t_dev,
                     max_rel_gap=float(res.rel_gap.max()), converged=float(res.converged.mean()),
                     max_rel_obj_diff_vs_lp=float(dprim.max())))
    rows.append(dict(workload=work, method="device only (float32, exact=False)",
                     ms_per_economy=1e3 * t_dev_only, lp_ms_per_economy=1e3 * t_lp,
                     speedup=t_lp / t_dev_only, max_rel_gap=float(res0.rel_gap.max()),
                     converged=float("nan"), max_rel_obj_diff_vs_lp=float("nan")))

    # ---- workload 2: large single-good markets (exact envelope method)
    for n in args.large_n:
        big = jw.examples.milgrom_watt_random(n, seed=1)
        jw.convexified_equilibrium(big)
        t_env, res = _best(lambda: jw.convexified_equilibrium(big), args.repeat)
        row = dict(workload=f"single good, N={n} buyers", method="envelope (exact, L=1)",
                   ms_per_economy=1e3 * t_env, lp_ms_per_economy="n/a", speedup="n/a",
                   max_rel_gap=float(res.rel_gap), converged=float(res.converged),
                   max_rel_obj_diff_vs_lp="n/a", price=float(res.prices[0]))
        if n <= args.lp_max_n:
            t0 = time.perf_counter()
            ref = jw.convexified_equilibrium(big, method="lp")
            t_lp = time.perf_counter() - t0
            row.update(lp_ms_per_economy=1e3 * t_lp, speedup=t_lp / t_env,
                       max_rel_obj_diff_vs_lp=float(abs(res.primal_value - ref.primal_value)
                                                    / max(1, abs(ref.primal_value))))
        rows.append(row)
    cols = ["workload", "method", "ms_per_economy", "lp_ms_per_economy", "speedup",
            "max_rel_gap", "converged", "max_rel_obj_diff_vs_lp"]
    print(_common.markdown_table(rows, cols))
    print(f"\nLP baseline (the whole LP by HiGHS dual simplex through highspy, method=\"lp\", one economy at a time) "
          f"timed on {sub} of {B} economies and extrapolated per economy; single-good HiGHS "
          f"runs once per market up to N={args.lp_max_n}; others best of {args.repeat}; "
          f"backend={backend}.")
    _common.write_json(out, {"benchmark": "convexified", "args": vars(args), "rows": rows})
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
