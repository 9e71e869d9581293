"""Benchmark: how time grows with the batch size and the market size, first call vs repeat.

For each family, after one warm-up per bucket (:func:`jaxwalras.warmup`):

* **first call**: the first call at a new batch size, or at a new market size inside a
  bucket (nothing compiles: the issue-12 target is <= 1.5x the repeat);
* **repeat**: the best of ``--repeat`` further calls;
* **cold**: the first call at a new bucket (includes compilation), where measured;
* the CPU baseline a user would otherwise write, per market on a subset and scaled to the
  batch: the HiGHS LP loop for the auction (``jw.lp_min_walrasian_prices``) and for
  convexified equilibria (``method="lp"``), a HiGHS MILP per market for the optimal
  allocation of combinatorial markets (the start of CWE);
* fitted log-log slopes of time against the batch size and the market size.

Writes ``benchmarks/results/scaling_<backend>.json`` and ``scaling_<backend>.png`` (when
matplotlib is installed) and prints a markdown table.

    python benchmarks/bench_scaling.py            # default (~5 min on 2 CPU cores)
    python benchmarks/bench_scaling.py --quick    # smoke run
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any, Callable

import jax
import numpy as np
from scipy.optimize import LinearConstraint, milp

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import machine_info, markdown_table, write_json  # noqa: E402
from bench_combinatorial import config_columns  # noqa: E402

import jaxwalras as jw  # noqa: E402
from jaxwalras._batching import dim_bucket  # noqa: E402


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def _first_and_repeat(fn: Callable[[], Any], repeat: int) -> tuple[float, float, Any]:
    """(first call incl. compilation, best of ``repeat`` further calls, last result)."""
    first, out = _timed(fn)
    rep = float("inf")
    for _ in range(max(1, repeat)):
        t, out = _timed(fn)
        rep = min(rep, t)
    return first, rep, out


def _slope(x: list[float], y: list[float]) -> float:
    if len(x) < 2:
        return float("nan")
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def _markets(seed: int, B: int, n: int, m: int) -> jw.MultiUnitMarket:
    """The issue-12 workload: values <= 1,000, demands <= 5, supplies <= 10."""
    rng = np.random.default_rng(seed)
    return jw.MultiUnitMarket(rng.integers(0, 1001, (B, n, m)), rng.integers(1, 6, (B, n)),
                              rng.integers(1, 11, (B, m)))


def _highs_auction(mkt: jw.MultiUnitMarket, k: int) -> float:
    """Seconds per market of the HiGHS LP loop, on the first ``k`` markets (built from
    host arrays beforehand, after one untimed LP)."""
    V, d, s = mkt.host_arrays()
    singles = [jw.MultiUnitMarket(V[i], d[i], s[i]) for i in range(k)]
    jw.lp_min_walrasian_prices(singles[0])
    t, _ = _timed(lambda: [jw.lp_min_walrasian_prices(one) for one in singles])
    return t / k


def _milp_opt(v: np.ndarray) -> float:
    cols, a = config_columns(v)
    c = -np.array([v[i, s] for i, s in cols])
    res = milp(c, integrality=np.ones(len(cols)), bounds=(0, 1),
               constraints=LinearConstraint(a, -np.inf, 1))
    return -res.fun


def auction_batch(a, rows, series):
    n, m = a.auction_size
    mkt_all = _markets(0, max(a.batches), n, m)
    t_warm, _ = _timed(lambda: jw.warmup(mkt_all, batch_sizes=a.batches))
    per_lp = _highs_auction(mkt_all, a.lp_markets)
    xs, ys, hs = [], [], []
    for B in a.batches:
        mkt = _markets(B, B, n, m)
        first, rep, _ = _first_and_repeat(lambda: jw.buyer_optimal_equilibrium(mkt), a.repeat)
        rows.append({"family": "auction", "shape": f"{B} x {n} x {m}", "B": B,
                     "first call (s)": first, "repeat (s)": rep, "first / repeat": first / rep,
                     "HiGHS (s)": per_lp * B, "speed-up vs HiGHS": per_lp * B / rep})
        xs.append(B), ys.append(rep), hs.append(per_lp * B)
    series["auction vs batch"] = {"x": xs, "jaxwalras": ys, "HiGHS": hs,
                                  "slope": _slope(xs, ys), "warmup_s": t_warm}


def auction_size(a, rows, series):
    B = a.size_batch
    xs, ys, hs = [], [], []
    for n, m in a.auction_sizes:
        cold, _ = _timed(lambda: jw.buyer_optimal_equilibrium(_markets(1, B, n, m)))
        # a new size inside the same buyer bucket (jaxwalras._batching.dim_bucket)
        n2 = n - 1 if dim_bucket(n - 1) == dim_bucket(n) else n + 1
        mkt = _markets(2, B, n2, m)
        first, rep, _ = _first_and_repeat(lambda: jw.buyer_optimal_equilibrium(mkt), a.repeat)
        per_lp = _highs_auction(mkt, min(B, a.lp_size_markets))
        rows.append({"family": "auction", "shape": f"{B} x {n2} x {m}", "B": B,
                     "cold first call (s)": cold, "first call (s)": first, "repeat (s)": rep,
                     "first / repeat": first / rep, "HiGHS (s)": per_lp * B,
                     "speed-up vs HiGHS": per_lp * B / rep})
        xs.append(n2 * m), ys.append(rep), hs.append(per_lp * B)
    series["auction vs n*m"] = {"x": xs, "jaxwalras": ys, "HiGHS": hs,
                                "slope": _slope(xs, ys), "slope_HiGHS": _slope(xs, hs)}


def _economies(B: int, N: int, seed: int) -> jw.MenuEconomy:
    return jw.examples.random_menu_economy(N, 10, 8, 8, 5, seed=seed, batch_shape=(B,))


def convexified(a, rows, series):
    N = 100
    t_warm, _ = _timed(lambda: jw.warmup(_economies(1, N, 0), batch_sizes=a.cvx_batches))
    sub = _economies(a.lp_economies, N, 99)
    jw.convexified_equilibrium(sub[:1], method="lp")
    t_lp, _ = _timed(lambda: jw.convexified_equilibrium(sub, method="lp"))
    per_lp = t_lp / a.lp_economies
    xs, ys, hs = [], [], []
    for B in a.cvx_batches:
        eco = _economies(B, N, B)
        first, rep, _ = _first_and_repeat(lambda: jw.convexified_equilibrium(eco), a.repeat)
        rows.append({"family": "convexified", "shape": f"{B} x ({N} buyers, 10 sellers, 8 "
                     f"options, 5 goods)", "B": B, "first call (s)": first, "repeat (s)": rep,
                     "first / repeat": first / rep, "HiGHS (s)": per_lp * B,
                     "speed-up vs HiGHS": per_lp * B / rep})
        xs.append(B), ys.append(rep), hs.append(per_lp * B)
    series["convexified vs batch"] = {"x": xs, "jaxwalras": ys, "HiGHS": hs,
                                      "slope": _slope(xs, ys), "warmup_s": t_warm}
    xs, ys = [], []
    for N in a.cvx_buyers:
        eco = _economies(a.size_batch, N, 7)
        cold, _ = _timed(lambda: jw.convexified_equilibrium(eco))
        rep = min(_timed(lambda: jw.convexified_equilibrium(eco))[0] for _ in range(a.repeat))
        rows.append({"family": "convexified", "shape": f"{a.size_batch} x ({N} buyers, ...)",
                     "B": a.size_batch, "cold first call (s)": cold, "repeat (s)": rep})
        xs.append(N), ys.append(rep)
    series["convexified vs buyers"] = {"x": xs, "jaxwalras": ys, "slope": _slope(xs, ys)}


def combinatorial(a, rows, series):
    n = 5
    for m in a.items:
        cm = jw.cats.arbitrary(n, m, 0, n_markets=max(a.cwe_batches))
        t_warm, _ = _timed(lambda: jw.warmup(cm, batch_sizes=a.cwe_batches))
        vals = np.asarray(cm.values)
        k = min(a.lp_economies, vals.shape[0])
        t_milp, _ = _timed(lambda: [_milp_opt(vals[i]) for i in range(k)])
        per = t_milp / k
        xs, ys, hs = [], [], []
        for B in a.cwe_batches:
            cmb = jw.cats.arbitrary(n, m, B, n_markets=B)
            first, rep, _ = _first_and_repeat(lambda: jw.optimal_allocation(cmb), a.repeat)
            f2, r2, _ = _first_and_repeat(lambda: jw.combinatorial_walrasian_equilibrium(cmb),
                                       a.repeat)
            rows.append({"family": f"optimal allocation (m={m})", "shape": f"{B} x {n} x 2^{m}",
                         "B": B, "first call (s)": first, "repeat (s)": rep,
                         "first / repeat": first / rep, "HiGHS (s)": per * B,
                         "speed-up vs HiGHS": per * B / rep})
            rows.append({"family": f"CWE (m={m})", "shape": f"{B} x {n} x 2^{m}", "B": B,
                         "first call (s)": f2, "repeat (s)": r2, "first / repeat": f2 / r2})
            xs.append(B), ys.append(r2), hs.append(per * B)
        series[f"CWE vs batch (m={m})"] = {"x": xs, "jaxwalras": ys, "HiGHS MILP (OPT only)": hs,
                                           "slope": _slope(xs, ys), "warmup_s": t_warm}


def plot(series: dict, path: str) -> bool:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, s in series.items():
        ax = axes[1] if ("n*m" in name or "buyers" in name) else axes[0]
        line, = ax.loglog(s["x"], s["jaxwalras"], "o-",
                          label=f"{name} (slope {s['slope']:.2f})")
        for key in ("HiGHS", "HiGHS MILP (OPT only)"):
            if key in s:
                ax.loglog(s["x"], s[key], "x--", color=line.get_color(), alpha=0.6,
                          label=f"{key}: {name}")
    axes[0].set_xlabel("markets in the batch")
    axes[1].set_xlabel("market size (n*m for the auction, buyers N for convexified)")
    for ax in axes:
        ax.set_ylabel("seconds (repeat call)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=6)
    fig.suptitle(f"jaxwalras scaling on {machine_info()['cpu_count']}-core "
                 f"{jax.default_backend()} (dashed: CPU baselines)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return True


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batches", type=int, nargs="*", default=[16, 64, 256, 1000])
    ap.add_argument("--auction-size", type=int, nargs=2, default=[50, 10])
    ap.add_argument("--auction-sizes", type=str, default="50x10,200x20,1000x50",
                    help="n x m market sizes for the auction's size sweep")
    ap.add_argument("--size-batch", type=int, default=8, help="markets in the size sweeps")
    ap.add_argument("--cvx-batches", type=int, nargs="*", default=[16, 64, 100])
    ap.add_argument("--cvx-buyers", type=int, nargs="*", default=[100, 300, 1000])
    ap.add_argument("--items", type=int, nargs="*", default=[6, 8])
    ap.add_argument("--cwe-batches", type=int, nargs="*", default=[16, 64])
    ap.add_argument("--lp-markets", type=int, default=20)
    ap.add_argument("--lp-size-markets", type=int, default=2)
    ap.add_argument("--lp-economies", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    if a.quick:
        a.batches, a.auction_sizes, a.size_batch = [16, 40], "20x5,40x8", 4
        a.cvx_batches, a.cvx_buyers, a.items, a.cwe_batches = [8, 20], [50, 200], [5], [8, 20]
        a.lp_markets, a.lp_economies, a.repeat = 4, 2, 1
    a.auction_sizes = [tuple(int(x) for x in s.split("x")) for s in a.auction_sizes.split(",")]
    here = os.path.dirname(os.path.abspath(__file__))
    out = a.out or os.path.join(here, "results", f"scaling_{jax.default_backend()}.json")
    rows: list[dict] = []
    series: dict = {}
    t0 = time.perf_counter()
    for section in (auction_batch, auction_size, convexified, combinatorial):
        ts, _ = _timed(lambda: section(a, rows, series))
        print(f"[{section.__name__}: {ts:.1f} s]", flush=True)
    cols = ["family", "shape", "cold first call (s)", "first call (s)", "repeat (s)",
            "first / repeat", "HiGHS (s)", "speed-up vs HiGHS"]
    print(markdown_table(rows, cols))
    print("\nfitted log-log slopes (time ~ size^slope):")
    for name, s in series.items():
        extra = f", HiGHS {s['slope_HiGHS']:.2f}" if "slope_HiGHS" in s else ""
        print(f"  {name}: {s['slope']:.2f}{extra}")
    png = out[:-5] + ".png"
    have_png = plot(series, png)
    print(f"\ntotal {time.perf_counter() - t0:.0f} s; JSON {out}" +
          (f"; plot {png}" if have_png else "; no plot (matplotlib not installed)"))
    write_json(out, {"rows": rows, "series": series, "args": {
        k: v for k, v in vars(a).items()}})


if __name__ == "__main__":
    main()
