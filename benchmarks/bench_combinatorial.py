"""Benchmark: combinatorial markets (item prices and bundling).

1. Demand-query throughput: ``markets x price vectors x buyers`` item-price demand queries
   through the jitted device kernel vs the per-market/per-price numpy loop a user would
   write (and a fully vectorised numpy version).
2. Walrasian-equilibrium existence on CATS markets: jaxwalras (batched device DP + one
   pruned dual configuration LP per market) vs a straightforward HiGHS implementation
   (MILP for OPT + full primal configuration LP, per market).
3. CWE on CATS markets: jaxwalras (batched device dynamics) vs the same dynamics written as
   a per-market numpy loop (start: the optimal allocation from the MILP).

Baselines may be timed on a subset and extrapolated per item (the output says so).

    python benchmarks/bench_combinatorial.py            # default (< 4 min on 2 CPU cores)
    python benchmarks/bench_combinatorial.py --quick    # seconds-long smoke run
"""
from __future__ import annotations

import argparse
import itertools
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from scipy.optimize import LinearConstraint, linprog, milp

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import markdown_table, timeit, write_json  # noqa: E402

import jaxwalras as jw  # noqa: E402
from jaxwalras.kernels import setfunc  # noqa: E402


CWE_RTOL = 1e-5      # CWE tolerance relative to the market's largest value (both sides)

# ----------------------------------------------------------------------------- baselines
def bits_of(m):
    s = np.arange(2 ** m)
    return ((s[:, None] >> np.arange(m)) & 1).astype(np.float64)


def numpy_demand_loop(values, prices):
    """values (B, n, 2^m), prices (B, Q, m): loop over markets and price vectors."""
    b, q, m = prices.shape
    bits = bits_of(m)
    out = np.empty((b, q, values.shape[1]), np.int64)
    for i in range(b):
        for k in range(q):
            util = values[i] - bits @ prices[i, k]
            out[i, k] = util.argmax(axis=1)
    return out


def numpy_demand_vectorised(values, prices):
    bits = bits_of(prices.shape[-1])
    return (values[:, None] - (prices @ bits.T)[:, :, None, :]).argmax(-1)


def config_columns(v):
    n, t = v.shape
    m = t.bit_length() - 1
    cols = [(i, s) for i in range(n) for s in range(1, t) if v[i, s] > 0]
    a = np.zeros((n + m, len(cols)))
    for c, (i, s) in enumerate(cols):
        a[i, c] = 1
        a[n + np.nonzero((s >> np.arange(m)) & 1)[0], c] = 1
    return cols, a


def baseline_we(v):
    """Straightforward HiGHS: MILP for OPT, full primal configuration LP; exists iff equal."""
    cols, a = config_columns(v)
    c = -np.array([v[i, s] for i, s in cols])
    opt = milp(c, integrality=np.ones(len(cols)), bounds=(0, 1),
               constraints=LinearConstraint(a, -np.inf, 1))
    lp = linprog(c, A_ub=a, b_ub=np.ones(a.shape[0]), bounds=(0, None), method="highs")
    xs = np.round(opt.x).astype(int)
    alloc = np.zeros(v.shape[0], np.int64)
    for (i, s), x in zip(cols, xs):
        if x:
            alloc[i] = s
    return (-lp.fun) <= (-opt.fun) + 1e-7 * max(1.0, np.abs(v).max()), -opt.fun, alloc


def baseline_cwe(v, start, rtol=CWE_RTOL):
    """The same bundling dynamics (same tolerance and price-war rule), per market, in plain
    numpy on the host."""
    n, t = v.shape
    m = t.bit_length() - 1
    tol = rtol * v.max(axis=-1)                 # each buyer's own scale
    patience, last = 500 + 20 * (n + m), 0
    parts = [(int(start[i]), i) for i in range(n) if start[i]]
    rest = (t - 1) ^ int(np.bitwise_or.reduce(start))
    if rest:
        if parts:
            k = max(range(len(parts)), key=lambda q: v[parts[q][1], parts[q][0] | rest]
                    - v[parts[q][1], parts[q][0]])
            parts[k] = (parts[k][0] | rest, parts[k][1])
        else:
            parts = [(t - 1, int(np.argmax(v[:, t - 1])))]
    bundles = [p for p, _ in parts]
    prices = [v[i, p] / 2 for p, i in parts]
    holder = [-1] * len(bundles)
    steps = 0
    while True:
        k = len(bundles)
        subsets = list(itertools.product([0, 1], repeat=k))
        unions = np.array([sum(b for b, x in zip(bundles, sub) if x) for sub in subsets])
        cost = np.array([sum(p for p, x in zip(prices, sub) if x) for sub in subsets])
        moved = False
        for i in range(n):
            if i in holder:
                continue
            util = v[i, unions] - cost
            d = int(util.argmax())
            if util[d] <= tol[i] / 2:
                continue
            dset = subsets[d]
            disjoint = np.array([all(not (a and b) for a, b in zip(sub, dset)) for sub in subsets])
            u_out = util[disjoint].max()
            umask = int(unions[d])
            newp = max(v[i, umask] - u_out, cost[d] + tol[i] / 2)
            keep = [q for q in range(k) if not dset[q]]
            bundles = [bundles[q] for q in keep] + [umask]
            prices = [prices[q] for q in keep] + [newp]
            holder = [holder[q] for q in keep] + [i]
            moved = True
            steps += 1
            if steps - last >= patience:
                tol, last = tol * 10, steps
            break
        if not moved:
            return bundles, prices, holder, steps


# ----------------------------------------------------------------------------- sections
def bench_demand(args, rows, out):
    rng = np.random.default_rng(0)
    b, q, n, m = args.markets, args.prices, args.buyers, args.items
    cm = jw.cats.arbitrary(n_bidders=n, m=m, seed=0, n_markets=b)
    prices = rng.uniform(0, 60, (b, q, m))
    vals = jnp.asarray(cm.values[:, None], jnp.float32)
    pj = jnp.asarray(prices, jnp.float32)
    kern = jax.jit(lambda v, p: setfunc.item_demand(v, p)[0])
    t_jax = timeit(lambda: kern(vals, pj), repeat=3)
    d_jax = np.asarray(kern(vals, pj))
    sub = max(1, min(b, args.baseline_markets))
    t_loop = timeit(lambda: numpy_demand_loop(cm.values[:sub], prices[:sub]), repeat=1,
                    warmup=0) * b / sub
    d_loop = numpy_demand_loop(cm.values[:sub], prices[:sub])
    vsub = max(1, min(b, 4 * sub))
    t_vec = timeit(lambda: numpy_demand_vectorised(cm.values[:vsub], prices[:vsub]), repeat=1,
                   warmup=0) * b / vsub
    # exactness: the device demand set attains the float64 optimum (float32 rounding aside)
    bits = bits_of(m)
    util = cm.values[:sub, None] - (prices[:sub] @ bits.T)[:, :, None, :]
    got = np.take_along_axis(util, d_jax[:sub][..., None], -1)[..., 0]
    gap = float((util.max(-1) - got).max())
    agree = float((d_loop == d_jax[:sub]).mean())
    nq = b * q * n
    out["demand"] = dict(markets=b, prices=q, buyers=n, items=m, t_jax=t_jax, t_loop=t_loop,
                         t_vec=t_vec, baseline_markets=sub, max_utility_gap=gap,
                         same_set_fraction=agree)
    rows.append({"task": f"item demand B={b} Q={q} n={n} m={m}", "items": nq,
                 "jaxwalras us/item": 1e6 * t_jax / nq, "baseline": "numpy loop",
                 "baseline us/item": 1e6 * t_loop / nq, "speed-up": t_loop / t_jax,
                 "accuracy": f"utility gap {gap:.1e}; same set {100 * agree:.1f}%",
                 "note": f"loop timed on {sub} markets, extrapolated"})
    rows.append({"task": "  (vectorised numpy)", "items": nq,
                 "jaxwalras us/item": 1e6 * t_jax / nq, "baseline": "numpy vectorised",
                 "baseline us/item": 1e6 * t_vec / nq, "speed-up": t_vec / t_jax,
                 "accuracy": "-", "note": f"timed on {vsub} markets, extrapolated"})


def cats_batch(args):
    per = args.cats_markets
    gens = ["arbitrary", "regions", "paths", "scheduling"]
    vals = np.concatenate([jw.cats.GENERATORS[g](n_bidders=args.cats_buyers, m=args.cats_items,
                                                 seed=1, n_markets=per).values for g in gens])
    return jw.SetFunctionMarket(vals), gens


def bench_we_cwe(args, rows, out):
    cm, gens = cats_batch(args)
    nb = cm.batch_shape[0]
    sub = max(1, min(nb, args.baseline_markets))
    idx = np.linspace(0, nb - 1, sub).astype(int)          # subset spread over generators
    jw.walrasian_equilibrium(cm)                             # compile
    t0 = time.perf_counter()
    we = jw.walrasian_equilibrium(cm)
    t_we = time.perf_counter() - t0
    t0 = time.perf_counter()
    base = [baseline_we(cm.values[k]) for k in idx]
    t_base = (time.perf_counter() - t0) * nb / sub
    agree = float(np.mean([bool(we.exists[k]) == bool(b[0]) for k, b in zip(idx, base)]))
    opt_gap = float(max(abs(we.welfare[k] - b[1]) for k, b in zip(idx, base)))
    out["we"] = dict(markets=nb, t_jax=t_we, t_base=t_base, agree=agree, opt_gap=opt_gap,
                     exists_fraction=float(we.exists.mean()), verified=bool(
                         we.converged.all()))
    rows.append({"task": f"WE existence, CATS n={cm.n_buyers} m={cm.n_items}", "items": nb,
                 "jaxwalras us/item": 1e6 * t_we / nb, "baseline": "MILP + config LP (HiGHS)",
                 "baseline us/item": 1e6 * t_base / nb, "speed-up": t_base / t_we,
                 "accuracy": f"agree {100 * agree:.0f}%, |OPT diff| {opt_gap:.1e}, "
                             f"WE exists {100 * we.exists.mean():.0f}%",
                 "note": f"baseline on {sub} markets, extrapolated"})
    jw.combinatorial_walrasian_equilibrium(cm, rtol=CWE_RTOL)          # compile
    t0 = time.perf_counter()
    cwe = jw.combinatorial_walrasian_equilibrium(cm, rtol=CWE_RTOL)
    t_cwe = time.perf_counter() - t0
    t0 = time.perf_counter()
    bres = [baseline_cwe(cm.values[k], b[2]) for k, b in zip(idx, base)]
    t_bc = (time.perf_counter() - t0) * nb / sub
    requested = CWE_RTOL * cm.values.max(axis=-1)          # each buyer's own scale
    valid = float((cwe.regret <= requested).all(-1).mean())
    half = float((cwe.welfare >= cwe.start_welfare / 2 - requested.sum(-1)).mean())
    ratio = float(np.mean(cwe.welfare / np.maximum(cwe.start_welfare, 1e-12)))
    at_tol = float((cwe.tol <= 1.0001 * requested).all(-1).mean())
    out["cwe"] = dict(markets=nb, t_jax=t_cwe, t_base=t_bc, valid=valid, half=half,
                      at_requested_tol=at_tol,
                      welfare_over_opt=ratio, max_iterations=int(cwe.iterations.max()),
                      baseline_steps=int(max(b[3] for b in bres)))
    rows.append({"task": f"CWE, CATS n={cm.n_buyers} m={cm.n_items}", "items": nb,
                 "jaxwalras us/item": 1e6 * t_cwe / nb, "baseline": "numpy loop (same dynamics)",
                 "baseline us/item": 1e6 * t_bc / nb, "speed-up": t_bc / t_cwe,
                 "accuracy": f"valid {100 * valid:.0f}%, >= OPT/2 {100 * half:.0f}%, "
                             f"mean welfare/OPT {ratio:.3f}, at requested tol "
                             f"{100 * at_tol:.0f}%",
                 "note": f"baseline on {sub} markets (incl. its MILP start), extrapolated"})


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--markets", type=int, default=256, help="demand: markets")
    ap.add_argument("--prices", type=int, default=128, help="demand: price vectors per market")
    ap.add_argument("--buyers", type=int, default=8, help="demand: buyers per market")
    ap.add_argument("--items", type=int, default=10, help="demand: items (m)")
    ap.add_argument("--cats-markets", type=int, default=64, help="CATS markets per generator")
    ap.add_argument("--cats-buyers", type=int, default=6)
    ap.add_argument("--cats-items", type=int, default=8)
    ap.add_argument("--baseline-markets", type=int, default=32,
                    help="markets the slow baselines are timed on (then extrapolated)")
    ap.add_argument("--quick", action="store_true", help="seconds-long smoke run")
    ap.add_argument("--out", default=None, help="JSON path (default benchmarks/results/"
                                                "combinatorial_<backend>.json)")
    args = ap.parse_args(argv)
    if args.quick:
        args.markets, args.prices, args.buyers, args.items = 16, 8, 4, 6
        args.cats_markets, args.cats_buyers, args.cats_items = 4, 4, 6
        args.baseline_markets = 4
    out_path = args.out or os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                        f"combinatorial_{jax.default_backend()}.json")
    rows, out = [], {}
    bench_demand(args, rows, out)
    bench_we_cwe(args, rows, out)
    cols = ["task", "items", "jaxwalras us/item", "baseline", "baseline us/item", "speed-up",
            "accuracy", "note"]
    table = markdown_table(rows, cols)
    print(f"backend: {jax.default_backend()} ({jax.devices()[0]})")
    print(table)
    write_json(out_path, {"benchmark": "combinatorial", "args": vars(args), "results": out,
                          "rows": rows, "table": table})
    print(f"wrote {out_path}")


if __name__ == "__main__":
    main()
