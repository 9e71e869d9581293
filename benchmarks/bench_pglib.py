"""Benchmark: the shipped real generator fleet (PGLib-UC rts_gmlc 2020-01-27), hour by hour.

Each hour of the case is a one-good menu economy (``jw.load_pglib_uc``: 73 thermal units
off / on at their cost breakpoints, 29 renewables with headroom, the net load valued at
10,000 $/MWh).  For every task jaxwalras is timed on ONE hour (per-call cost) and on a
24-hour batch (per hour), against the CPU baseline a power-market analyst would write:

  convex-hull price   jaxwalras ``convexified_equilibrium`` (exact one-good envelope)
                      vs the convexified LP written out for HiGHS (``scipy.optimize.linprog``,
                      one LP per hour); checked: the prices agree and attain the LP optimum
  markup mechanism    jaxwalras ``markup_mechanism`` (exact least markup over all pure
                      outcomes, float64 certificate) vs the HiGHS MILP of the hour's
                      efficient dispatch (``scipy.optimize.milp``), the unit-commitment solve
                      a market runs anyway; checked: every hour valid and certified least
  rationing mechanism jaxwalras ``rationing_mechanism`` vs the HiGHS LP (as above)
  efficient dispatch  jaxwalras ``efficient_allocation`` (HiGHS through highspy on scaled
                      data, answer re-checked) vs ``scipy.optimize.milp`` on the raw data;
                      checked: the same optimal welfare

Also reported per hour (JSON): the convex-hull price, markup, welfare of both mechanisms
and of the efficient dispatch, the welfare-bound certificate and the uplift.

Usage:  python benchmarks/bench_pglib.py [--quick] [--repeat 3] [--out PATH.json]
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import jax
import numpy as np
from scipy.optimize import LinearConstraint, linprog, milp

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import markdown_table, timeit, write_json  # noqa: E402

import jaxwalras as jw  # noqa: E402


def _arrays(e):
    return (np.asarray(e.buyer_bundles)[..., 0], np.asarray(e.buyer_values),
            np.asarray(e.buyer_mask), np.asarray(e.seller_bundles)[..., 0],
            np.asarray(e.seller_costs), np.asarray(e.seller_mask))


def highs_lp(e):
    """Convexified LP of one hour for HiGHS: (objective, price)."""
    x, V, bm, y, C, sm = _arrays(e)
    bi, si = np.argwhere(bm), np.argwhere(sm)
    N, F = x.shape[0], y.shape[0]
    A_eq = np.zeros((N + F, len(bi) + len(si)))
    A_eq[bi[:, 0], np.arange(len(bi))] = 1
    A_eq[N + si[:, 0], len(bi) + np.arange(len(si))] = 1
    res = linprog(np.concatenate([-V[bm], C[sm]]), A_ub=np.concatenate([x[bm], -y[sm]])[None],
                  b_ub=[0.0], A_eq=A_eq, b_eq=np.ones(N + F), bounds=(0, None), method="highs")
    return -res.fun, -res.ineqlin.marginals[0]


def highs_milp(e):
    """Efficient dispatch MILP of one hour (raw data, as a user writes it): welfare."""
    x, V, bm, y, C, sm = _arrays(e)
    bi, si = np.argwhere(bm), np.argwhere(sm)
    N, F = x.shape[0], y.shape[0]
    n = len(bi) + len(si)
    A = np.zeros((N + F + 1, n))
    A[bi[:, 0], np.arange(len(bi))] = 1
    A[N + si[:, 0], len(bi) + np.arange(len(si))] = 1
    A[-1] = np.concatenate([x[bm], -y[sm]])
    res = milp(-np.concatenate([V[bm], -C[sm]]), integrality=np.ones(n), bounds=(0, 1),
               constraints=LinearConstraint(A, np.r_[np.ones(N + F), -np.inf],
                                            np.r_[np.ones(N + F), 0.0]),
               options={"mip_rel_gap": 0})
    return -res.fun


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="seconds-long smoke run (4 hours)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    hours = list(range(4)) if args.quick else list(range(24))
    repeat = 1 if args.quick else args.repeat
    out = args.out or os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                   f"pglib_{jax.default_backend()}.json")
    eco = jw.load_pglib_uc(jw.examples.pglib_case_path(), hours=hours)
    one = eco[0]
    H = len(hours)
    rows = []

    # --- convex-hull prices
    ce = jw.convexified_equilibrium(eco)
    t1 = timeit(lambda: jw.convexified_equilibrium(one).prices, repeat=repeat)
    tb = timeit(lambda: jw.convexified_equilibrium(eco).prices, repeat=repeat) / H
    t0 = time.perf_counter()
    lp = [highs_lp(eco[h]) for h in range(H)]
    t_lp = (time.perf_counter() - t0) / H
    p_lp = np.array([p for _, p in lp])
    rel = np.abs(ce.prices[:, 0] - p_lp) / np.maximum(np.abs(p_lp), 1e-300)
    rows.append({"task": "convex-hull price", "jaxwalras_1h_ms": 1e3 * t1,
                 "jaxwalras_batch_ms_per_h": 1e3 * tb, "baseline": "HiGHS LP per hour",
                 "baseline_ms_per_h": 1e3 * t_lp, "speedup_batch": t_lp / tb,
                 "check": f"max rel price diff {rel.max():.1e}; {int(ce.converged.sum())}/{H} certified"})

    # --- markup mechanism
    mk = jw.markup_mechanism(eco)
    t1 = timeit(lambda: jw.markup_mechanism(one).markup, repeat=repeat)
    tb = timeit(lambda: jw.markup_mechanism(eco).markup, repeat=repeat) / H
    t0 = time.perf_counter()
    s_milp = [highs_milp(eco[h]) for h in range(H)]
    t_milp = (time.perf_counter() - t0) / H
    rows.append({"task": "markup mechanism (exact least markup)", "jaxwalras_1h_ms": 1e3 * t1,
                 "jaxwalras_batch_ms_per_h": 1e3 * tb,
                 "baseline": "HiGHS MILP (efficient dispatch) per hour",
                 "baseline_ms_per_h": 1e3 * t_milp, "speedup_batch": t_milp / tb,
                 "check": f"{int(mk.converged.sum())}/{H} valid, "
                          f"{int(mk.certified_minimal.sum())}/{H} certified least"})

    # --- rationing mechanism
    ra = jw.rationing_mechanism(eco)
    t1 = timeit(lambda: jw.rationing_mechanism(one).prices, repeat=repeat)
    tb = timeit(lambda: jw.rationing_mechanism(eco).prices, repeat=repeat) / H
    rows.append({"task": "rationing mechanism", "jaxwalras_1h_ms": 1e3 * t1,
                 "jaxwalras_batch_ms_per_h": 1e3 * tb, "baseline": "HiGHS LP per hour",
                 "baseline_ms_per_h": 1e3 * t_lp, "speedup_batch": t_lp / tb,
                 "check": f"{int(ra.converged.sum())}/{H} valid"})

    # --- efficient dispatch
    opt = jw.efficient_allocation(eco)
    t1 = timeit(lambda: jw.efficient_allocation(one).welfare, repeat=1, warmup=0)
    t0 = time.perf_counter()
    jw.efficient_allocation(eco)
    tb = (time.perf_counter() - t0) / H
    wd = np.abs(opt.welfare - np.array(s_milp)) / np.abs(np.array(s_milp))
    rows.append({"task": "efficient dispatch (MILP)", "jaxwalras_1h_ms": 1e3 * t1,
                 "jaxwalras_batch_ms_per_h": 1e3 * tb, "baseline": "scipy milp per hour",
                 "baseline_ms_per_h": 1e3 * t_milp, "speedup_batch": t_milp / tb,
                 "check": f"{int(opt.converged.sum())}/{H} certified; max rel welfare diff "
                          f"{wd.max():.1e}"})
    print(markdown_table(rows, ["task", "jaxwalras_1h_ms", "jaxwalras_batch_ms_per_h",
                                "baseline", "baseline_ms_per_h", "speedup_batch", "check"]))

    upl = jw.uplift(eco, ce.prices, opt.seller_choice)
    per_hour = [{"hour": h, "convex_hull_price": float(ce.prices[i, 0]),
                 "markup": float(mk.markup[i]), "markup_welfare": float(mk.welfare[i]),
                 "markup_welfare_bound": float(mk.welfare_bound[i]),
                 "rationing_welfare": float(ra.welfare[i]), "efficient_welfare": float(opt.welfare[i]),
                 "convexified_welfare": float(ce.dual_value[i]), "uplift": float(upl[i].sum())}
                for i, h in enumerate(hours)]
    loss_mk = (opt.welfare - mk.welfare) / opt.welfare
    loss_ra = (opt.welfare - ra.welfare) / opt.welfare
    print(f"\n{H} hours: markup mean {np.mean(mk.markup):.4f} (max {np.max(mk.markup):.4f}); "
          f"welfare loss vs efficient: markup mean {np.mean(loss_mk):.2e}, rationing "
          f"{np.mean(loss_ra):.2e}; total uplift at convex-hull prices {upl.sum():.4g} $")
    write_json(out, {"benchmark": "pglib", "args": vars(args), "case": "rts_gmlc_2020-01-27",
                     "rows": rows, "per_hour": per_hour})
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
