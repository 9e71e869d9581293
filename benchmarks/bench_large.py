"""Benchmark: cost against market size at large sizes (does anything grow faster than the input?).

The study of issue 12, item 4: for each family, the warm time (best of ``--repeat`` after
one compiling call) of a few markets at growing market sizes, the CPU baseline a user
would otherwise write where it finishes in reasonable time, and the fitted log-log slope
of time against the size of the input:

* auction (``buyer_optimal_equilibrium``), ``n`` buyers x ``m`` objects up to 2,000 x 100:
  input ``n m``; also the time per round of the batched auction (rounds = the slowest
  market's); baseline: the HiGHS LP loop (``jw.lp_min_walrasian_prices``);
* convexified equilibria (``convexified_equilibrium``), ``N`` buyers up to 1e5 (10
  sellers, 8 options, 5 goods; HiGHS up to 1e4), and ``L`` goods up to 50 (1,000
  buyers): input
  ``N K L``; baseline: the whole LP in HiGHS (``method="lp"``);
* the multi-good markup mechanism (``markup_mechanism``, 2 goods), ``N`` buyers: no
  baseline (no off-the-shelf solver does this search);
* CWE (``combinatorial_walrasian_equilibrium``), 5 buyers, ``m`` items up to 14: input
  ``n 2^m``; baseline: the optimal allocation by a HiGHS MILP over all (buyer, bundle)
  columns (OPT only, the first step of CWE).

A slope near 1 means time grows like the input; above 1, faster. Writes
``benchmarks/results/large_<backend>.json`` and prints a markdown table.

    python benchmarks/bench_large.py            # default (~2 min on 2 CPU cores)
    python benchmarks/bench_large.py --quick    # smoke run (seconds)
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
from bench_scaling import _first_and_repeat, _milp_opt, _markets, _slope  # noqa: E402

import jaxwalras as jw  # noqa: E402


def _ints(text: str) -> list[int]:
    return [int(t) for t in text.split(",") if t]


def auction(a, rows, series):
    xs, ys, hs = [], [], []
    for size in a.auction_sizes.split(","):
        n, m = (int(t) for t in size.split("x"))
        mkt = _markets(5, a.auction_batch, n, m)
        first, rep, res = _first_and_repeat(lambda: jw.buyer_optimal_equilibrium(mkt), a.repeat)
        raises = int(np.max(res.iterations))
        lp = float("nan")
        if n * m <= a.lp_max_nm:
            V, d, s = (np.asarray(z) for z in (mkt.values, mkt.demands, mkt.supplies))
            one = jw.MultiUnitMarket(V[0], d[0], s[0])
            t0 = time.perf_counter()
            jw.lp_min_walrasian_prices(one)
            lp = (time.perf_counter() - t0) * a.auction_batch
        rows.append({"family": "auction", "size": f"{a.auction_batch} x {n} x {m}",
                     "input": n * m, "first call (s)": first, "repeat (s)": rep,
                     "per market (s)": rep / a.auction_batch, "raises (max)": raises,
                     "per raise (ms)": 1e3 * rep / max(raises, 1), "baseline (s)": lp,
                     "speed-up": lp / rep})
        xs.append(n * m), ys.append(rep), hs.append(lp)
    series["auction vs n m"] = {"x": xs, "jaxwalras": ys, "HiGHS": hs, "slope": _slope(xs, ys)}


def _economy(B: int, N: int, L: int, seed: int) -> jw.MenuEconomy:
    return jw.examples.random_menu_economy(N, 10, 8, 8, L, seed=seed, batch_shape=(B,))


def convexified(a, rows, series):
    for name, sizes, make, label in (
            ("buyers", _ints(a.cvx_buyers), lambda v: _economy(a.cvx_batch, v, 5, 3),
             lambda v: f"{a.cvx_batch} x ({v} buyers, 10 sellers, 8 options, 5 goods)"),
            ("goods", _ints(a.cvx_goods), lambda v: _economy(a.cvx_batch, 1000, v, 4),
             lambda v: f"{a.cvx_batch} x (1000 buyers, 10 sellers, 8 options, {v} goods)")):
        xs, ys, hs = [], [], []
        for v in sizes:
            eco = make(v)
            first, rep, res = _first_and_repeat(lambda: jw.convexified_equilibrium(eco), a.repeat)
            N, L = (v, 5) if name == "buyers" else (1000, v)
            lp = float("nan")
            if N * L <= a.lp_max_nl:
                t0 = time.perf_counter()
                jw.convexified_equilibrium(eco[:1], method="lp")
                lp = (time.perf_counter() - t0) * a.cvx_batch
            rows.append({"family": "convexified", "size": label(v), "input": N * 8 * L,
                         "first call (s)": first, "repeat (s)": rep,
                         "per market (s)": rep / a.cvx_batch, "baseline (s)": lp,
                         "speed-up": lp / rep, "certified": f"{int(res.converged.sum())}/"
                         f"{res.converged.size}"})
            xs.append(N * 8 * L), ys.append(rep), hs.append(lp)
        series[f"convexified vs {name}"] = {"x": xs, "jaxwalras": ys, "HiGHS": hs,
                                            "slope": _slope(xs, ys)}


def markup(a, rows, series):
    xs, ys = [], []
    for N in _ints(a.markup_buyers):
        eco = jw.examples.random_menu_economy(N, 4, 4, 4, 2, seed=6, batch_shape=(a.cvx_batch,))
        first, rep, res = _first_and_repeat(lambda: jw.markup_mechanism(eco), a.repeat)
        rows.append({"family": "markup mechanism (2 goods)",
                     "size": f"{a.cvx_batch} x ({N} buyers, 4 sellers, 4 options)",
                     "input": N * 4 * 2, "first call (s)": first, "repeat (s)": rep,
                     "per market (s)": rep / a.cvx_batch,
                     "certified": f"{int(np.sum(res.converged))}/{np.size(res.converged)}"})
        xs.append(N * 4 * 2), ys.append(rep)
    series["markup vs buyers"] = {"x": xs, "jaxwalras": ys, "slope": _slope(xs, ys)}


def cwe(a, rows, series):
    n = 5
    xs, ys, hs = [], [], []
    for m in _ints(a.items):
        cm = jw.cats.arbitrary(n, m, 11, n_markets=a.cwe_batch)
        first, rep, res = _first_and_repeat(lambda: jw.combinatorial_walrasian_equilibrium(cm),
                                            a.repeat)
        milp = float("nan")
        if m <= a.milp_max_items:
            vals = np.asarray(cm.values)
            t0 = time.perf_counter()
            _milp_opt(vals[0])
            milp = (time.perf_counter() - t0) * a.cwe_batch
        rows.append({"family": "CWE", "size": f"{a.cwe_batch} x {n} buyers x 2^{m}",
                     "input": n * 2 ** m, "first call (s)": first, "repeat (s)": rep,
                     "per market (s)": rep / a.cwe_batch, "baseline (s)": milp,
                     "speed-up": milp / rep})
        xs.append(n * 2 ** m), ys.append(rep), hs.append(milp)
    series["CWE vs items"] = {"x": xs, "jaxwalras": ys, "HiGHS MILP (OPT only)": hs,
                              "slope": _slope(xs, ys)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--auction-sizes", default="250x25,500x50,1000x50,2000x100")
    ap.add_argument("--auction-batch", type=int, default=2)
    ap.add_argument("--lp-max-nm", type=int, default=50_000,
                    help="largest n*m also solved by the HiGHS LP loop")
    ap.add_argument("--cvx-buyers", default="1000,3000,10000,30000,100000")
    ap.add_argument("--cvx-goods", default="5,10,20,50")
    ap.add_argument("--cvx-batch", type=int, default=2)
    ap.add_argument("--lp-max-nl", type=int, default=50_000,
                    help="largest buyers x goods also solved by HiGHS")
    ap.add_argument("--markup-buyers", default="25,100,400")
    ap.add_argument("--items", default="8,10,12,14")
    ap.add_argument("--cwe-batch", type=int, default=2)
    ap.add_argument("--milp-max-items", type=int, default=10,
                    help="largest m also solved by the HiGHS MILP (5 * 2^m columns)")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    if a.quick:
        a.auction_sizes, a.cvx_buyers, a.cvx_goods = "50x10,100x20", "100,1000", "2,5"
        a.markup_buyers, a.items = "10,20", "4,6"
    backend = jax.default_backend()
    out = a.out or os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                f"large_{backend}.json")
    rows: list[dict] = []
    series: dict[str, dict] = {}
    t_all = time.perf_counter()
    cols = ["family", "size", "input", "first call (s)", "repeat (s)", "per market (s)",
            "raises (max)", "per raise (ms)", "baseline (s)", "speed-up", "certified"]
    for part in (auction, convexified, markup, cwe):
        t0 = time.perf_counter()
        done = len(rows)
        part(a, rows, series)
        print(f"[{part.__name__}: {time.perf_counter() - t0:.1f} s]", flush=True)
        print(markdown_table(rows[done:], cols), flush=True)
    print("\nfitted log-log slopes against the input size (1 = time grows like the input):")
    for name, s in series.items():
        print(f"  {name}: {s['slope']:.2f}")
    total = time.perf_counter() - t_all
    print(f"\ntotal {total:.0f} s; JSON {out}")
    write_json(out, {"benchmark": "large", "machine": machine_info(), "args": vars(a),
                     "rows": rows, "series": series, "total_s": total})


if __name__ == "__main__":
    main()
