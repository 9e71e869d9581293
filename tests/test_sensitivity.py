"""Exact price sensitivities: ``jw.equilibrium_prices`` against central finite differences
of an independent HiGHS LP written here, under every JAX transformation; degenerate
points; bad input; and ``jw.buyer_optimal_prices`` for multi-unit markets."""
from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse as sp
from scipy.optimize import linprog

import jaxwalras as jw
from jaxwalras.economy import MenuEconomy


# ---------------------------------------------------------------- independent oracle
def lp_prices(X, V, bm, Y, C, sm, markup=0.0, reserve=0.0) -> np.ndarray:
    """Seller prices of the convexified LP: the duals of the goods rows of the LP
    ``max sum lam V/(1+a) - sum mu C`` s.t. simplices and ``sum X lam + R <= sum Y mu``,
    built densely here and solved by HiGHS' dual simplex through scipy."""
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
    ub = np.concatenate([bm.ravel(), sm.ravel()]).astype(float)
    res = linprog(c, A_ub=A_ub, b_ub=-R, A_eq=A_eq, b_eq=np.ones(N + F),
                  bounds=list(zip(np.zeros_like(ub), ub)), method="highs-ds")
    assert res.status == 0, res.message
    return -res.ineqlin.marginals


def arrays(eco):
    return [np.array(getattr(eco, k), dtype=float if "mask" not in k else bool)
            for k in ("buyer_bundles", "buyer_values", "buyer_mask", "seller_bundles",
                      "seller_costs", "seller_mask")]


def fd_jacobian(eco, which: str, markup=0.0, reserve=0.0, rel_h=1e-6):
    """Central finite differences of the oracle price w.r.t. one input, (L,) + shape."""
    X, V, bm, Y, C, sm = arrays(eco)
    ins = {"buyer_bundles": X, "buyer_values": V, "seller_bundles": Y, "seller_costs": C,
           "markup": np.array(float(markup)), "reserve": np.broadcast_to(
               np.asarray(reserve, float), (X.shape[-1],)).copy()}
    base = ins[which]
    scale = max(np.abs(V).max(), np.abs(C).max()) if which in ("buyer_values", "seller_costs") \
        else (1.0 if which == "markup" else max(X.max(), Y.max()))
    h = rel_h * scale
    L = X.shape[-1]
    J = np.zeros((L,) + base.shape)
    for idx in np.ndindex(base.shape):
        out = []
        for sgn in (1, -1):
            z = dict(ins)
            z[which] = base.copy()
            z[which][idx] += sgn * h
            out.append(lp_prices(z["buyer_bundles"], z["buyer_values"], bm, z["seller_bundles"],
                                 z["seller_costs"], sm, float(z["markup"]), z["reserve"]))
        J[(slice(None),) + idx] = (out[0] - out[1]) / (2 * h)
    return J


INPUTS = ("buyer_values", "seller_costs", "markup", "reserve", "buyer_bundles", "seller_bundles")


def jac_all(eco, markup=0.0, reserve=0.0, mode=jax.jacfwd, method="lp"):
    """Jacobians of jw.equilibrium_prices w.r.t. every real input at once (one trace)."""
    L = eco.n_goods
    args = (jnp.asarray(eco.buyer_values), jnp.asarray(eco.seller_costs), jnp.asarray(float(markup)),
            jnp.broadcast_to(jnp.asarray(reserve, float), (L,)), jnp.asarray(eco.buyer_bundles),
            jnp.asarray(eco.seller_bundles))

    def f(V, C, a, r, X, Y):
        e = eco.replace(buyer_values=V, seller_costs=C, buyer_bundles=X, seller_bundles=Y)
        return jw.equilibrium_prices(e, markup=a, reserve=r, method=method)

    out = mode(f, argnums=tuple(range(6)))(*args)
    return {k: np.asarray(j) for k, j in zip(INPUTS, out)}


def jac(eco, which: str, markup=0.0, reserve=0.0, mode=jax.jacfwd, method="lp"):
    return jac_all(eco, markup, reserve, mode, method)[which]


SHAPES = [(6, 2, 3, 3, 2, 1), (8, 3, 4, 3, 3, 4), (5, 2, 3, 4, 1, 3)]   # N, F, Kb, Ks, L, seed


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "N%d-F%d-L%d" % (s[0], s[1], s[4]))
@pytest.mark.parametrize("markup,reserve", [(0.0, 0.0), (0.15, 0.3)])
def test_jacobians_match_finite_differences_of_an_independent_lp(shape, markup, reserve):
    N, F, Kb, Ks, L, seed = shape
    eco = jw.examples.random_menu_economy(N, F, Kb, Ks, L, seed=seed)
    with jax.enable_x64(True):
        p, info = jw.equilibrium_prices(eco, markup=markup, reserve=reserve, info=True,
                                        method="lp")
        assert bool(info.converged) and not bool(info.degenerate)
        np.testing.assert_allclose(p, lp_prices(*arrays(eco), markup, reserve), rtol=1e-9,
                                   atol=1e-12)
        Js = jac_all(eco, markup, reserve)
        whichs = list(INPUTS) if markup == 0.0 else list(INPUTS[:4])
        for which in whichs:
            Jfd = fd_jacobian(eco, which, markup, reserve)
            np.testing.assert_allclose(Js[which], Jfd, atol=1e-5 * max(1.0, np.abs(Jfd).max()),
                                       err_msg=which)
        # some derivative is non-trivial (the test can fail), the reserve's is zero
        assert max(np.abs(Js["buyer_values"]).max(), np.abs(Js["seller_costs"]).max()) > 1e-3
        assert np.abs(Js["reserve"]).max() == 0.0


def test_every_transformation_agrees():
    eco = jw.examples.random_menu_economy(6, 2, 3, 3, 2, seed=1)
    with jax.enable_x64(True):
        V = jnp.asarray(eco.buyer_values)
        f = lambda v: jw.equilibrium_prices(eco.replace(buyer_values=v), markup=0.1,  # noqa: E731
                                            method="lp")
        Jf = np.asarray(jax.jacfwd(f)(V))
        np.testing.assert_allclose(jax.jacrev(f)(V), Jf, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(jax.jit(jax.jacfwd(f))(V), Jf, rtol=1e-12, atol=1e-14)
        g = jax.grad(lambda v: f(v) @ jnp.array([1.0, -2.0]))(V)
        np.testing.assert_allclose(g, Jf[0] - 2 * Jf[1], rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(jax.jit(f)(V), f(V), rtol=1e-15)
        # second derivatives exist (the price is locally rational in the data): compare
        # with finite differences of the first derivative
        h = 1e-5
        e = jnp.zeros_like(V).at[2, 1].set(1.0)
        H = jax.jacfwd(jax.jacfwd(lambda a: jw.equilibrium_prices(eco, markup=a, method="lp")))(0.1)
        d1 = lambda a: jax.jacfwd(lambda b: jw.equilibrium_prices(eco, markup=b, method="lp"))(a)  # noqa: E731
        np.testing.assert_allclose(H, (d1(0.1 + h) - d1(0.1 - h)) / (2 * h), rtol=1e-5, atol=1e-8)
        del e


def test_vmap_equals_the_per_economy_loop_and_batches():
    eco = jw.examples.random_menu_economy(6, 2, 3, 3, 2, seed=0, batch_shape=(5,))
    with jax.enable_x64(True):
        V = jnp.asarray(eco.buyer_values)
        one = lambda v, e: jw.equilibrium_prices(e.replace(buyer_values=v), method="lp")  # noqa: E731
        loop = np.stack([np.asarray(jax.jacfwd(one)(V[b], eco[b])) for b in range(5)])
        vm = jax.vmap(jax.jacfwd(one))(V, eco)
        np.testing.assert_allclose(vm, loop, rtol=1e-12, atol=1e-14)
        # under jit the callback runs in another thread (no scoped x64 there): float64 holds
        jvm = jax.jit(jax.vmap(jax.jacfwd(one)))(V, eco)
        np.testing.assert_allclose(jvm, loop, rtol=1e-12, atol=1e-14)
        pj = jax.jit(jax.vmap(one))(V, eco)
        assert pj.dtype == jnp.float64
        np.testing.assert_allclose(pj, [lp_prices(*arrays(eco[b])) for b in range(5)], rtol=1e-10)  # independent LP solves agree to rounding, not bitwise
        # the batched call (no vmap) gives the same prices; the markup grid broadcasts
        pb = jw.equilibrium_prices(eco, markup=jnp.array([[0.0], [0.2]]), method="lp")
        assert pb.shape == (2, 5, 2)
        for b in range(5):
            np.testing.assert_allclose(pb[1, b], lp_prices(*arrays(eco[b]), 0.2), rtol=1e-9)
        # vmap over markups, jacfwd inside
        da = jax.vmap(jax.jacfwd(lambda a: jw.equilibrium_prices(eco[0], markup=a, method="lp")))(
            jnp.array([0.0, 0.1, 0.2]))
        assert da.shape == (3, 2) and np.all(np.asarray(da) <= 0)


def test_contract_call_and_float32_default():
    eco = jw.examples.random_menu_economy(6, 2, 3, 3, 2, seed=2)
    v = jnp.asarray(eco.buyer_values, jnp.float32)
    p = jw.equilibrium_prices(eco.replace(buyer_values=v), markup=0.05, reserve=0.1)
    assert p.shape == (2,) and p.dtype == jnp.float32
    ref = lp_prices(*[np.asarray(z, float if z.dtype != bool else bool)
                      for z in [eco.buyer_bundles, v, eco.buyer_mask, eco.seller_bundles,
                                eco.seller_costs, eco.seller_mask]], 0.05, 0.1)
    np.testing.assert_allclose(p, ref, rtol=1e-6)
    Jv = jax.jacfwd(lambda v: jw.equilibrium_prices(eco.replace(buyer_values=v), markup=0.05,
                                                    reserve=0.1))(v)
    Jc = jax.jacfwd(lambda c: jw.equilibrium_prices(eco.replace(seller_costs=c), markup=0.05,
                                                    reserve=0.1))(jnp.asarray(eco.seller_costs))
    Ja = jax.jacfwd(lambda a: jw.equilibrium_prices(eco, markup=a, reserve=0.1))(0.05)
    Jr = jax.jacfwd(lambda r: jw.equilibrium_prices(eco, markup=0.05, reserve=r))(jnp.full(2, 0.1))
    np.testing.assert_allclose(Jv, fd_jacobian(eco, "buyer_values", 0.05, 0.1), atol=1e-4)
    np.testing.assert_allclose(Jc, fd_jacobian(eco, "seller_costs", 0.05, 0.1), atol=1e-4)
    np.testing.assert_allclose(Ja, fd_jacobian(eco, "markup", 0.05, 0.1), atol=1e-4)
    assert np.all(np.asarray(Jr) == 0)


def test_methods_agree_and_smoothed_path_runs():
    eco = jw.examples.random_menu_economy(8, 3, 4, 3, 3, seed=4, batch_shape=(3,))
    with jax.enable_x64(True):
        a = jw.equilibrium_prices(eco, markup=0.1, method="lp")
        b, info = jw.equilibrium_prices(eco, markup=0.1, method="smoothed", info=True)
        assert bool(info.converged.all())
        np.testing.assert_allclose(a, b, rtol=1e-9)
        ja = jac(eco[1], "seller_costs", 0.1, method="lp")
        jb = jac(eco[1], "seller_costs", 0.1, method="smoothed")
        np.testing.assert_allclose(ja, jb, rtol=1e-9, atol=1e-12)
    one = jw.examples.random_menu_economy(5, 2, 3, 4, 1, seed=3)
    with jax.enable_x64(True):
        np.testing.assert_allclose(jw.equilibrium_prices(one, method="envelope"),
                                   jw.equilibrium_prices(one, method="lp"), rtol=1e-10)


def test_money_scale_free():
    eco = jw.examples.random_menu_economy(6, 2, 3, 3, 2, seed=1)
    with jax.enable_x64(True):
        for s in (1e-6, 1e6):
            big = MenuEconomy(eco.buyer_bundles, eco.buyer_values * s, eco.seller_bundles,
                              eco.seller_costs * s)
            np.testing.assert_allclose(jw.equilibrium_prices(big, method="lp"),
                                       s * np.asarray(jw.equilibrium_prices(eco, method="lp")),
                                       rtol=1e-10)
            # dp/dV is dimensionless: unchanged
            np.testing.assert_allclose(jac(big, "buyer_values"), jac(eco, "buyer_values"),
                                       rtol=1e-9, atol=1e-12)
            # dp/dX scales like the prices
            np.testing.assert_allclose(jac(big, "buyer_bundles"), s * jac(eco, "buyer_bundles"),
                                       rtol=1e-9, atol=1e-12 * s)


# ---------------------------------------------------------------- degenerate points
def test_linear_seller_ties_are_flagged_and_the_common_shift_is_exact():
    eco = jw.examples.milgrom_watt_table1()    # a linear-cost seller: all outputs tie at 0.5
    with jax.enable_x64(True):
        p, info = jw.equilibrium_prices(eco, info=True)
        assert float(p[0]) == 0.5 and bool(info.degenerate) and bool(info.ties)
        with pytest.warns(jw.DegeneratePointWarning, match="info=True"):
            jw.equilibrium_prices(eco)
        # along a common change of the marginal cost (C_k = c k) the basis stays optimal:
        # the basis derivative is the two-sided derivative, 1
        C = np.asarray(eco.seller_costs)
        direction = np.asarray(eco.seller_bundles)[..., 0]            # dC_k = k
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _, jvp = jax.jvp(lambda c: jw.equilibrium_prices(eco.replace(seller_costs=c)),
                             (jnp.asarray(C),), (jnp.asarray(direction),))
        h = 1e-6
        X, V, bm, Y, _, sm = arrays(eco)
        fd = (lp_prices(X, V, bm, Y, C + h * direction, sm)
              - lp_prices(X, V, bm, Y, C - h * direction, sm)) / (2 * h)
        np.testing.assert_allclose(jvp, fd, rtol=1e-6)
        np.testing.assert_allclose(jvp, [1.0], rtol=1e-12)


def test_tied_buyers_and_primal_degeneracy_are_flagged():
    # two buyers with the same per-unit value 1.3 at the price: ties
    eco = jw.MenuEconomy.single_good([[1.0], [2.0], [1.0]], [[3.0], [2.6], [1.3]],
                                     [[1.0, 2.0], [1.0, 2.0]], [[1.0, 2.2], [1.5, 3.5]])
    with jax.enable_x64(True):
        p, info = jw.equilibrium_prices(eco, info=True)
        assert float(p[0]) == pytest.approx(1.3) and bool(info.ties) and bool(info.degenerate)
    # the market clears exactly at a vertex: a zero basic weight (primal degeneracy); the
    # reserve then moves the price (one-sided), which the basis derivative (0) cannot see
    eco2 = jw.MenuEconomy.single_good([[1.0], [2.0]], [[3.0], [2.6]],
                                      [[1.0, 2.0], [1.0, 2.0]], [[1.0, 2.2], [1.5, 3.5]])
    with jax.enable_x64(True):
        p2, info2 = jw.equilibrium_prices(eco2, markup=0.1, info=True)
        assert bool(info2.primal_degenerate) and bool(info2.degenerate)
        X, V, bm, Y, C, sm = arrays(eco2)
        up = lp_prices(X, V, bm, Y, C, sm, 0.1, 1e-4)
        assert abs(up[0] - float(p2[0])) > 1e-3        # a jump: not differentiable in R
        # a non-degenerate point of the same economy: no flag
        _, info3 = jw.equilibrium_prices(eco2, info=True)
        assert not bool(info3.degenerate)


def test_status_of_infeasible_and_invalid_traced_inputs():
    eco = jw.examples.random_menu_economy(5, 2, 3, 3, 2, seed=0)
    with jax.enable_x64(True):
        p, info = jw.equilibrium_prices(eco, reserve=1e6, info=True, method="lp")
        assert np.isnan(np.asarray(p)).all() and int(info.status) == jw.Status.INFEASIBLE
        assert not bool(info.converged)
        f = jax.jit(lambda a: jw.equilibrium_prices(eco, markup=a, info=True, method="lp"))
        p, info = f(-2.0)
        assert np.isnan(np.asarray(p)).all() and int(info.status) == jw.Status.SOLVER_FAILED
        p, info = f(0.0)
        assert bool(info.converged) and int(info.status) == 0


# ---------------------------------------------------------------- bad input
def test_bad_input_errors_name_the_argument():
    eco = jw.examples.random_menu_economy(5, 2, 3, 3, 2, seed=0)
    with pytest.raises(TypeError, match="buyer_mask: must be a boolean"):
        jax.jacfwd(lambda m: jw.equilibrium_prices(eco.replace(buyer_mask=m)))(
            jnp.asarray(eco.buyer_mask, float))
    with pytest.raises(TypeError, match="derivatives with respect"):
        jw.equilibrium_prices(eco.replace(seller_mask=np.asarray(eco.seller_mask, float)))
    with pytest.raises(TypeError, match="jacfwd requires real"):
        jax.jacfwd(lambda m: jw.equilibrium_prices(eco.replace(buyer_mask=m)))(
            jnp.asarray(eco.buyer_mask))
    with pytest.raises(ValueError, match="replace: buyer_values has shape"):
        eco.replace(buyer_values=np.zeros((5, 4)))
    bad = jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(eco), [
        eco.buyer_bundles, np.zeros((5, 4)), eco.seller_bundles, eco.seller_costs,
        eco.buyer_mask, eco.seller_mask])
    with pytest.raises(ValueError, match="buyer_values: trailing shape"):
        jw.equilibrium_prices(bad)
    with pytest.raises(ValueError, match="markup: must be finite and > -1"):
        jw.equilibrium_prices(eco, markup=-1.0)
    with pytest.raises(ValueError, match="reserve: last axis"):
        jw.equilibrium_prices(eco, reserve=np.zeros(3))
    with pytest.raises(ValueError, match="method: 'envelope'"):
        jw.equilibrium_prices(eco, method="envelope")
    with pytest.raises(ValueError, match="method: must be one of"):
        jw.equilibrium_prices(eco, method="simplex")
    with pytest.raises(ValueError, match="rtol"):
        jw.equilibrium_prices(eco, rtol=0)
    with pytest.raises(TypeError, match="economy: expected"):
        jw.equilibrium_prices(np.zeros(3))


def test_price_info_speaks_the_vocabulary():
    assert {"converged", "status", "iterations"} <= set(jw.PriceInfo._fields)
    assert {"converged", "status", "iterations"} <= set(jw.MultiUnitPriceInfo._fields)


# ---------------------------------------------------------------- multi-unit markets
def lp_least_prices(v, d, s):
    """Least Walrasian prices for real values: the Lyapunov LP, then min sum p on its
    optimal face (HiGHS through scipy, written here)."""
    n, m = v.shape
    k = np.arange(n * m)
    I, J = np.divmod(k, m)
    A = sp.csr_matrix((-np.ones(3 * n * m), (np.repeat(k, 3),
                                              np.stack([J, m + I, m + n + k], 1).ravel())),
                      shape=(n * m, m + n + n * m))
    c = np.concatenate([s, d, np.tile(s, n)]).astype(float)
    r1 = linprog(c, A_ub=A, b_ub=-v.ravel(), bounds=(0, None), method="highs-ds")
    A2 = sp.vstack([A, sp.csr_matrix(c[None, :])])
    r2 = linprog(np.concatenate([np.ones(m), np.zeros(n + n * m)]), A_ub=A2,
                 b_ub=np.concatenate([-v.ravel(), [r1.fun + 1e-12 * abs(r1.fun)]]),
                 bounds=(0, None), method="highs-ds", options={"primal_feasibility_tolerance": 1e-10})
    assert r2.status == 0
    return r2.x[:m]


def test_multiunit_prices_equal_the_auction_and_the_lp_on_integer_markets():
    rng = np.random.default_rng(7)
    B, n, m = 24, 5, 3
    mkt = jw.MultiUnitMarket(rng.integers(0, 20, (B, n, m)), rng.integers(0, 4, (B, n)),
                             rng.integers(0, 4, (B, m)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jw.DegeneratePointWarning)   # integer ties: kinks
        p, info = jw.buyer_optimal_prices(mkt, info=True)
    assert bool(info.converged.all())
    np.testing.assert_array_equal(p, jw.buyer_optimal_equilibrium(mkt).prices)
    v, d, s = (np.asarray(z) for z in (mkt.values, mkt.demands, mkt.supplies))
    for b in range(6):
        np.testing.assert_allclose(p[b], lp_least_prices(v[b].astype(float), d[b], s[b]),
                                   atol=1e-6)
    # textbook cases: p* = (4, 2), and the copy-method pitfall (0, 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jw.DegeneratePointWarning)
        assert jw.buyer_optimal_prices(jw.MultiUnitMarket([[4, 4], [5, 3]], [2, 1], [1, 1])
                                       ).tolist() == [4.0, 2.0]
        assert jw.buyer_optimal_prices(jw.MultiUnitMarket([[5, 3]], [2], [1, 1])).tolist() == [0, 0]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_multiunit_derivatives_match_finite_differences_of_the_lp(seed):
    rng = np.random.default_rng(seed)
    n, m = 5, 3
    d, s = rng.integers(1, 4, n), rng.integers(1, 3, m)   # scarce supply: positive prices
    mkt = jw.MultiUnitMarket(np.zeros((n, m), int), d, s)
    v = rng.uniform(1.0, 10.0, (n, m))
    with jax.enable_x64(True):
        p, info = jw.buyer_optimal_prices(mkt, jnp.asarray(v), info=True)
        assert bool(info.converged) and not bool(info.degenerate)
        np.testing.assert_allclose(p, lp_least_prices(v, d, s), atol=1e-6)
        J = np.asarray(jax.jacfwd(lambda z: jw.buyer_optimal_prices(mkt, z))(jnp.asarray(v)))
        Jr = np.asarray(jax.jacrev(lambda z: jw.buyer_optimal_prices(mkt, z))(jnp.asarray(v)))
    np.testing.assert_array_equal(J, Jr)
    h = 1e-3
    Jfd = np.zeros_like(J)
    for i, j in np.ndindex(n, m):
        e = np.zeros((n, m))
        e[i, j] = h
        Jfd[:, i, j] = (lp_least_prices(v + e, d, s) - lp_least_prices(v - e, d, s)) / (2 * h)
    np.testing.assert_allclose(J, Jfd, atol=1e-3)
    assert set(np.unique(J)) <= {-1.0, 0.0, 1.0} and np.abs(J).sum() > 0


def test_multiunit_vmap_ties_and_bad_input():
    mkt = jw.MultiUnitMarket([[10], [4]], demands=[2, 1], supplies=[2])
    vs = jnp.array([[[10.0], [4.5]], [[10.0], [7.0]], [[3.0], [7.0]]])
    out = jax.vmap(lambda v: jw.buyer_optimal_prices(mkt, v))(vs)
    assert np.asarray(out).ravel().tolist() == [4.5, 7.0, 3.0]
    with jax.enable_x64(True):
        v = jnp.array([[10.0], [4.123456789012]])
        out = jax.jit(jax.vmap(lambda v: jw.buyer_optimal_prices(mkt, v)))(v[None])
        assert out.dtype == jnp.float64 and float(out[0, 0]) == 4.123456789012
    # equal values: a kink, flagged
    _, info = jw.buyer_optimal_prices(jw.MultiUnitMarket([[5, 5]], [1], [1, 1]), info=True)
    assert bool(info.degenerate)
    with pytest.warns(jw.DegeneratePointWarning):
        jw.buyer_optimal_prices(jw.MultiUnitMarket([[5, 5]], [1], [1, 1]))
    with pytest.raises(TypeError, match="supplies: must be integers"):
        jax.jacfwd(lambda s: jw.buyer_optimal_prices(
            jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(mkt),
                                         [mkt.values, mkt.demands, s])))(jnp.array([2.0]))
    with pytest.raises(ValueError, match="values: trailing shape"):
        jw.buyer_optimal_prices(mkt, np.ones((3, 1)))
    with pytest.raises(ValueError, match="values: must be finite and >= 0"):
        jw.buyer_optimal_prices(mkt, -np.ones((2, 1)))
