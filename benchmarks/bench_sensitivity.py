"""Benchmark: Jacobians of exact convexified prices, against finite differences with HiGHS.

Workload: ``--batch`` random menu economies (``jw.examples.random_menu_economy``), markup
0.1; the Jacobian of the seller prices with respect to every buyer value, every seller
cost and the markup, per economy.

  jaxwalras   ``jax.vmap(jax.jacfwd(f))`` with ``f = jw.equilibrium_prices(eco.replace(...),
              markup=a)``: one exact solve of the whole batch in a host callback (HiGHS, or
              the one-good envelope method) and the derivatives of each optimal basis, in
              float64 (``jax.enable_x64`` scoped); for L=3 either one HiGHS LP per economy
              (``method="lp"``) or the batched smoothed device solve with the
              block-diagonal HiGHS finish (``method="smoothed"``)
  highs-fd    what a user would otherwise do: central finite differences of the LP price,
              two ``scipy.optimize.linprog(method="highs-ds")`` solves per input entry and
              economy (timed on ``--baseline-items`` economies, extrapolated per economy)

Agreement: on the economies timed with the baseline, the largest difference between the
two Jacobians relative to the largest entry, over the economies that
``jw.equilibrium_prices(..., info=True)`` reports non-degenerate (where the price is
differentiable and finite differences are meaningful); the degenerate fraction is
reported too.

Usage:  python benchmarks/bench_sensitivity.py [--quick] [--batch 1000] [--out PATH.json]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np
from scipy.optimize import linprog

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import markdown_table, write_json  # noqa: E402

import jaxwalras as jw  # noqa: E402


def lp_price(X, V, bm, Y, C, sm, a):
    """Seller prices of the convexified LP by scipy/HiGHS (the user's baseline)."""
    N, Kb, L = X.shape
    F, Ks, _ = Y.shape
    c = np.concatenate([-V.ravel() / (1 + a), C.ravel()])
    A_ub = np.concatenate([X.reshape(-1, L).T, -Y.reshape(-1, L).T], axis=1)
    A_eq = np.zeros((N + F, N * Kb + F * Ks))
    for n in range(N):
        A_eq[n, n * Kb:(n + 1) * Kb] = 1
    for f in range(F):
        A_eq[N + f, N * Kb + f * Ks:N * Kb + (f + 1) * Ks] = 1
    ub = np.concatenate([bm.ravel(), sm.ravel()]).astype(float)
    res = linprog(c, A_ub=A_ub, b_ub=np.zeros(L), A_eq=A_eq, b_eq=np.ones(N + F),
                  bounds=list(zip(np.zeros_like(ub), ub)), method="highs-ds")
    return -res.ineqlin.marginals


def fd_jacobian(X, V, bm, Y, C, sm, a, rel_h=1e-6):
    h = rel_h * max(np.abs(V).max(), np.abs(C).max())
    JV = np.zeros((X.shape[-1],) + V.shape)
    JC = np.zeros((X.shape[-1],) + C.shape)
    for idx in np.ndindex(V.shape):
        if not bm[idx]:
            continue
        e = np.zeros_like(V)
        e[idx] = h
        JV[(slice(None),) + idx] = (lp_price(X, V + e, bm, Y, C, sm, a)
                                    - lp_price(X, V - e, bm, Y, C, sm, a)) / (2 * h)
    for idx in np.ndindex(C.shape):
        if not sm[idx]:
            continue
        e = np.zeros_like(C)
        e[idx] = h
        JC[(slice(None),) + idx] = (lp_price(X, V, bm, Y, C + e, sm, a)
                                    - lp_price(X, V, bm, Y, C - e, sm, a)) / (2 * h)
    Ja = (lp_price(X, V, bm, Y, C, sm, a + 1e-6) - lp_price(X, V, bm, Y, C, sm, a - 1e-6)) / 2e-6
    return JV, JC, Ja


def run(name, eco, a, method, baseline_items):
    B = eco.batch_shape[0]
    with jax.enable_x64(True):
        def f(V, C, al, e):
            return jw.equilibrium_prices(e.replace(buyer_values=V, seller_costs=C), markup=al,
                                         method=method)

        jac = jax.jit(jax.vmap(jax.jacfwd(f, argnums=(0, 1, 2))))
        V, C = jnp.asarray(eco.buyer_values), jnp.asarray(eco.seller_costs)
        aa = jnp.full(B, a)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", jw.DegeneratePointWarning)
            jax.block_until_ready(jac(V[:2], C[:2], aa[:2], eco[:2]))          # compile (small)
            jax.block_until_ready(jac(V, C, aa, eco))                          # compile (batch)
            t0 = time.perf_counter()
            JV, JC, Ja = jax.block_until_ready(jac(V, C, aa, eco))
            t_jw = time.perf_counter() - t0
        _, info = jw.equilibrium_prices(eco, markup=a, info=True, method=method)
    deg = np.asarray(info.degenerate)
    m = min(B, baseline_items)
    t0 = time.perf_counter()
    fds = []
    for b in range(m):
        e = eco[b]
        fds.append(fd_jacobian(*(np.asarray(getattr(e, k)) for k in (
            "buyer_bundles", "buyer_values", "buyer_mask", "seller_bundles", "seller_costs",
            "seller_mask")), a))
    t_fd = (time.perf_counter() - t0) / max(m, 1)
    worst, compared = 0.0, 0
    for b in range(m):
        if deg[b]:
            continue
        ours = np.concatenate([np.asarray(JV[b]).reshape(-1), np.asarray(JC[b]).reshape(-1),
                               np.asarray(Ja[b]).reshape(-1)])
        ref = np.concatenate([fds[b][0].reshape(-1), fds[b][1].reshape(-1), fds[b][2].reshape(-1)])
        worst = max(worst, float(np.abs(ours - ref).max() / max(np.abs(ref).max(), 1e-300)))
        compared += 1
    n_par = int(np.asarray(eco.buyer_mask)[0].sum() + np.asarray(eco.seller_mask)[0].sum() + 1)
    return {"workload": name, "economies": B, "inputs_per_economy": n_par,
            "jaxwalras_total_s": t_jw, "jaxwalras_ms_per_economy": 1e3 * t_jw / B,
            "highs_fd_ms_per_economy": 1e3 * t_fd, "speedup": t_fd / (t_jw / B),
            "fd_economies_timed": m, "compared_non_degenerate": compared,
            "max_rel_diff_vs_fd": worst, "degenerate_fraction": float(deg.mean()),
            "converged": f"{int(np.asarray(info.converged).sum())}/{B}"}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="seconds-long smoke run")
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--baseline-items", type=int, default=10,
                    help="economies differentiated by finite differences (timed, compared)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    if args.quick:
        args.batch, args.baseline_items = 20, 2
    out = args.out or os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                   f"sensitivity_{jax.default_backend()}.json")
    rows = []
    multi = jw.examples.random_menu_economy(20, 4, 4, 4, 3, seed=0, batch_shape=(args.batch,))
    print("multi-good economies (N=20, F=4, 4 options each, L=3)", flush=True)
    rows.append(run("L=3, HiGHS per economy (method='lp')", multi, 0.1, "lp", args.baseline_items))
    rows.append(run("L=3, device solve + HiGHS block finish (method='smoothed')", multi, 0.1,
                    "smoothed", args.baseline_items))
    one = jw.examples.random_menu_economy(50, 5, 4, 6, 1, seed=1, batch_shape=(args.batch,))
    print("one-good economies (N=50, F=5)", flush=True)
    rows.append(run("L=1, envelope method", one, 0.1, "envelope", args.baseline_items))
    cols = ["workload", "economies", "inputs_per_economy", "jaxwalras_total_s",
            "jaxwalras_ms_per_economy", "highs_fd_ms_per_economy", "speedup",
            "fd_economies_timed", "compared_non_degenerate", "max_rel_diff_vs_fd",
            "degenerate_fraction", "converged"]
    print(markdown_table(rows, cols))
    print(f"(finite differences timed on {args.baseline_items} economies per workload and "
          "extrapolated per economy; agreement over the non-degenerate ones among them)")
    write_json(out, {"benchmark": "sensitivity", "args": vars(args), "rows": rows})
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
