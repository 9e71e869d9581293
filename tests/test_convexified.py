"""Convexified equilibria (DESIGN §2): LP and device methods against independent oracles."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy.optimize import linprog

import jaxwalras as jw
from jaxwalras.economy import MenuEconomy


# ---------------------------------------------------------------- independent oracles
def oracle_lp(eco: MenuEconomy, markup: float = 0.0, reserve=0.0) -> float:
    """Optimal value of the convexified LP, built densely and solved by HiGHS IPM."""
    X, V, Y, C = (np.asarray(a, float) for a in (eco.buyer_bundles, eco.buyer_values,
                                                  eco.seller_bundles, eco.seller_costs))
    bm, sm = np.asarray(eco.buyer_mask), np.asarray(eco.seller_mask)
    N, Kb, L = X.shape
    F, Ks, _ = Y.shape
    R = np.broadcast_to(np.asarray(reserve, float), (L,))
    c = np.concatenate([-V.ravel() / (1 + markup), C.ravel()])
    A_ub = np.concatenate([X.reshape(-1, L).T, -Y.reshape(-1, L).T], axis=1)
    A_eq = np.zeros((N + F, N * Kb + F * Ks))
    for n in range(N):
        A_eq[n, n * Kb:(n + 1) * Kb] = 1
    for f in range(F):
        A_eq[N + f, N * Kb + f * Ks:N * Kb + (f + 1) * Ks] = 1
    ub = np.concatenate([bm.ravel(), sm.ravel()]).astype(float)  # masked options forced to 0
    res = linprog(c, A_ub=A_ub, b_ub=-R, A_eq=A_eq, b_eq=np.ones(N + F),
                  bounds=list(zip(np.zeros_like(ub), ub)), method="highs-ipm")
    assert res.status == 0
    return -res.fun


def check_vertex_and_demand_sets(eco, res, markup=0.0, reserve=0.0, tol=1e-7):
    X, V, Y, C = (np.asarray(a, float) for a in (eco.buyer_bundles, eco.buyer_values,
                                                  eco.seller_bundles, eco.seller_costs))
    bm, sm = np.asarray(eco.buyer_mask), np.asarray(eco.seller_mask)
    lam, mu, p = np.asarray(res.buyer_weights), np.asarray(res.seller_weights), np.asarray(res.prices)
    L = X.shape[-1]
    scale = max(np.abs(V).max(), np.abs(C).max(), 1.0)
    # simplex, masks
    np.testing.assert_allclose(lam.sum(-1), 1.0, atol=1e-9)
    np.testing.assert_allclose(mu.sum(-1), 1.0, atol=1e-9)
    assert lam.min() >= -1e-12 and mu.min() >= -1e-12
    assert np.all(lam[~bm] == 0) and np.all(mu[~sm] == 0)
    assert np.all(p >= 0)
    # feasibility
    R = np.broadcast_to(np.asarray(reserve, float), (L,))
    assert np.all(np.einsum("nk,nkl->l", lam, X) + R <= np.einsum("fk,fkl->l", mu, Y) + 1e-8 * scale)
    # at most L agents mix (Shapley-Folkman vertex)
    mixing = ((lam > 1e-9).sum(-1) > 1).sum() + ((mu > 1e-9).sum(-1) > 1).sum()
    assert mixing <= L
    # positive weights only on options in demand / supply sets (brute force)
    for n in range(X.shape[0]):
        s = [V[n, k] - (1 + markup) * p @ X[n, k] for k in range(X.shape[1]) if bm[n, k]]
        for k in range(X.shape[1]):
            if lam[n, k] > 1e-9:
                assert V[n, k] - (1 + markup) * p @ X[n, k] >= max(s) - tol * scale
    for f in range(Y.shape[0]):
        s = [p @ Y[f, k] - C[f, k] for k in range(Y.shape[1]) if sm[f, k]]
        for k in range(Y.shape[1]):
            if mu[f, k] > 1e-9:
                assert p @ Y[f, k] - C[f, k] >= max(s) - tol * scale


# ---------------------------------------------------------------- Table 1
@pytest.mark.parametrize("method", ["lp", "device"])
def test_table1_paper_numbers(method):
    eco = jw.examples.milgrom_watt_table1()
    r = jw.convexified_equilibrium(eco, method=method)
    assert bool(r.converged)
    assert float(r.prices[0]) == pytest.approx(0.50, abs=1e-9)
    buys = np.asarray(r.buyer_weights[:, 1])
    np.testing.assert_allclose(buys, [1, 1, 1, 1, 1, 1, 0, 0, 0, 0], atol=1e-9)
    traded = float((r.buyer_weights * eco.buyer_bundles[..., 0]).sum())
    assert traded == pytest.approx(3.18, abs=1e-9)
    supplied = float((r.seller_weights * eco.seller_bundles[..., 0]).sum())
    assert supplied == pytest.approx(3.18, abs=1e-9)     # price > 0: market clears
    assert abs(float(r.rel_gap)) <= 1e-9
    check_vertex_and_demand_sets(eco, r)


# ---------------------------------------------------------------- random economies
@settings(max_examples=12)
@given(N=st.integers(1, 25), F=st.integers(1, 4), Kb=st.integers(1, 5), Ks=st.integers(1, 5),
       L=st.integers(1, 3), seed=st.integers(0, 10**6), integer=st.booleans())
def test_device_exact_matches_lp_oracle(N, F, Kb, Ks, L, seed, integer):
    eco = jw.examples.random_menu_economy(N, F, Kb, Ks, L, seed=seed, integer=integer)
    opt = oracle_lp(eco)
    for method in ("device", "lp"):
        r = jw.convexified_equilibrium(eco, method=method)
        assert bool(r.converged)
        assert abs(float(r.primal_value) - opt) <= 1e-6 * max(1.0, abs(opt))
        assert float(r.rel_gap) <= 1e-6
        check_vertex_and_demand_sets(eco, r)


def test_batch_matches_per_economy_and_many_shapes():
    eco = jw.examples.random_menu_economy(30, 4, 5, 6, 3, seed=7, batch_shape=(3, 4))
    r = jw.convexified_equilibrium(eco)
    assert r.prices.shape == (3, 4, 3) and r.buyer_weights.shape == (3, 4, 30, 5)
    assert r.converged.shape == (3, 4) and r.converged.all()
    assert np.all(r.rel_gap <= 1e-6)
    for i in range(3):
        for j in (0, 3):
            one = jw.convexified_equilibrium(eco[i, j])
            opt = oracle_lp(eco[i, j])
            assert float(one.primal_value) == pytest.approx(opt, rel=1e-7, abs=1e-9)
            assert float(r.primal_value[i, j]) == pytest.approx(opt, rel=1e-7, abs=1e-9)
            check_vertex_and_demand_sets(eco[i, j], jax.tree_util.tree_map(
                lambda a: a[i, j] if np.ndim(a) >= 2 else a, r._replace(markup=None, reserve=None)))


def test_markup_reserve_grid_broadcast():
    eco = jw.examples.random_menu_economy(15, 3, 4, 4, 2, seed=3, batch_shape=(5,))
    grid = np.array([0.0, 0.05, 0.2])[:, None]
    r = jw.convexified_equilibrium(eco, markup=grid, reserve=-0.3)
    assert r.prices.shape == (3, 5, 2) and r.markup.shape == (3, 5) and r.reserve.shape == (3, 5, 2)
    assert r.converged.all()
    for g in range(3):
        for b in (0, 4):
            opt = oracle_lp(eco[b], markup=float(grid[g, 0]), reserve=-0.3)
            assert float(r.primal_value[g, b]) == pytest.approx(opt, rel=1e-7, abs=1e-9)
    np.testing.assert_allclose(r.buyer_prices, r.prices * (1 + r.markup[..., None]))
    # positive reserve per good, LP method agrees
    r2 = jw.convexified_equilibrium(eco[0], reserve=[0.2, 0.1], method="lp")
    assert float(r2.primal_value) == pytest.approx(oracle_lp(eco[0], reserve=[0.2, 0.1]), rel=1e-7)


def test_infeasible_reserve_is_flagged():
    eco = jw.examples.milgrom_watt_table1(max_units=2)
    for method in ("lp", "device"):
        r = jw.convexified_equilibrium(eco, reserve=100.0, method=method)
        assert not bool(r.converged) and np.isnan(r.prices).all()


def test_convex_economy_gives_walrasian_equilibrium():
    """Concave piecewise-linear values / convex costs on a grid: the convexified menus are the
    economy itself, so the result must be a Walrasian equilibrium (checked by definition)."""
    rng = np.random.default_rng(0)
    N, F, K = 12, 3, 6
    grid = np.linspace(0, 2, K)
    mb = np.sort(rng.uniform(0.2, 2.0, (N, K - 1)), -1)[:, ::-1]   # decreasing marginals
    vb = np.concatenate([np.zeros((N, 1)), np.cumsum(mb * np.diff(grid), -1)], -1)
    mc = np.sort(rng.uniform(0.2, 2.0, (F, K - 1)), -1)             # increasing marginals
    cs = np.concatenate([np.zeros((F, 1)), np.cumsum(mc * np.diff(grid), -1)], -1)
    eco = MenuEconomy.single_good(np.tile(grid[1:], (N, 1)), vb[:, 1:],
                                  np.tile(grid[1:], (F, 1)), cs[:, 1:])
    r = jw.convexified_equilibrium(eco)
    p = float(r.prices[0])
    x = (r.buyer_weights * eco.buyer_bundles[..., 0]).sum(-1)
    y = (r.seller_weights * eco.seller_bundles[..., 0]).sum(-1)
    fine = np.linspace(0, 2, 2001)
    for n in range(N):  # buyer's consumption maximises v_n(x) - p x over the whole interval
        v = np.interp(fine, grid, vb[n])
        assert np.interp(x[n], grid, vb[n]) - p * x[n] >= (v - p * fine).max() - 1e-9
    for f in range(F):
        c = np.interp(fine, grid, cs[f])
        assert p * y[f] - np.interp(y[f], grid, cs[f]) >= (p * fine - c).max() - 1e-9
    assert y.sum() >= x.sum() - 1e-9
    assert p == 0 or abs(y.sum() - x.sum()) <= 1e-9     # market clears where price > 0


# ---------------------------------------------------------------- device details
def test_device_inexact_mode_and_no_recompilation():
    import jaxwalras.convexified as cv
    eco = jw.examples.random_menu_economy(20, 3, 4, 4, 2, seed=11, batch_shape=(6,))
    r = jw.convexified_equilibrium(eco, exact=False)
    assert r.prices.shape == (6, 2)
    assert np.all(r.infeasibility <= 1e-4)                      # logit weights made feasible
    assert np.all(r.dual_value >= r.primal_value - 1e-4 * np.abs(r.dual_value))
    fn = cv._jitted_solver(tuple(sorted({}.items())))
    n0 = fn._cache_size()
    eco2 = jw.examples.random_menu_economy(20, 3, 4, 4, 2, seed=12, batch_shape=(6,))
    jw.convexified_equilibrium(eco2)
    jw.convexified_equilibrium(eco2, markup=0.1)
    assert fn._cache_size() == n0                               # same shapes: no new trace
    # chunking pads the last chunk: chunk_size=4 on 6 economies -> one extra shape at most
    r4 = jw.convexified_equilibrium(eco, chunk_size=4)
    np.testing.assert_allclose(r4.primal_value, jw.convexified_equilibrium(eco).primal_value,
                               rtol=1e-9)


def test_adam_solver_option():
    eco = jw.examples.random_menu_economy(10, 2, 3, 3, 1, seed=5)
    r = jw.convexified_equilibrium(eco, solver="adam", stages=4, steps=50)
    assert bool(r.converged) and float(r.rel_gap) <= 1e-6


def test_demand_gaps_bruteforce():
    eco = jw.examples.random_menu_economy(6, 2, 4, 3, 2, seed=2)
    p = np.array([0.7, 1.1])
    bg, sg = jw.demand_gaps(eco, p, markup=0.1)
    for n in range(6):
        s = [eco.buyer_values[n, k] - 1.1 * p @ eco.buyer_bundles[n, k] for k in range(4)]
        np.testing.assert_allclose(bg[n], max(s) - np.array(s), atol=1e-12)
    for f in range(2):
        s = [p @ eco.seller_bundles[f, k] - eco.seller_costs[f, k] for k in range(3)]
        np.testing.assert_allclose(sg[f], max(s) - np.array(s), atol=1e-12)


# ---------------------------------------------------------------- bad inputs
def test_bad_inputs():
    eco = jw.examples.milgrom_watt_table1()
    with pytest.raises(ValueError, match="method"):
        jw.convexified_equilibrium(eco, method="simplex")
    with pytest.raises(ValueError, match="markup"):
        jw.convexified_equilibrium(eco, markup=-1.5)
    with pytest.raises(ValueError, match="markup"):
        jw.convexified_equilibrium(eco, markup=np.nan)
    with pytest.raises(ValueError, match="reserve"):
        jw.convexified_equilibrium(eco, reserve=np.zeros(3))
    with pytest.raises(ValueError, match="batch"):
        jw.convexified_equilibrium(jw.examples.random_menu_economy(batch_shape=(3,)),
                                   markup=np.zeros(4))
    with pytest.raises(TypeError, match="economy"):
        jw.convexified_equilibrium({"buyer_values": 1})
    with pytest.raises(TypeError, match="unknown device option"):
        jw.convexified_equilibrium(eco, stepz=3)
    with pytest.raises(ValueError, match="solver"):
        jw.convexified_equilibrium(eco, solver="sgd")
    with pytest.raises(ValueError, match="tol"):
        jw.convexified_equilibrium(eco, tol=-1)
    with pytest.raises(ValueError, match="prices"):
        jw.demand_gaps(eco, [0.5, 0.5])
    with pytest.raises(ValueError, match="tau"):
        jw.smoothed_equilibrium(eco, tau=0.0)


# ---------------------------------------------------------------- differentiability
def test_smoothed_gradients_match_finite_differences():
    with jax.enable_x64(True):
        eco = jw.examples.random_menu_economy(20, 3, 4, 4, 2, seed=1)
        V0, C0, Y0 = (jnp.asarray(a) for a in (eco.buyer_values, eco.seller_costs, eco.seller_bundles))

        @jax.jit
        def out(V, C, Y, a, R):
            s = jw.smoothed_equilibrium(eco.replace(buyer_values=V, seller_costs=C, seller_bundles=Y),
                                        markup=a, reserve=R, tau=1e-2)
            return s.prices[0] + 0.3 * s.prices[1] + 0.1 * s.welfare

        args = (V0, C0, Y0, jnp.asarray(0.05), jnp.asarray(-0.1))
        grads = jax.grad(out, argnums=(0, 1, 2, 3, 4))(*args)
        rng = np.random.default_rng(0)
        h = 1e-5
        for i, a in enumerate(args):
            d = rng.normal(size=np.shape(a))
            if i == 0:
                d[:, 0] = 0.0           # option 0 stays the empty bundle
            if i == 1:
                d[:, 0] = 0.0
            if i == 2:
                d[:, 0, :] = 0.0
            plus = list(args)
            minus = list(args)
            plus[i] = a + h * d
            minus[i] = a - h * d
            fd = (out(*plus) - out(*minus)) / (2 * h)
            an = float(jnp.sum(grads[i] * d))
            assert an == pytest.approx(float(fd), rel=2e-4, abs=1e-7), i
        # the smoothed prices approach the exact equilibrium prices as tau -> 0
        s = jw.smoothed_equilibrium(eco, tau=1e-5)
        ce = jw.convexified_equilibrium(eco, method="lp")
        np.testing.assert_allclose(np.asarray(s.prices), ce.prices, atol=2e-3)
