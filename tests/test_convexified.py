"""Convexified equilibria (Milgrom and Watt, 2022): LP and device methods against independent oracles."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from _hyp import examples
from scipy.optimize import linprog

import jaxwalras as jw
from jaxwalras.economy import MenuEconomy


# ---------------------------------------------------------------- independent oracles
def oracle_lp(eco: MenuEconomy, markup: float = 0.0, reserve=0.0, infeasible_ok=False):
    """Optimal value of the convexified LP, built densely and solved by HiGHS IPM (``None``
    for an infeasible LP when ``infeasible_ok``)."""
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
    if infeasible_ok and res.status == 2:
        return None
    assert res.status == 0
    return -res.fun


def oracle_dual(eco: MenuEconomy, p, markup: float = 0.0, reserve=0.0) -> float:
    """g(p) = sum_n max_k (V/(1+a) - p.X) + sum_f max_k (p.Y - C) - p.R, written out."""
    X, V, Y, C = (np.asarray(a, float) for a in (eco.buyer_bundles, eco.buyer_values,
                                                  eco.seller_bundles, eco.seller_costs))
    bm, sm = np.asarray(eco.buyer_mask), np.asarray(eco.seller_mask)
    p = np.asarray(p, float)
    R = np.broadcast_to(np.asarray(reserve, float), p.shape)
    tot = -float(p @ R)
    for n in range(X.shape[0]):
        tot += max(V[n, k] / (1 + markup) - p @ X[n, k] for k in range(X.shape[1]) if bm[n, k])
    for f in range(Y.shape[0]):
        tot += max(p @ Y[f, k] - C[f, k] for k in range(Y.shape[1]) if sm[f, k])
    return tot


def oracle_primal(eco: MenuEconomy, lam, mu, markup: float = 0.0) -> float:
    """LP objective of the weights, written out."""
    V, C = np.asarray(eco.buyer_values, float), np.asarray(eco.seller_costs, float)
    return float((np.asarray(lam) * V).sum() / (1 + markup) - (np.asarray(mu) * C).sum())


def oracle_prices(eco: MenuEconomy, markup: float = 0.0, reserve=0.0) -> np.ndarray:
    """The lexicographically smallest optimal dual prices p >= 0, by HiGHS: the optimal
    value g* of the LP above, then min p_1 subject to g(p) <= g* (one epigraph variable per
    agent), fix it, min p_2, ...  (The optimal prices of a degenerate LP form a face; this
    picks one point of it independently of any solver's choice.)"""
    g_star = oracle_lp(eco, markup, reserve)
    X, V, Y, C = (np.asarray(getattr(eco, f), float) for f in
                  ("buyer_bundles", "buyer_values", "seller_bundles", "seller_costs"))
    bm, sm = np.asarray(eco.buyer_mask), np.asarray(eco.seller_mask)
    N, Kb, L = X.shape
    F, Ks, _ = Y.shape
    R = np.broadcast_to(np.asarray(reserve, float), (L,))
    nv = L + N + F
    A, b = [], []
    for n in range(N):                   # V/(1+a) - X.p <= t_n
        for k in range(Kb):
            if bm[n, k]:
                row = np.zeros(nv)
                row[:L], row[L + n] = -X[n, k], -1.0
                A.append(row)
                b.append(-V[n, k] / (1 + markup))
    for f in range(F):                   # Y.p - C <= s_f
        for k in range(Ks):
            if sm[f, k]:
                row = np.zeros(nv)
                row[:L], row[L + N + f] = Y[f, k], -1.0
                A.append(row)
                b.append(C[f, k])
    row = np.zeros(nv)                   # sum t + sum s - p.R <= g*
    row[:L], row[L:] = -R, 1.0
    A.append(row)
    b.append(g_star + 1e-10 * max(1.0, abs(g_star)))
    bounds = [(0, None)] * L + [(None, None)] * (N + F)
    p = np.zeros(L)
    for l in range(L):
        c = np.zeros(nv)
        c[l] = 1.0
        res = linprog(c, A_ub=np.array(A), b_ub=np.array(b), bounds=bounds, method="highs")
        assert res.status == 0, res.message
        p[l] = res.x[l]
        bounds[l] = (0, p[l] + 1e-10 * max(1.0, p[l]))
    return p


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
@pytest.mark.parametrize("method", ["lp", "auto", "smoothed"])
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
@settings(max_examples=examples(12))
@given(N=st.integers(1, 25), F=st.integers(1, 4), Kb=st.integers(1, 5), Ks=st.integers(1, 5),
       L=st.integers(1, 3), seed=st.integers(0, 10**6), integer=st.booleans())
def test_device_exact_matches_lp_oracle(N, F, Kb, Ks, L, seed, integer):
    eco = jw.examples.random_menu_economy(N, F, Kb, Ks, L, seed=seed, integer=integer)
    opt = oracle_lp(eco)
    for method in ("auto", "lp"):
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
    for method in ("lp", "auto", "smoothed"):
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
    # the smoothed solution itself (no exact finish) is near-optimal: its prices' dual value
    # and its weights' welfare, both computed here, within 3% of the LP optimum (a crippled
    # device solver, e.g. one Newton step per stage or one stage, is 15-50% off here)
    for b in range(6):
        opt = oracle_lp(eco[b])
        scale = max(1.0, abs(opt))
        g = oracle_dual(eco[b], r.prices[b])
        w = oracle_primal(eco[b], r.buyer_weights[b], r.seller_weights[b])
        assert opt - 1e-6 * scale <= g <= opt + 0.03 * scale, (b, g, opt)
        assert opt - 0.03 * scale <= w <= opt + 1e-4 * scale, (b, w, opt)
        assert float(r.rel_gap[b]) <= 0.03
    jw.convexified_equilibrium(eco)                             # exact: the default solver
    fn = cv._solve_batch
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
    """solver="adam" is used and does its job BEFORE the exact finish (which certifies from
    any start, so the finished answer alone cannot show the option): with exact=False its
    own prices and weights are within 25% of the LP optimum on every economy and 10% on
    average (learning_rate=1e-12 or steps=1 leave them 40-130% off), its iteration counts
    are Adam's (multiples of its 40 steps per stage; Newton's default stops at 22), and the
    exact finish from its prices is the LP optimum."""
    eco = jw.examples.random_menu_economy(10, 2, 3, 3, 2, seed=5, batch_shape=(6,))
    opt = np.array([oracle_lp(eco[b]) for b in range(6)])
    r = jw.convexified_equilibrium(eco, exact=False, solver="adam", stages=4, steps=50)
    err = np.array([max(oracle_dual(eco[b], r.prices[b]) - opt[b],
                        opt[b] - oracle_primal(eco[b], r.buyer_weights[b], r.seller_weights[b]))
                    for b in range(6)]) / np.maximum(1.0, np.abs(opt))
    assert err.max() <= 0.25 and err.mean() <= 0.1, err
    assert np.all(r.iterations == 200)                        # 4 stages x 50 steps
    d = jw.convexified_equilibrium(eco, exact=False, solver="adam")   # defaults: 5 x 40
    assert np.all(d.iterations % 40 == 0) and np.all(d.iterations >= 40), d.iterations
    n = jw.convexified_equilibrium(eco, exact=False)                  # Newton: 11 x 2
    assert np.all(n.iterations <= 22)
    x = jw.convexified_equilibrium(eco, solver="adam", stages=4, steps=50)
    assert x.converged.all() and np.all(x.rel_gap <= 1e-6)
    np.testing.assert_allclose(x.primal_value, opt, rtol=1e-7, atol=1e-9)


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
    with pytest.raises(ValueError, match="envelope"):
        jw.convexified_equilibrium(jw.examples.random_menu_economy(n_goods=2), method="envelope")
    with pytest.raises(ValueError, match="chunk_size"):
        jw.convexified_equilibrium(jw.examples.random_menu_economy(n_goods=2), chunk_size=0)
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
    with pytest.raises(ValueError, match="rtol"):
        jw.convexified_equilibrium(eco, rtol=-1)
    with pytest.raises(ValueError, match="backend"):
        jw.convexified_equilibrium(eco, backend="gpu")
    with pytest.raises(ValueError, match="method"):
        jw.convexified_equilibrium(eco, method="simplex")
    with pytest.raises(ValueError, match="backend"):
        jw.convexified_equilibrium(eco, method="lp", backend="device")
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
        # the smoothed prices approach the exact equilibrium prices (LP oracle) as tau -> 0
        s = jw.smoothed_equilibrium(eco, tau=1e-5)
        np.testing.assert_allclose(np.asarray(s.prices), oracle_prices(eco), atol=2e-3)



def test_pipelined_batch_matches_oracle():
    """A batch large enough to be cut into chunks whose exact finish overlaps the device
    solve of the next chunk (the last chunk padded): every economy matches the oracle."""
    eco = jw.examples.random_menu_economy(12, 3, 4, 4, 2, seed=21, batch_shape=(150,))
    r = jw.convexified_equilibrium(eco)
    assert r.converged.all() and np.all(r.rel_gap <= 1e-9)
    for b in (0, 63, 64, 127, 128, 149):      # chunk edges
        assert float(r.primal_value[b]) == pytest.approx(oracle_lp(eco[b]), rel=1e-8, abs=1e-9)
    check_vertex_and_demand_sets(eco[149], jax.tree_util.tree_map(
        lambda a: a[149] if np.ndim(a) >= 1 and np.shape(a)[0] == 150 else a, r))


@pytest.fixture(scope="module")
def finish_case():
    """12 integer economies (degenerate LPs) at markup 0.1, reserve -0.2, with the LP
    oracle's optimal values and least optimal prices."""
    eco = jw.examples.random_menu_economy(25, 4, 5, 5, 3, seed=4, batch_shape=(12,),
                                          integer=True)
    opt = np.array([oracle_lp(eco[b], 0.1, -0.2) for b in range(12)])
    prices = np.stack([oracle_prices(eco[b], 0.1, -0.2) for b in range(12)])
    return eco, opt, prices


def check_finish(eco, opt, P, LAM, MU, markup, reserve, rtol=1e-9):
    """An exact finish's output against the oracle: a vertex whose positive weights are in
    demand / supply sets, welfare equal to the LP optimum and prices whose dual value (both
    computed here) equals it too."""
    from types import SimpleNamespace
    for b in range(len(opt)):
        res = SimpleNamespace(prices=P[b], buyer_weights=LAM[b], seller_weights=MU[b])
        check_vertex_and_demand_sets(eco[b], res, markup, reserve)
        scale = max(1.0, abs(opt[b]))
        assert abs(oracle_primal(eco[b], LAM[b], MU[b], markup) - opt[b]) <= rtol * scale, b
        assert abs(oracle_dual(eco[b], P[b], markup, reserve) - opt[b]) <= rtol * scale, b


@pytest.mark.parametrize("start", ["zero", "noisy", "far"])
def test_exact_finish_from_poor_prices(start, finish_case):
    """Column generation, the elastic supply of restricted LPs and the final full LP: the
    exact finish reaches the LP optimum (oracle) from any starting prices."""
    from jaxwalras import exact_finish, menu_host
    eco, opt, ref = finish_case
    batch, a, r = menu_host.broadcast_inputs(eco, 0.1, -0.2)
    A = eco.host_arrays(batch)
    rng = np.random.default_rng(0)
    P0 = {"zero": np.zeros_like(ref),
          "noisy": ref * (1 + rng.uniform(-0.05, 0.05, ref.shape)),
          "far": ref * 5 + 1.0}[start]
    ok, P, LAM, MU, _ = exact_finish.host_exact_finish(P0, A, a, r)
    assert ok.all()
    check_finish(eco, opt, P, LAM, MU, 0.1, -0.2)


def test_exact_finish_linprog_fallback(monkeypatch):
    """Without highspy the restricted LPs go through scipy's linprog: same answer."""
    from jaxwalras import highs
    eco = jw.examples.random_menu_economy(15, 3, 4, 4, 2, seed=9, batch_shape=(5,))
    r1 = jw.convexified_equilibrium(eco, reserve=-0.1)
    monkeypatch.setattr(highs, "USE_HIGHSPY", False)
    r2 = jw.convexified_equilibrium(eco, reserve=-0.1)
    assert r1.converged.all() and r2.converged.all()
    np.testing.assert_allclose(r2.primal_value, r1.primal_value, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(r2.primal_value, [oracle_lp(eco[b], reserve=-0.1) for b in range(5)],
                               rtol=1e-8, atol=1e-9)

# ---------------------------------------------------------------- exact finish on the device
@pytest.mark.parametrize("N,F,Kb,Ks,L,B,integer,markup,reserve", [
    (20, 3, 5, 5, 2, 24, False, 0.0, 0.0),
    (40, 5, 6, 4, 3, 16, True, 0.15, -0.2),     # integer data: exact ties everywhere
    (8, 2, 3, 6, 4, 20, False, 0.0, 0.3),
    (60, 6, 8, 8, 5, 8, False, 0.05, 0.0),
])
def test_device_finish_matches_lp_oracle(N, F, Kb, Ks, L, B, integer, markup, reserve):
    """backend='device' (batched float64 dual simplex on the near-tied options, certified on
    the device): the LP optimum of every economy (independent dense HiGHS oracle), a vertex
    with at most L mixing agents, and positive weights only in demand/supply sets."""
    eco = jw.examples.random_menu_economy(N, F, Kb, Ks, L, seed=N + L, batch_shape=(B,),
                                          integer=integer)
    r = jw.convexified_equilibrium(eco, markup=markup, reserve=reserve, backend="device")
    assert r.converged.all() and np.all(r.rel_gap <= 1e-9)
    for b in range(0, B, max(1, B // 5)):
        opt = oracle_lp(eco[b], markup=markup, reserve=reserve)
        assert float(r.primal_value[b]) == pytest.approx(opt, rel=1e-8, abs=1e-9)
        check_vertex_and_demand_sets(eco[b], jax.tree_util.tree_map(
            lambda a: a[b] if np.ndim(a) >= 1 and np.shape(a)[0] == B else a, r),
            markup=markup, reserve=reserve)
    # the host finish reaches the same optimal values
    h = jw.convexified_equilibrium(eco, markup=markup, reserve=reserve, backend="host")
    np.testing.assert_allclose(r.primal_value, h.primal_value, rtol=1e-9, atol=1e-9)


def test_device_finish_certifies_on_device_and_flags_the_rest():
    """The device step itself: from good prices it certifies (nearly) every economy, and
    its certificate is the host's; from poor prices it may certify fewer, but never a wrong
    one -- every economy it marks ok is optimal (oracle), the others are left to the host."""
    from jaxwalras import exact_finish, menu_host
    eco = jw.examples.random_menu_economy(30, 4, 5, 5, 3, seed=5, batch_shape=(20,))
    batch, a, r = menu_host.broadcast_inputs(eco, 0.05, -0.1)
    A = jw.MenuArrays(*(np.ascontiguousarray(z) for z in eco.host_arrays(batch)))
    opt = np.array([oracle_lp(eco[b], 0.05, -0.1) for b in range(20)])
    ref = np.stack([oracle_prices(eco[b], 0.05, -0.1) for b in range(20)])
    rng = np.random.default_rng(1)
    starts = {"lp": ref, "noisy": ref * (1 + rng.uniform(-0.02, 0.02, (20, 3))),
              "zero": np.zeros((20, 3)), "far": 3 * ref + 1.0}
    for name, P0 in starts.items():
        ok, P, LAM, MU, dual, primal, infeas = exact_finish.device_exact_finish(P0, A, a, r)
        if name in ("lp", "noisy"):      # near the least prices the device finishes all
            assert ok.all()
        idx = np.flatnonzero(ok)          # from zero / far prices it may certify none
        if idx.size:
            check_finish(eco[idx], opt[idx], P[idx], LAM[idx], MU[idx], 0.05, -0.1)
        for b in idx:              # the device's own certificate is the one computed here
            assert dual[b] == pytest.approx(oracle_dual(eco[b], P[b], 0.05, -0.1), rel=1e-12,
                                            abs=1e-12)
            assert primal[b] == pytest.approx(oracle_primal(eco[b], LAM[b], MU[b], 0.05),
                                              rel=1e-12, abs=1e-12)
        assert np.all(infeas[ok] <= 1e-9)
        # a tiny tableau budget: the same answers from pieces of 16 economies (20 = 16 + 4
        # padded to 16)
        small = exact_finish.device_exact_finish(P0, A, a, r, tableau_bytes=1)
        np.testing.assert_array_equal(small[0], ok)
        for u, v in zip(small[1:], (P, LAM, MU, dual, primal, infeas)):   # up to rounding
            np.testing.assert_allclose(u, v, rtol=1e-12, atol=1e-12)


def test_device_finish_infeasible_reserve_and_no_recompilation():
    """Infeasible reserves are flagged (NaN prices) with backend='device' too, and a second
    same-shape call compiles nothing new."""
    eco = jw.examples.random_menu_economy(10, 2, 3, 3, 2, seed=8, batch_shape=(4,))
    reserve = np.array([[0.0, 0.0], [1e3, 0.0], [0.1, 0.1], [0.0, 1e3]])
    r = jw.convexified_equilibrium(eco, reserve=reserve, backend="device")
    np.testing.assert_array_equal(r.converged, [True, False, True, False])
    assert np.isnan(r.prices[[1, 3]]).all() and np.isfinite(r.prices[[0, 2]]).all()
    from jaxwalras.kernels import restricted_lp
    before = restricted_lp.restricted_vertex._cache_size()
    r2 = jw.convexified_equilibrium(eco, reserve=reserve, backend="device")
    assert restricted_lp.restricted_vertex._cache_size() == before
    np.testing.assert_array_equal(r2.primal_value, r.primal_value)


def test_infeasible_reserve_in_a_multigood_batch():
    eco = jw.examples.random_menu_economy(10, 2, 3, 3, 2, seed=8, batch_shape=(4,))
    reserve = np.array([[0.0, 0.0], [1e3, 0.0], [0.1, 0.1], [0.0, 1e3]])
    for method in ("smoothed", "lp"):
        r = jw.convexified_equilibrium(eco, reserve=reserve, method=method)
        np.testing.assert_array_equal(r.converged, [True, False, True, False])
        np.testing.assert_array_equal(r.status, [jw.Status.OK, jw.Status.INFEASIBLE,
                                                 jw.Status.OK, jw.Status.INFEASIBLE])
        assert np.isnan(r.prices[[1, 3]]).all() and np.isfinite(r.prices[[0, 2]]).all()
        assert float(r.primal_value[2]) == pytest.approx(oracle_lp(eco[2], reserve=[0.1, 0.1]),
                                                         rel=1e-8)

# ---------------------------------------------------------------- one good: exact envelope path
def random_single_good(rng, batch=()):
    """Random one-good menus of every kind: continuous or integer grids (many exact ties),
    fixed/start-up costs, integer production, buyers with no positive value (zero demand),
    padded options, options sharing a quantity."""
    N, F = int(rng.integers(1, 30)), int(rng.integers(1, 4))
    Kb, Ks = int(rng.integers(1, 6)), int(rng.integers(1, 9))
    kind = rng.integers(0, 4)
    if kind == 0:      # continuous, non-concave values, fixed costs
        X = rng.uniform(size=batch + (N, Kb, 1))
        V = X[..., 0] * rng.uniform(0.5, 1.5, batch + (N, Kb))
        Y = rng.uniform(0, 3, batch + (F, Ks, 1))
        C = Y[..., 0] * rng.uniform(0.3, 1.2, batch + (F, Ks)) + rng.uniform(0, 0.5, batch + (F, 1))
    elif kind == 1:    # integer grids and round values: exact ties everywhere
        X = rng.integers(0, 4, batch + (N, Kb, 1)).astype(float)
        V = np.round(X[..., 0] * rng.integers(1, 4, batch + (N, Kb)) / 2, 1)
        Y = rng.integers(0, 6, batch + (F, Ks, 1)).astype(float)
        C = np.round(Y[..., 0] * rng.integers(1, 3, batch + (F, Ks)) / 2
                     + rng.integers(0, 2, batch + (F, 1)), 1)
    elif kind == 2:    # integer production at a constant marginal cost + start-up cost
        X = rng.uniform(0, 2, batch + (N, Kb, 1))
        V = X[..., 0] * rng.uniform(0, 1.5, batch + (N, Kb)) - rng.uniform(0, 0.3, batch + (N, Kb))
        Y = np.broadcast_to(np.arange(Ks, dtype=float)[:, None], batch + (F, Ks, 1)).copy()
        C = Y[..., 0] * 0.5 + rng.choice([0.0, 0.4], batch + (F, 1))
    else:              # zero demand: no buyer values anything above cost
        X = rng.uniform(size=batch + (N, Kb, 1))
        V = -rng.uniform(size=batch + (N, Kb))
        Y = rng.uniform(0, 2, batch + (F, Ks, 1))
        C = rng.uniform(0, 1, batch + (F, Ks))
    X[..., 0, :] = 0.0
    V[..., 0] = 0.0
    Y[..., 0, :] = 0.0
    C[..., 0] = 0.0
    bm = rng.uniform(size=batch + (N, Kb)) > 0.2
    sm = rng.uniform(size=batch + (F, Ks)) > 0.2
    bm[..., 0] = True
    sm[..., 0] = True
    return MenuEconomy(X, V, Y, C, bm, sm)


def test_single_good_envelope_matches_highs_on_many_economies():
    rng = np.random.default_rng(42)
    n_infeasible = 0
    for trial in range(150):
        eco = random_single_good(rng)
        markup = float(rng.choice([0.0, 0.1, 0.5]))
        reserve = float(rng.choice([0.0, -0.5, 0.5, 3.0]))
        opt = oracle_lp(eco, markup, reserve, infeasible_ok=True)
        for method in ("auto", "envelope"):          # L == 1: "auto" routes here too
            r = jw.convexified_equilibrium(eco, markup=markup, reserve=reserve, method=method)
            assert bool(r.converged) == (opt is not None), trial
            if opt is None:                         # reserve above capacity
                assert np.isnan(r.prices).all() and int(r.status) == jw.Status.INFEASIBLE
                n_infeasible += 1
                continue
            assert float(r.primal_value) == pytest.approx(opt, rel=1e-9, abs=1e-9), trial
            assert abs(float(r.rel_gap)) <= 1e-12, trial
            assert float(r.infeasibility) <= 1e-12
            check_vertex_and_demand_sets(eco, r, markup, reserve, tol=1e-12)
            mixing = (((r.buyer_weights > 0).sum(-1) > 1).sum()
                      + ((r.seller_weights > 0).sum(-1) > 1).sum())
            assert mixing <= 1
            # the price minimises the dual (computed here): its value is the LP optimum, no
            # price nearby is better, and it is the least optimal price; it clears the market
            p = float(r.prices[0])
            g = oracle_dual(eco, [p], markup, reserve)
            assert g == pytest.approx(opt, rel=1e-9, abs=1e-9), trial
            for q in (p * (1 - 1e-6), p * (1 + 1e-6) + 1e-12, p + 0.01, max(p - 0.01, 0.0)):
                assert oracle_dual(eco, [q], markup, reserve) >= g - 1e-12 * max(1, abs(g))
            if p > 0:           # the least optimal price: any lower one is worse
                assert oracle_dual(eco, [p * (1 - 1e-4)], markup, reserve) > g + 1e-12 * max(1, abs(g))
            if p > 0:
                dem = float((r.buyer_weights * eco.buyer_bundles[..., 0]).sum()) + reserve
                sup = float((r.seller_weights * eco.seller_bundles[..., 0]).sum())
                assert sup == pytest.approx(dem, abs=1e-12 * max(1.0, sup))
    assert 0 < n_infeasible < 150


def test_single_good_batch_markup_reserve_grid():
    rng = np.random.default_rng(3)
    eco = random_single_good(rng, batch=(6,))
    grid = np.array([0.0, 0.05, 0.3])[:, None]
    reserve = np.array([-0.2, 0.0, 0.1, 0.0, 0.5, 0.0])[:, None]
    r = jw.convexified_equilibrium(eco, markup=grid, reserve=reserve)
    assert r.prices.shape == (3, 6, 1) and r.buyer_weights.shape == (3,) + eco.buyer_values.shape
    for g in range(3):
        for b in range(6):
            opt = oracle_lp(eco[b], float(grid[g, 0]), float(reserve[b, 0]), infeasible_ok=True)
            assert bool(r.converged[g, b]) == (opt is not None)
            if opt is not None:
                assert float(r.primal_value[g, b]) == pytest.approx(opt, rel=1e-9, abs=1e-9)
                assert float(r.rel_gap[g, b]) <= 1e-12
                one = jw.convexified_equilibrium(eco[b], markup=float(grid[g, 0]),
                                                 reserve=float(reserve[b, 0]))
                np.testing.assert_allclose(one.prices, r.prices[g, b], rtol=0, atol=0)


def test_single_good_large_market_closed_form():
    """Milgrom-Watt's large market: one seller makes any integer quantity at marginal cost
    0.5 with room for all, so the convexified price is 0.5 and the buyers with per-unit value
    above 0.5 buy (an oracle independent of any solver); 200k buyers, 100k seller options."""
    n = 200_000
    eco = jw.examples.milgrom_watt_random(n, seed=5)
    r = jw.convexified_equilibrium(eco)
    q = np.asarray(eco.buyer_bundles[:, 1, 0])
    v = np.asarray(eco.buyer_values[:, 1]) / q
    assert bool(r.converged) and float(r.prices[0]) == 0.5
    np.testing.assert_array_equal(r.buyer_weights[:, 1], (v > 0.5).astype(float))
    welfare = float(np.sum(np.maximum(v - 0.5, 0) * q))
    assert float(r.primal_value) == pytest.approx(welfare, rel=1e-12)
    sup = float((r.seller_weights * eco.seller_bundles[..., 0]).sum())
    assert sup == pytest.approx(float(q[v > 0.5].sum()), rel=1e-12)
    assert ((r.seller_weights > 0).sum() <= 2)


def _brute_upper_hull(z, w):
    """Indices of the strict vertices of the upper hull of the points (z_k, w_k)."""
    out = []
    for k in range(len(z)):
        same = (z == z[k])
        if w[k] < w[same].max() or (np.nonzero(same & (w == w[k]))[0][0] != k):
            continue
        left, right = np.nonzero(z < z[k])[0], np.nonzero(z > z[k])[0]
        below = any(w[k] <= w[i] + (w[j] - w[i]) * (z[k] - z[i]) / (z[j] - z[i])
                    for i in left for j in right)
        if not below:
            out.append(k)
    return sorted(out, key=lambda k: z[k])


@pytest.mark.parametrize("max_passes", [64, 1])     # 1: the monotone-chain fallback too
def test_upper_hulls_bruteforce(max_passes):
    from jaxwalras.single_good import _upper_hulls
    rng = np.random.default_rng(0)
    A, K = 300, 9
    z = rng.integers(0, 6, (A, K)).astype(float)
    z[::3] = rng.uniform(0, 5, (A // 3, K))
    w = rng.integers(-3, 4, (A, K)).astype(float)
    w[1::3] = -(z[1::3] - 2.5) ** 2                  # concave rows: every point a vertex
    alive = rng.uniform(size=(A, K)) > 0.2
    alive[:, 0] = True
    opt, zv, wv, nv = _upper_hulls(z, w, alive, max_passes=max_passes)
    for a in range(A):
        ks = np.nonzero(alive[a])[0]
        ref = ks[_brute_upper_hull(z[a, ks], w[a, ks])]
        assert nv[a] == len(ref), a
        np.testing.assert_array_equal(z[a, opt[a, :nv[a]]], z[a, ref])
        np.testing.assert_array_equal(w[a, opt[a, :nv[a]]], w[a, ref])


def test_typical_agent_scale_is_the_median_agent_and_ignores_padding():
    """The smoothing unit of the Newton solver: the (lower) median over agents of their
    largest |value| (buyers over 1 + markup) or |cost|, relative to the economy's largest,
    computed here by numpy; agents whose options are all worth 0 (padding) do not count,
    and the unit does not depend on the money unit."""
    from jaxwalras.kernels.smoothed_dual import normalisation, typical_agent_scale
    rng = np.random.default_rng(4)
    for trial in range(5):
        N, F, K = rng.integers(3, 40), rng.integers(1, 6), 4
        V = rng.uniform(0, 5, (N, K)) * rng.uniform(0.1, 3, (N, 1))
        C = rng.uniform(0, 200, (F, K))
        bm = rng.uniform(size=(N, K)) > 0.3
        sm = np.ones((F, K), bool)
        a = float(rng.uniform(0, 0.5))
        s = np.concatenate([np.where(bm, V, 0).max(-1) / (1 + a), C.max(-1)])
        ref = np.sort(s[s > 0])[(np.sum(s > 0) - 1) // 2] / max(V.max(), C.max())
        for scale in (1e-6, 1.0, 1e6):
            with jax.enable_x64(True):
                Vs, Cs = jnp.asarray(V * scale), jnp.asarray(C * scale)
                vs, _ = normalisation(jnp.ones((N, K, 2)), Vs, jnp.ones((F, K, 2)), Cs)
                got = float(typical_agent_scale(Vs, jnp.asarray(bm), Cs, jnp.asarray(sm),
                                                jnp.asarray(a), vs))
                assert got == pytest.approx(max(ref, 1e-3), rel=1e-12), (trial, scale)
                # ten padded buyers (only the empty option, worth 0) leave it unchanged
                Vp = jnp.concatenate([Vs, jnp.zeros((10, K))])
                bp = jnp.concatenate([jnp.asarray(bm), jnp.zeros((10, K), bool).at[:, 0].set(True)])
                assert float(typical_agent_scale(Vp, bp, Cs, jnp.asarray(sm), jnp.asarray(a),
                                                 vs)) == got


def test_large_sellers_keep_the_restricted_lp_small(monkeypatch):
    """1,000 buyers and 10 sellers whose costs are ~10x the buyers' values (they supply the
    whole market): the exact finish's restricted LP holds few buyers (the candidate
    windows and the smoothing are measured per agent, not by the largest seller; with
    windows relative to the economy's largest value a third of the buyers were
    candidates) and one round certifies it; the answer is the LP oracle's optimum, at money
    scales 1e-6 and 1e6 too (the same number of candidates)."""
    from jaxwalras import exact_finish as ef
    calls = []
    orig = ef.solve_menu_lp_blocks

    def spy(sub, *args):
        calls.append(int((sub.bm.sum(-1) > 1).sum()))
        return orig(sub, *args)

    monkeypatch.setattr(ef, "solve_menu_lp_blocks", spy)
    eco = jw.examples.random_menu_economy(1000, 10, 8, 8, 5, seed=3)
    assert eco.seller_costs.max() > 8 * eco.buyer_values.max()
    opt = oracle_lp(eco)
    counts = []
    for scale in (1.0, 1e-6, 1e6):
        calls.clear()
        e = MenuEconomy(eco.buyer_bundles, eco.buyer_values * scale, eco.seller_bundles,
                        eco.seller_costs * scale)
        r = jw.convexified_equilibrium(e, backend="host")
        assert bool(r.converged) and int(r.status) == 0
        assert float(r.primal_value) == pytest.approx(opt * scale, rel=1e-9)
        assert len(calls) == 1 and calls[0] <= 100, calls
        counts.append(calls[0])
    assert counts[1] == counts[0] == counts[2]


def test_newton_prices_converge_with_many_goods():
    """30 goods: the float32 Newton solve alone (``exact=False``) prices every economy
    within 1e-3 of the LP oracle's optimum, g(p) >= g*, at money scales 1e-6, 1 and 1e6
    and with the three scales mixed in one batch. (With the crossing prices clipped after
    one solve, the iteration stalled 8-15% above the optimum here.)"""
    from jaxwalras.kernels.smoothed_dual import newton_steps
    eco = jw.examples.random_menu_economy(100, 10, 8, 8, 30, seed=1, batch_shape=(3,))
    opt = np.array([oracle_lp(eco[b]) for b in range(3)])
    assert newton_steps(30) == 2 and newton_steps(16) == 1 and newton_steps(100) == 3
    scales = np.array([1e-6, 1.0, 1e6])

    def scaled(s):
        return MenuEconomy(eco.buyer_bundles, eco.buyer_values * s[:, None, None],
                           eco.seller_bundles, eco.seller_costs * s[:, None, None])

    for s in [np.full(3, x) for x in scales] + [scales]:
        e = scaled(s)
        r = jw.convexified_equilibrium(e, exact=False)
        assert np.all(r.iterations <= 11 * 2 * newton_steps(30)), r.iterations
        g = np.array([oracle_dual(e[b], r.prices[b]) for b in range(3)])
        excess = (g - opt * s) / np.abs(opt * s)
        assert np.all(excess >= -1e-9) and np.all(excess <= 1e-3), (s, excess)
