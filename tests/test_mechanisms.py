"""Markup and rationing mechanisms checked against their definitions, the paper's Table 1,
brute-force oracles and the bound-form welfare theorem."""
from __future__ import annotations

import itertools
import json

import jax
import numpy as np
import pytest

import jaxwalras as jw
from jaxwalras.examples.milgrom_watt import TABLE1_QUANTITIES as Q, TABLE1_VALUES as VV
from jaxwalras.kernels.single_good import single_good_min_markup

from test_welfare import brute_force_optimum, tiny_economy


# ------------------------------------------------------------------ definition checker
def check_markup_outcome(eco, mk, tol=1e-7):
    """(alpha, p, omega) is a markup outcome: sets, feasibility, no budget deficit."""
    X, V, Y, C = (np.asarray(getattr(eco, f)) for f in
                  ("buyer_bundles", "buyer_values", "seller_bundles", "seller_costs"))
    bm, sm = np.asarray(eco.buyer_mask), np.asarray(eco.seller_mask)
    a, p = float(mk.markup), np.asarray(mk.prices)
    assert a >= 0 and np.all(p >= 0)
    np.testing.assert_allclose(mk.buyer_prices, (1 + a) * p, rtol=1e-12)
    x = np.zeros(X.shape[-1])
    y = np.zeros(X.shape[-1])
    for n in range(X.shape[0]):
        k = int(mk.buyer_choice[n])
        assert bm[n, k]
        best = max(V[n, j] - (1 + a) * p @ X[n, j] for j in range(X.shape[1]) if bm[n, j])
        assert best - (V[n, k] - (1 + a) * p @ X[n, k]) <= tol, f"buyer {n} not in demand set"
        x += X[n, k]
    for f in range(Y.shape[0]):
        k = int(mk.seller_choice[f])
        assert sm[f, k]
        best = max(p @ Y[f, j] - C[f, j] for j in range(Y.shape[1]) if sm[f, j])
        assert best - (p @ Y[f, k] - C[f, k]) <= tol, f"seller {f} not in supply set"
        y += Y[f, k]
    assert np.all(y - x >= -1e-9), "production does not cover consumption"
    assert (1 + a) * p @ x - p @ y >= -1e-9, "budget deficit"
    np.testing.assert_allclose(mk.excess_supply, y - x, atol=1e-9)


# ------------------------------------------------------------------ Table 1
def test_table1_has_no_walrasian_equilibrium():
    # supply set: 0 below 0.5, anything at 0.5, 6 units above; demand: buyers with v > p
    for p in sorted(set(np.linspace(0, 1.2, 241)) | set(VV) | {0.5}):
        demand_opts = {0.0}
        must = Q[VV > p].sum()
        tied = Q[VV == p]
        sums = {must + sum(s) for r in range(len(tied) + 1) for s in itertools.combinations(tied, r)}
        supply = {0.0} if p < 0.5 else (set(range(7)) if p == 0.5 else {6.0})
        clears = any(abs(d - s) < 1e-9 for d in sums for s in supply)
        zero_price_excess = p == 0 and any(s >= d for d in sums for s in supply)
        assert not (clears or zero_price_excess), f"Walrasian at p={p}"
        del demand_opts


def test_table1_markup_outcome_matches_paper():
    eco = jw.examples.milgrom_watt_table1()
    mk = jw.markup_mechanism(eco)
    check_markup_outcome(eco, mk)
    assert float(mk.prices[0]) == pytest.approx(0.5)
    assert int(mk.seller_choice[0]) == 4                          # 4 units produced
    assert mk.buyer_choice.tolist() == [1] * 6 + [0] * 4           # buyers 1-6 served
    assert float(mk.buyer_prices[0]) == pytest.approx(0.63, abs=0.002)
    assert float(mk.markup) == pytest.approx(4 / 3.18 - 1, abs=1e-12)
    assert bool(mk.certified_minimal) and bool(mk.converged)
    s_star = 0.7221                                              # subset enumeration, test_welfare
    assert s_star - float(mk.welfare) <= float(mk.welfare_bound) + 1e-12
    opt = jw.efficient_allocation(eco)
    assert float(opt.welfare) - float(mk.welfare) <= float(mk.welfare_bound) + 1e-12


def test_table1_generic_grid_path_agrees_with_exact():
    eco = jw.examples.milgrom_watt_table1()
    mk = jw.markup_mechanism(eco, backend="host", method="grid")
    check_markup_outcome(eco, mk)
    exact = 4 / 3.18 - 1
    assert exact - 1e-12 <= float(mk.markup) <= exact * 1.01
    assert not bool(mk.certified_minimal)


def test_table1_rationing():
    eco = jw.examples.milgrom_watt_table1()
    ra = jw.rationing_mechanism(eco, backend="host")
    assert bool(ra.converged)
    assert float(ra.prices[0]) == pytest.approx(0.5)
    assert int(ra.seller_choice[0]) == 3
    assert ra.buyer_allocation[:, 0].sum() == pytest.approx(3.0)
    assert abs(float(ra.budget_surplus)) <= 1e-12
    # only the marginal buyer 6 is rationed (0.18 of 0.5 units short at 0.13 per unit)
    assert ra.buyer_losses[5] == pytest.approx(0.18 * 0.13)
    assert np.allclose(np.delete(ra.buyer_losses, 5), 0)
    opt = jw.efficient_allocation(eco, convex_buyers=True)
    assert float(opt.welfare) - float(ra.welfare) <= float(ra.welfare_bound) + 1e-12


# ------------------------------------------------------------------ exact single good
def brute_min_markup(v, q, c, K):
    """Least markup by enumerating (served set S, output Y), each a small linear problem."""
    N = len(v)
    best = np.inf
    for S in itertools.product([0, 1], repeat=N):
        S = np.array(S, bool)
        X = q[S].sum()
        lo = v[~S].max(initial=-np.inf)                 # beta >= every unserved value
        hi = v[S].min(initial=np.inf)                   # beta <= every served value
        for Y in range(K + 1):
            if Y < X - 1e-12:
                continue
            if Y == 0:            # p <= c; best p = c
                t = max(lo / c, 1.0)
                if t * c <= hi:
                    best = min(best, t - 1)
            elif Y < K:          # p = c
                t = max(lo / c, Y / X if X > 0 else np.inf, 1.0)
                if t * c <= hi:
                    best = min(best, t - 1)
            else:                # p >= c, any large p allowed
                t = max(Y / X if X > 0 else np.inf, 1.0)
                if t * c <= hi:
                    best = min(best, t - 1)
    return best


@pytest.mark.parametrize("seed", range(6))
def test_single_good_scan_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    N = 7
    v = rng.uniform(0, 1, N).round(3)
    q = rng.uniform(0.05, 1, N).round(2)
    c = 0.5
    K = int(np.floor(q.sum())) + 1 + int(seed % 2)
    eco = jw.MenuEconomy.single_good(q[:, None], (q * v)[:, None],
                                     np.arange(1, K + 1.0)[None], c * np.arange(1, K + 1.0)[None])
    mk = jw.markup_mechanism(eco)
    check_markup_outcome(eco, mk)
    assert float(mk.markup) == pytest.approx(brute_min_markup(v, q, c, K), abs=1e-9)
    assert bool(mk.certified_minimal) == (len(set(v)) == N)


def test_large_market_markup_falls_like_one_over_n():
    Ns = [1_000, 10_000, 100_000]
    med_a, med_loss = [], []
    for N in Ns:
        eco = jw.examples.large_single_good_market(jax.random.PRNGKey(1), N, batch_shape=(4,))
        mk = jw.markup_mechanism(eco)
        assert np.all(mk.converged) and np.all(mk.certified_minimal)
        v = eco.buyer_values[..., 1] / eco.buyer_bundles[..., 1, 0]
        q = eco.buyer_bundles[..., 1, 0]
        s_conv = np.sum(np.where(v > 0.5, q * (v - 0.5), 0.0), -1)   # convexified optimum >= S*
        med_a.append(np.median(mk.markup))
        med_loss.append(np.median((s_conv - mk.welfare) / s_conv))
        # the certificate is sound: S* <= s_conv, so S* - welfare <= s_conv - welfare; and
        # welfare_bound dominates the loss against the convexified optimum at p = c as well
        assert np.all(s_conv - mk.welfare <= mk.welfare_bound + 1e-9)
    slope_a = np.polyfit(np.log(Ns), np.log(med_a), 1)[0]
    slope_l = np.polyfit(np.log(Ns), np.log(med_loss), 1)[0]
    assert -1.4 < slope_a < -0.6, med_a
    assert -1.4 < slope_l < -0.6, med_loss


def _kernel_inputs(seed, B=3, N=9):
    rng = np.random.default_rng(seed)
    v = rng.uniform(0, 1, (B, N)).round(3)
    q = rng.uniform(0.05, 1, (B, N)).round(2)
    K = np.floor(q.sum(1)) + 1 + (seed % 2)
    return v, q, np.full(B, 0.5), np.ones(B), K


@pytest.mark.parametrize("seed", range(3))
def test_device_kernel_matches_numpy_scan_and_brute_force(seed):
    from jaxwalras.single_good import table1_scan_numpy as _single_good_scan_numpy
    v, q, c, u, K = _kernel_inputs(seed)
    with jax.enable_x64(True):
        out = [np.asarray(o) for o in single_good_min_markup(v, q, c, u, K)]
    ref = _single_good_scan_numpy(v, q, c, u, K)
    np.testing.assert_allclose(out[0], ref[0], atol=1e-12)          # alpha
    np.testing.assert_array_equal(out[5], ref[5])                  # buyers served
    for b in range(3):
        assert out[0][b] == pytest.approx(brute_min_markup(v[b], q[b], 0.5, int(K[b])), abs=1e-9)


def test_single_good_kernel_no_recompilation():
    v, q, c, u, K = _kernel_inputs(0)
    with jax.enable_x64(True):
        single_good_min_markup(v, q, c, u, K)
        n0 = single_good_min_markup._cache_size()
        for s in range(1, 4):
            single_good_min_markup(*_kernel_inputs(s))
        assert single_good_min_markup._cache_size() == n0


# ------------------------------------------------------------------ random economies
@pytest.fixture(scope="module")
def tiny_batch():
    ecos = [tiny_economy(s, N=4, F=2, K=3) for s in range(8)]
    return ecos, jw.MenuEconomy.stack(ecos)


@pytest.fixture(scope="module")
def tiny_markup(tiny_batch):
    return jw.markup_mechanism(tiny_batch[1], backend="host")


def test_random_markup_outcomes_satisfy_definition(tiny_batch, tiny_markup):
    ecos, _ = tiny_batch
    mk = tiny_markup
    assert mk.markup.shape == (8,) and mk.buyer_choice.shape == (8, 4)
    for i, e in enumerate(ecos):
        if bool(mk.converged[i]):
            check_markup_outcome(e, jax.tree_util.tree_map(lambda z: z[i], mk))
            s_star = brute_force_optimum(e)
            assert s_star - mk.welfare[i] <= mk.welfare_bound[i] + 1e-9
        else:
            assert mk.status[i] != 0
    assert mk.converged.mean() >= 0.5


def test_markup_batch_equals_per_item(tiny_batch, tiny_markup):
    ecos, _ = tiny_batch
    for i in (0, 3, 5):
        mi = jw.markup_mechanism(ecos[i], backend="host")
        assert float(mi.markup) == pytest.approx(tiny_markup.markup[i], abs=1e-12)
        np.testing.assert_array_equal(mi.buyer_choice, tiny_markup.buyer_choice[i])


def test_fixed_cost_economies_definitions():
    eco = jw.examples.fixed_cost_economy(11, n_buyers=8, n_sellers=2, n_goods=2, batch_shape=(6,))
    mk = jw.markup_mechanism(eco, backend="host")
    assert mk.converged.all()
    for i in range(6):
        check_markup_outcome(eco[i], jax.tree_util.tree_map(lambda z: z[i], mk))


def test_convex_economy_markup_is_zero():
    # unit-demand buyers and unit-supply sellers of one good: an assignment market, whose
    # convexified LP is totally unimodular, so a Walrasian equilibrium exists and alpha = 0
    rng = np.random.default_rng(4)
    N, F = 7, 5
    v = rng.uniform(0, 1, (3, N, 1)).round(3)
    c = rng.uniform(0, 1, (3, F, 1)).round(3)
    X = np.concatenate([np.zeros((3, N, 1, 1)), np.ones((3, N, 1, 1))], 2)
    Y = np.concatenate([np.zeros((3, F, 1, 1)), np.ones((3, F, 1, 1))], 2)
    eco = jw.MenuEconomy(X, np.concatenate([np.zeros((3, N, 1)), v], -1),
                         Y, np.concatenate([np.zeros((3, F, 1)), c], -1))
    mk = jw.markup_mechanism(eco, backend="host")
    assert np.all(mk.markup == 0) and mk.certified_minimal.all() and mk.converged.all()
    for i in range(3):
        check_markup_outcome(eco[i], jax.tree_util.tree_map(lambda z: z[i], mk))
        assert brute_force_optimum(eco[i]) == pytest.approx(mk.welfare[i], abs=1e-9)


def test_rationing_random_single_good(rng):
    # concave buyers (values concave in quantity), non-convex sellers (fixed costs)
    B, N, F, K = 4, 6, 2, 4
    qb = np.broadcast_to(np.arange(1.0, K + 1), (B, N, K))
    mv = np.sort(rng.uniform(0.2, 1.5, (B, N, K)), -1)[..., ::-1]
    vb = np.cumsum(mv, -1)                                   # concave values
    qs = np.broadcast_to(np.arange(2.0, 2 * K + 1, 2), (B, F, K))
    cs = rng.uniform(0.5, 2.0, (B, F, 1)) + qs * rng.uniform(0.3, 0.8, (B, F, 1))
    eco = jw.MenuEconomy.single_good(qb, vb, qs, cs)
    ra = jw.rationing_mechanism(eco, backend="host")
    assert ra.converged.all()
    for i in range(B):
        e = eco[i]
        y = sum(e.seller_bundles[f, ra.seller_choice[i, f]] for f in range(F))
        x = ra.buyer_allocation[i].sum(0)
        assert np.all(y - x >= -1e-9)                                      # feasible
        assert abs(float(ra.prices[i] @ (x - y))) <= 1e-9                   # budget balance
        p = ra.prices[i]
        prof = np.where(e.seller_mask, e.seller_bundles @ p - e.seller_costs, -np.inf)
        for f in range(F):
            assert prof[f].max() - prof[f, ra.seller_choice[i, f]] <= 1e-7  # supply sets
        opt = jw.efficient_allocation(e, convex_buyers=True)
        assert float(opt.welfare) - ra.welfare[i] <= ra.welfare_bound[i] + 1e-9


# ------------------------------------------------------------------ errors, JSON, CLI
def test_mechanism_input_errors():
    eco = jw.examples.milgrom_watt_table1()
    with pytest.raises(ValueError, match="reserve"):
        jw.markup_mechanism(eco, reserve="lots")
    with pytest.raises(ValueError, match="reserve"):
        jw.markup_mechanism(eco, reserve=-1.0, method="grid")
    with pytest.raises(ValueError, match="reserve"):
        jw.markup_mechanism(eco, reserve=[1.0, 2.0], method="grid")
    with pytest.raises(ValueError, match="backend"):
        jw.markup_mechanism(eco, backend="gpu")
    with pytest.raises(ValueError, match="method"):
        jw.markup_mechanism(eco, method="bisection")
    with pytest.raises(ValueError, match="method: 'scan'"):
        jw.markup_mechanism(jw.examples.random_menu_economy(), method="scan")
    with pytest.raises(ValueError, match="n_grid"):
        jw.markup_mechanism(eco, n_grid=1)
    with pytest.raises(ValueError, match="max_markup"):
        jw.markup_mechanism(eco, max_markup=-1.0)
    with pytest.raises(TypeError, match="MenuEconomy"):
        jw.markup_mechanism({"buyers": []})
    with pytest.raises(ValueError, match="backend"):
        jw.rationing_mechanism(eco, backend="x")
    with pytest.raises(ValueError, match="n_buyers"):
        jw.examples.large_single_good_market(0, 0)


def test_json_roundtrip_and_cli(tmp_path, capsys):
    from jaxwalras.cli import main
    eco = jw.examples.fixed_cost_economy(2, n_buyers=5, n_sellers=2)
    path = tmp_path / "e.json"
    jw.save_economy(eco, path)
    back = jw.load_economy(path)
    for f in ("buyer_bundles", "buyer_values", "seller_bundles", "seller_costs"):
        np.testing.assert_allclose(getattr(back, f)[np.asarray(back.buyer_mask if "buyer" in f else back.seller_mask)],
                                   getattr(eco, f)[np.asarray(eco.buyer_mask if "buyer" in f else eco.seller_mask)])
    assert main(["markup", str(path)]) == 0
    assert "markup alpha" in capsys.readouterr().out
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"buyers": [{"options": [{"bundle": [-1], "value": 1}]}],
                               "sellers": [{"options": [{"bundle": [1], "cost": 1}]}]}))
    assert main(["markup", str(bad)]) == 2
    assert "buyers[0].options[0].bundle[0]: must be >= 0, got -1" in capsys.readouterr().err
    (tmp_path / "x.json").write_text("{not json")
    assert main(["markup", str(tmp_path / "x.json")]) == 2


def test_shipped_table1_json():
    import pathlib
    path = pathlib.Path(jw.__file__).parent / "examples" / "data" / "table1.json"
    mk = jw.markup_mechanism(jw.load_economy(path))
    assert int(mk.seller_choice[0]) == 4 and bool(mk.certified_minimal)


def test_demo_prints_table1_outcomes():
    from jaxwalras.demo import demo_mechanisms
    lines = []
    demo_mechanisms(print_fn=lines.append)
    text = "\n".join(lines)
    assert "| markup (alpha=0.2579) | 0.500 | 0.6289 | 4 | 1,2,3,4,5,6 |" in text
    assert "0.7221" in text and "rationing" in text


def test_rationing_reserve_modes_and_batch_shape():
    eco = jw.MenuEconomy.stack([jw.examples.milgrom_watt_table1()] * 2)
    for reserve in ("none", "worst_case", [[0.5], [0.0]]):
        ra = jw.rationing_mechanism(eco, reserve=reserve, backend="host")
        assert ra.prices.shape == (2, 1) and ra.buyer_allocation.shape == (2, 10, 1)
        assert ra.converged.all()
        assert np.all(ra.excess_supply >= -1e-9)
    with pytest.raises(ValueError, match="reserve"):
        jw.rationing_mechanism(eco, reserve=[1.0, 2.0, 3.0], backend="host")


def test_device_method_outcomes_satisfy_definition():
    eco = jw.examples.fixed_cost_economy(21, n_buyers=6, n_sellers=2, n_goods=2, batch_shape=(4,))
    mk = jw.markup_mechanism(eco, backend="device")
    ml = jw.markup_mechanism(eco, backend="host")
    assert mk.converged.all()
    for i in range(4):
        check_markup_outcome(eco[i], jax.tree_util.tree_map(lambda z: z[i], mk))
    # same LP optimum, same search: the markups agree up to the search bracket
    np.testing.assert_allclose(mk.markup, ml.markup, rtol=0.02, atol=1e-9)


from hypothesis import given, settings, strategies as st  # noqa: E402

from _hyp import examples


@settings(max_examples=examples(20))
@given(v=st.lists(st.integers(1, 100), min_size=1, max_size=7),
       qs=st.lists(st.integers(1, 20), min_size=7, max_size=7),
       extra=st.integers(1, 3), cost=st.sampled_from([0.25, 0.5, 0.7]))
def test_exact_single_good_path_property(v, qs, extra, cost):
    v = np.array(v) / 100.0
    q = np.array(qs[:len(v)]) / 10.0
    K = int(np.floor(q.sum())) + extra
    eco = jw.MenuEconomy.single_good(q[:, None], (q * v)[:, None], np.arange(1, K + 1.0)[None],
                                     cost * np.arange(1, K + 1.0)[None])
    mk = jw.markup_mechanism(eco)
    assert bool(mk.converged)
    check_markup_outcome(eco, mk)
    brute = brute_min_markup(v, q, cost, K)
    assert float(mk.markup) >= brute - 1e-9                # never below the optimum
    if bool(mk.certified_minimal):                         # the certificate is sound
        assert float(mk.markup) == pytest.approx(brute, abs=1e-9)
    if len(set(v.tolist())) == len(v):                     # no ties: exact and certified
        assert bool(mk.certified_minimal)


def test_two_batch_axes_keep_their_shape():
    t1 = jw.examples.milgrom_watt_table1()
    eco = jw.MenuEconomy.stack([t1] * 4).reshape_batch((2, 2))
    mk = jw.markup_mechanism(eco)
    assert mk.markup.shape == (2, 2) and mk.buyer_choice.shape == (2, 2, 10)
    assert mk.prices.shape == (2, 2, 1) and np.allclose(mk.markup, 4 / 3.18 - 1)
    mg = jw.markup_mechanism(eco[:1], backend="host", method="grid")
    assert mg.markup.shape == (1, 2) and mg.converged.all()


def test_accelerator_and_cpu_paths_agree():
    # on a GPU markup_mechanism runs the jitted kernel; on CPU the numpy twin: same outcome
    from jaxwalras import single_good
    eco = jw.examples.large_single_good_market(jax.random.PRNGKey(9), 2000, batch_shape=(3,))
    arrs = eco.host_arrays()
    struct = single_good.table1_structure(arrs)
    assert struct is not None
    a = single_good.table1_markup(arrs, struct, backend="gpu")
    b = single_good.table1_markup(arrs, struct, backend="cpu")
    np.testing.assert_allclose(a[0], b[0], rtol=1e-9, atol=1e-12)   # cumsum order differs
    for x, y in zip(a[1:], b[1:]):
        np.testing.assert_array_equal(x, y)


# ------------------------------------------------------------------ device LP kernels
def highs_convexified(X, V, bm, Y, C, sm, a, R):
    """The convexified LP written out for scipy's HiGHS: (optimal value or None)."""
    from scipy.optimize import linprog
    N, Kb, L = X.shape
    F, Ks = C.shape
    nb = N * Kb
    c = np.concatenate([-(V / (1 + a)).ravel(), C.ravel()])
    A_ub = np.concatenate([X.reshape(nb, L), -Y.reshape(F * Ks, L)]).T
    A_eq = np.zeros((N + F, nb + F * Ks))
    for n in range(N):
        A_eq[n, n * Kb:(n + 1) * Kb] = 1
    for f in range(F):
        A_eq[N + f, nb + f * Ks:nb + (f + 1) * Ks] = 1
    ub = np.concatenate([np.where(bm, 1.0, 0.0).ravel(), np.where(sm, 1.0, 0.0).ravel()])
    res = linprog(c, A_ub=A_ub, b_ub=-R, A_eq=A_eq, b_eq=np.ones(N + F),
                  bounds=list(zip(np.zeros_like(ub), ub)), method="highs")
    return -res.fun if res.status == 0 else None


def dual_g(X, V, bm, Y, C, sm, a, R, p):
    u = np.where(bm, V / (1 + a) - X @ p, -np.inf).max(-1).sum()
    w = np.where(sm, Y @ p - C, -np.inf).max(-1).sum()
    return u + w - p @ R


def _simplex_cases():
    cases = []
    e1 = jw.examples.fixed_cost_economy(5, n_buyers=8, n_sellers=3, n_goods=2, batch_shape=(6,))
    e2 = jw.examples.random_menu_economy(6, 4, 3, 3, 3, seed=2, integer=True, batch_shape=(6,))
    e3 = jw.MenuEconomy.stack([tiny_economy(s, N=3 + s % 3, F=2, K=2 + s % 3) for s in range(6)])
    for eco in (e1, e2, e3):                      # e3: padded agents and masked options
        cases.append(eco.to_numpy())
    return cases


@pytest.mark.parametrize("case", range(3))
def test_device_simplex_is_the_lp_optimum(case):
    from jaxwalras.kernels.simplex import convexified_lp_simplex
    eco = _simplex_cases()[case]
    X, V, Y, C = (np.asarray(getattr(eco, f), float) for f in
                  ("buyer_bundles", "buyer_values", "seller_bundles", "seller_costs"))
    bm, sm = np.asarray(eco.buyer_mask), np.asarray(eco.seller_mask)
    B, L = X.shape[0], X.shape[-1]
    rng = np.random.default_rng(case)
    a = rng.choice([0.0, 0.05, 0.3, 1.5], B)
    R = rng.uniform(0, 1.5, (B, L)) * (np.arange(B) % 2)[:, None]
    R[-1] = 1e3                                    # above capacity: infeasible
    with jax.enable_x64(True):
        p, lam, mu, st, it = (np.asarray(z) for z in jax.jit(jax.vmap(convexified_lp_simplex))(
            X, V, bm, Y, C, sm, a, R))
    for b in range(B):
        ref = highs_convexified(X[b], V[b], bm[b], Y[b], C[b], sm[b], a[b], R[b])
        if ref is None:
            assert st[b] == 1, "infeasible LP not detected"
            continue
        assert st[b] == 0
        primal = (lam[b] * V[b]).sum() / (1 + a[b]) - (mu[b] * C[b]).sum()
        assert primal == pytest.approx(ref, abs=1e-9)
        # the prices are dual optimal: g(p) equals the LP optimum
        assert dual_g(X[b], V[b], bm[b], Y[b], C[b], sm[b], a[b], R[b], p[b]) == pytest.approx(ref, abs=1e-9)
        # a feasible vertex: simplex weights, supply covers demand + reserve, <= L mixing
        assert np.allclose(lam[b].sum(-1), 1) and np.allclose(mu[b].sum(-1), 1)
        assert np.all(lam[b][~bm[b]] == 0) and np.all(mu[b][~sm[b]] == 0)
        assert np.all(np.einsum("fk,fkl->l", mu[b], Y[b]) - np.einsum("nk,nkl->l", lam[b], X[b])
                      - R[b] >= -1e-9)
        mixing = ((lam[b] > 1e-9).sum(-1) > 1).sum() + ((mu[b] > 1e-9).sum(-1) > 1).sum()
        assert mixing <= L


def test_max_budget_prices_matches_highs():
    from scipy.optimize import linprog
    from jaxwalras.kernels.simplex import max_budget_prices
    rng = np.random.default_rng(3)
    eco = jw.examples.fixed_cost_economy(8, n_buyers=6, n_sellers=3, n_goods=2, batch_shape=(12,))
    X, V, Y, C = (np.asarray(getattr(eco, f), float) for f in
                  ("buyer_bundles", "buyer_values", "seller_bundles", "seller_costs"))
    bm, sm = np.asarray(eco.buyer_mask), np.asarray(eco.seller_mask)
    B, N, Kb, L = X.shape
    F, Ks = C.shape[1:]
    n_checked = 0
    kernel = jax.jit(max_budget_prices)
    for b in range(B):
        a = float(rng.choice([0.0, 0.2, 0.7]))
        if b % 3:    # an allocation that some prices support: best responses to random prices
            pr = rng.uniform(0.3, 1.5, L)
            cb = np.argmax(np.where(bm[b], V[b] - (1 + a) * X[b] @ pr, -np.inf), -1)
            cs = np.argmax(np.where(sm[b], Y[b] @ pr - C[b], -np.inf), -1)
        else:        # an arbitrary allocation: usually no prices support it
            cb, cs = rng.integers(0, Kb, N), rng.integers(0, Ks, F)
        Xh, Vh = X[b, np.arange(N), cb], V[b, np.arange(N), cb]
        Yh, Ch = Y[b, np.arange(F), cs], C[b, np.arange(F), cs]
        x, y = Xh.sum(0), Yh.sum(0)
        pmax = 50.0
        # the LP written out: buyers keep cb at (1+a)p, sellers keep cs at p, max budget
        G = np.concatenate([((1 + a) * (Xh[:, None] - X[b])).reshape(-1, L),
                            (Y[b] - Yh[:, None]).reshape(-1, L)])
        h = np.concatenate([(Vh[:, None] - V[b]).ravel(), (C[b] - Ch[:, None]).ravel()]) + 1e-10
        res = linprog(-((1 + a) * x - y), A_ub=G, b_ub=h, bounds=[(0, pmax)] * L, method="highs")
        with jax.enable_x64(True):
            p, st = (np.asarray(z) for z in kernel(
                Xh[:, None] - X[b], Vh[:, None] - V[b], bm[b], Y[b] - Yh[:, None],
                C[b] - Ch[:, None], sm[b], x, y, a, pmax))
        if res.status == 2:
            assert st == 1
            continue
        assert st == 0
        n_checked += 1
        assert np.all(G @ p <= h + 1e-9) and np.all(p >= 0) and np.all(p <= pmax + 1e-12)
        assert ((1 + a) * x - y) @ p == pytest.approx(-res.fun, abs=1e-9)
    assert n_checked >= 6


def test_repricing_only_adds_valid_outcomes():
    from jaxwalras import markup_grid as M
    eco = jw.examples.fixed_cost_economy(0, n_buyers=8, n_sellers=3, n_goods=2, batch_shape=(16,))
    D = M._prepare(eco.host_arrays())
    grid = np.array([0.02, 0.05, 0.1, 0.15, 0.3])
    idx, a = np.tile(np.arange(16), grid.size), np.repeat(grid, 16)
    R = np.zeros((16, 2))
    plain = M._evaluate(D, idx, a, R, "device", 4096, {}, reprice=False)
    full = M._evaluate(D, idx, a, R, "device", 4096, {})
    assert np.all(full.ok >= plain.ok)                  # re-pricing never loses an outcome
    gained = np.nonzero(full.ok & ~plain.ok)[0]
    assert gained.size > 0                               # ... and finds new ones here
    for i in gained:
        out = jw.MarkupResult(*(None,) * len(jw.MarkupResult._fields))._replace(
            markup=a[i], prices=full.p[i], buyer_prices=(1 + a[i]) * full.p[i],
            buyer_choice=full.cb[i], seller_choice=full.cs[i],
            excess_supply=full.exc[i])
        check_markup_outcome(eco[idx[i]], out)


def test_device_and_highs_markups_agree_exactly():
    # same search, rounding and re-pricing; the answers do not depend on which optimal
    # dual prices the LP solver returns
    eco = jw.examples.fixed_cost_economy(31, n_buyers=8, n_sellers=3, n_goods=2, batch_shape=(12,))
    md = jw.markup_mechanism(eco, backend="device")
    ml = jw.markup_mechanism(eco, backend="host")
    assert md.converged.all() and ml.converged.all()
    np.testing.assert_allclose(md.markup, ml.markup, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(md.certified_minimal, ml.certified_minimal)
    for i in range(12):
        check_markup_outcome(eco[i], jax.tree_util.tree_map(lambda z: z[i], md))


def test_device_path_reports_infeasible_lp():
    # reserve above every seller's capacity: the convexified LP has no feasible point
    eco = jw.examples.fixed_cost_economy(4, n_buyers=4, n_sellers=2, n_goods=2, batch_shape=(3,))
    for backend in ("device", "host"):
        mk = jw.markup_mechanism(eco, reserve=1e3, backend=backend)
        assert np.all(mk.status == jw.Status.INFEASIBLE) and not mk.converged.any()


def test_markup_search_does_not_recompile():
    # every device call is padded to one of M._CHUNKS sizes: at most that many compiled
    # shapes per kernel and economy shape, whatever the data, grid or refinement
    from jaxwalras import markup_grid as M
    ecos = [jw.examples.fixed_cost_economy(s, n_buyers=5, n_sellers=2, n_goods=2,
                                           batch_shape=(b,)) for s, b in
            ((40, 8), (41, 3), (42, 20), (43, 1), (44, 8))]
    for e in ecos:
        jw.markup_mechanism(e)
    fns = [M._simplex_batch, M._polish_batch]
    sizes = [f._cache_size() for f in fns]
    for e in ecos:
        jw.markup_mechanism(e)
    assert [f._cache_size() for f in fns] == sizes


def test_uncertified_device_lps_fall_back_to_highs(monkeypatch):
    # cap the device simplex at 2 pivots: nothing is certified, HiGHS solves every LP,
    # and the mechanism's answer is the HiGHS path's
    from jaxwalras import markup_grid as M
    orig = M._simplex_batch
    monkeypatch.setattr(M, "_simplex_batch", lambda *a, max_iter: orig(*a, max_iter=2))
    eco = jw.examples.fixed_cost_economy(17, n_buyers=5, n_sellers=2, n_goods=2, batch_shape=(3,))
    md = jw.markup_mechanism(eco, backend="device")
    ml = jw.markup_mechanism(eco, backend="host")
    np.testing.assert_array_equal(md.markup, ml.markup)
    np.testing.assert_array_equal(md.converged, ml.converged)
