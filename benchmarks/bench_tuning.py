"""Benchmark: reserve tuning for the rationing mechanism, gradient tuner against exact search.

Task: the reserve scale ``s`` (reserve = ``s`` times each economy's worst-case reserve)
that maximises the rationing mechanism's mean welfare (0 where it does not run) over a
training sample; the answer is evaluated exactly on a held-out sample.

  gradient     ``jw.tune_reserves(train)``: exact thresholds on a 41-point grid, then optax
               on the smoothed surrogate, then the exact evaluation (first call, with its
               compilations, and a warm call on a new sample of the same shape)
  grid         ``jw.tune_reserves(train, method="grid")``: the batched exact mechanism at
               every scale of the same 41-point grid, the best kept
  loop         what a user would otherwise write: ``jw.rationing_mechanism`` called per
               economy and per scale (timed on ``--baseline-items`` economies and
               extrapolated to the training sample)

Usage:  python benchmarks/bench_tuning.py [--quick] [--train 200] [--out PATH.json]
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import markdown_table, write_json  # noqa: E402

import jaxwalras as jw  # noqa: E402


def workloads(quick: bool):
    if quick:
        yield ("fixed-cost N=12 F=3 L=2",
               lambda key, n: jw.examples.fixed_cost_economy(key, 12, 3, 2, batch_shape=(n,)))
        return
    yield ("fixed-cost N=12 F=3 L=2",
           lambda key, n: jw.examples.fixed_cost_economy(key, 12, 3, 2, batch_shape=(n,)))
    yield ("random menus N=20 F=4 L=2",
           lambda key, n: jw.examples.random_menu_economy(20, 4, 4, 4, 2, seed=int(key),
                                                          batch_shape=(n,)))


def run(name, gen, n_train, n_heldout, steps, baseline_items):
    train, train2, test = gen(0, n_train), gen(1, n_train), gen(2, n_heldout)
    t = time.perf_counter()
    first = jw.tune_reserves(train, heldout=test, steps=steps)
    t_first = time.perf_counter() - t
    t = time.perf_counter()
    jw.tune_reserves(train2, steps=steps)                # warm: same shapes, new sample
    t_warm = time.perf_counter() - t
    t = time.perf_counter()
    grid = jw.tune_reserves(train, heldout=test, method="grid")
    t_grid = time.perf_counter() - t
    g = jw.RESERVE_THRESHOLD_GRID
    unit = jw.worst_case_reserve(train, sellers_only=True)
    t = time.perf_counter()
    for e in range(baseline_items):
        for s in g:
            jw.rationing_mechanism(train[e:e + 1], reserve=s * unit[e:e + 1])
    t_loop = (time.perf_counter() - t) / baseline_items * n_train
    row = {"workload": name, "train": n_train, "heldout": n_heldout,
           "gradient_scale": first.params["scale"], "grid_scale": grid.params["scale"],
           "gradient_train_welfare": first.train.welfare, "grid_train_welfare": grid.train.welfare,
           "gradient_heldout_welfare": first.heldout.welfare,
           "grid_heldout_welfare": grid.heldout.welfare,
           "heldout_ratio": first.heldout.welfare / grid.heldout.welfare,
           "gradient_first_s": t_first, "gradient_warm_s": t_warm, "grid_s": t_grid,
           "loop_s_extrapolated": t_loop, "grid_vs_loop": t_loop / t_grid,
           "gradient_runs": first.heldout.feasibility, "grid_runs": grid.heldout.feasibility}
    print(f"  {name}: gradient s={row['gradient_scale']:.4f} ({t_first:.1f} s first, "
          f"{t_warm:.1f} s warm), grid s={row['grid_scale']:.4f} ({t_grid:.1f} s), "
          f"loop {t_loop:.1f} s", flush=True)
    return row


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a short smoke run")
    ap.add_argument("--train", type=int, default=200)
    ap.add_argument("--heldout", type=int, default=200)
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--baseline-items", type=int, default=4,
                    help="economies run through the per-economy loop (timed, extrapolated)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    if args.quick:
        args.train, args.heldout, args.steps, args.baseline_items = 24, 24, 30, 1
    out = args.out or os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                   f"tuning_{jax.default_backend()}.json")
    rows = [run(name, gen, args.train, args.heldout, args.steps, args.baseline_items)
            for name, gen in workloads(args.quick)]
    cols = ["workload", "train", "gradient_scale", "grid_scale", "gradient_heldout_welfare",
            "grid_heldout_welfare", "heldout_ratio", "gradient_first_s", "gradient_warm_s",
            "grid_s", "loop_s_extrapolated", "grid_vs_loop"]
    print(markdown_table(rows, cols))
    write_json(out, {"benchmark": "tuning", "args": vars(args), "rows": rows})
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
