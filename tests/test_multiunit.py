"""Multi-unit matching markets (Eickhoff et al., 2024): buyer-optimal Walrasian prices.

Oracles used here are independent of the implementation: the HiGHS LP of the Lyapunov function (docs/multiunit.md),
VCG payments via the Hungarian algorithm (b), brute-force enumeration of bundles, a
per-buyer LP for indirect utilities, and the plain numpy/networkx unit-step auction.
"""
from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import example, given, settings

from _hyp import examples
from hypothesis import strategies as st
from scipy.optimize import linear_sum_assignment, linprog

import jaxwalras as jw
from jaxwalras import auction_rounds as _rounds
from jaxwalras.flows import reference_unit_step_auction
from jaxwalras.kernels import greedy


# ----------------------------------------------------------------------------- helpers --

def random_market(rng, B, n, m, vmax, dmax, smax, smin=0, dmin=0):
    V = rng.integers(0, vmax + 1, (B, n, m))
    d = rng.integers(dmin, dmax + 1, (B, n))
    s = rng.integers(smin, smax + 1, (B, m))
    return jw.MultiUnitMarket(V, d, s)


def lp_prices(V, d, s):
    """The Lyapunov LP, written independently of jaxwalras.lp: min Lyapunov, then min sum p."""
    V = np.asarray(V, float)
    n, m = V.shape
    nv = m + n + n * m
    A = np.zeros((n * m, nv))
    for i in range(n):
        for j in range(m):
            r = i * m + j
            A[r, j] = A[r, m + i] = A[r, m + n + r] = -1
    c = np.concatenate([s, d, np.tile(s, n)]).astype(float)
    r1 = linprog(c, A_ub=A, b_ub=-V.ravel(), bounds=(0, None), method="highs")
    A2 = np.vstack([A, c])
    b2 = np.concatenate([-V.ravel(), [r1.fun + 1e-9 * max(1, abs(r1.fun))]])
    r2 = linprog(np.r_[np.ones(m), np.zeros(n + n * m)], A_ub=A2, b_ub=b2, bounds=(0, None),
                 method="highs")
    return np.round(r2.x[:m]).astype(int)


def best_utility_lp(v, d, s, p):
    """Buyer's problem max sum x (v - p), sum x <= d, 0 <= x <= s as an LP (integral)."""
    m = len(v)
    if m == 0 or d == 0:
        return 0
    r = linprog(-(v - p).astype(float), A_ub=np.ones((1, m)), b_ub=[d],
                bounds=list(zip([0] * m, s)), method="highs")
    return int(round(-r.fun))


def assert_walrasian_independent(V, d, s, p, x):
    """Walrasian conditions checked with the per-buyer LP (independent of jw.checks)."""
    V, d, s, p, x = map(np.asarray, (V, d, s, p, x))
    assert (p >= 0).all() and (x >= 0).all()
    assert (x.sum(0) <= s).all() and (x.sum(1) <= d).all()
    for i in range(V.shape[0]):
        assert int((x[i] * (V[i] - p)).sum()) == best_utility_lp(V[i], d[i], s, p)
    assert ((p == 0) | (x.sum(0) == s)).all()
    assert x.sum() == min(s.sum(), d.sum())


# ------------------------------------------------------- worked examples (docs) --

@pytest.mark.parametrize("V,d,s,expected", [
    ([[3, 4], [2, 1]], [1, 3], [1, 1], [0, 1]),      # arcs must have capacity s_j, not inf
    ([[4, 4], [5, 3]], [2, 1], [1, 1], [4, 2]),
    ([[5, 3]], [2], [1, 1], [0, 0]),                  # copy method would give (2, 0)
    ([[10], [4]], [2, 1], [2], [4]),                  # multi-unit p* need not be VCG
])
@pytest.mark.parametrize("step", ["long", "search", "unit"])
def test_design_examples(V, d, s, expected, step):
    mkt = jw.MultiUnitMarket(V, d, s)
    res = jw.buyer_optimal_equilibrium(mkt, step=step)
    assert res.prices.tolist() == expected
    assert res.converged and res.status == 0
    assert jw.check_walrasian(mkt, res.prices, res.allocation) == []
    assert_walrasian_independent(V, d, s, res.prices, res.allocation)
    assert lp_prices(np.array(V), np.array(d), np.array(s)).tolist() == expected


def test_copy_method_fails():
    """Splitting the d=2 buyer into two unit-demand copies gives the wrong prices (2, 0)."""
    copies = jw.MultiUnitMarket([[5, 3], [5, 3]], [1, 1], [1, 1])
    assert jw.buyer_optimal_equilibrium(copies).prices.tolist() == [2, 0]
    assert jw.buyer_optimal_equilibrium(jw.MultiUnitMarket([[5, 3]], [2], [1, 1])).prices.tolist() == [0, 0]


# -------------------------------------------------------------- random vs the LP --

@pytest.mark.parametrize("n,m,vmax,dmax,smax", [
    (3, 2, 5, 2, 2), (6, 4, 20, 3, 3), (10, 5, 100, 4, 5), (20, 8, 1000, 5, 10),
    (4, 12, 50, 6, 2), (15, 3, 10**5, 3, 4),
])
def test_random_markets_match_lp(n, m, vmax, dmax, smax):
    rng = np.random.default_rng(n * 1000 + m)
    mkt = random_market(rng, 12, n, m, vmax, dmax, smax)
    res = jw.buyer_optimal_equilibrium(mkt)
    V, d, s = mkt.host_arrays()
    assert res.converged.all()
    for b in range(12):
        assert res.prices[b].tolist() == lp_prices(V[b], d[b], s[b]).tolist()
        assert_walrasian_independent(V[b], d[b], s[b], res.prices[b], res.allocation[b])
    assert jw.check_walrasian(mkt, res.prices, res.allocation) == []
    np.testing.assert_array_equal(jw.lp_min_walrasian_prices(mkt), res.prices)


@settings(max_examples=examples(30), deadline=None)
@given(st.data())
def test_property_prices_equal_lp(data):
    n = data.draw(st.integers(0, 5))
    m = data.draw(st.integers(0, 4))
    arr = lambda shape, hi: np.array(data.draw(st.lists(st.integers(0, hi), min_size=int(np.prod(shape)),
                                                        max_size=int(np.prod(shape))))).reshape(shape)
    V, d, s = arr((n, m), data.draw(st.sampled_from([1, 3, 30]))), arr((n,), 3), arr((m,), 3)
    mkt = jw.MultiUnitMarket(V, d, s)
    res = jw.buyer_optimal_equilibrium(mkt)
    if m:
        assert res.prices.tolist() == (lp_prices(V, d, s).tolist() if n else [0] * m)
    assert_walrasian_independent(V, d, s, res.prices, res.allocation)


@pytest.mark.parametrize("n,m", [(4, 6), (6, 4), (5, 5)])
def test_unit_demand_unit_supply_equals_vcg(n, m):
    """Leonard (1983): with unit demand and supply, p* are the VCG payments."""
    rng = np.random.default_rng(7 + n)
    Vb = rng.integers(0, 50, (6, n, m))
    res = jw.buyer_optimal_equilibrium(jw.MultiUnitMarket(Vb, np.ones(n), np.ones(m)))
    for V, prices in zip(Vb, res.prices):
        def welfare(mask):
            W = np.where(mask[:, None], V, 0)
            r, c = linear_sum_assignment(W, maximize=True)
            return W[r, c].sum(), r, c

        W, rows, cols = welfare(np.ones(n, bool))
        vcg = np.zeros(m, int)
        for i, j in zip(rows, cols):
            if V[i, j] == 0:
                continue
            without = np.ones(n, bool)
            without[i] = False
            vcg[j] = welfare(without)[0] - (W - V[i, j])
        assert prices.tolist() == vcg.tolist()


def test_reference_unit_step_auction_agrees():
    rng = np.random.default_rng(3)
    mkt = random_market(rng, 8, 5, 4, 12, 3, 3)
    res = jw.buyer_optimal_equilibrium(mkt)
    V, d, s = mkt.host_arrays()
    for b in range(8):
        assert reference_unit_step_auction(V[b], d[b], s[b]).tolist() == res.prices[b].tolist()


# ---------------------------------------------------- variants give identical prices --

def test_steps_flows_backends_and_batching_agree():
    rng = np.random.default_rng(11)
    mkt = random_market(rng, 10, 7, 5, 40, 4, 4)
    ref = jw.buyer_optimal_equilibrium(mkt, step="unit", warm_start=False)
    for step in ("long", "search", "unit"):
        for warm in (True, False):
            for jumps in (True, False):
                r = jw.buyer_optimal_equilibrium(mkt, step=step, warm_start=warm, jumps=jumps)
                np.testing.assert_array_equal(r.prices, ref.prices)
                assert jw.check_walrasian(mkt, r.prices, r.allocation) == []
    for step in ("long", "unit"):          # the all-device auction (subset-enumeration cuts)
        for jumps in (True, False):
            r = jw.buyer_optimal_equilibrium(mkt, step=step, backend="device", jumps=jumps)
            np.testing.assert_array_equal(r.prices, ref.prices)
            assert jw.check_walrasian(mkt, r.prices, r.allocation) == []
            if step == "unit" and not jumps:
                np.testing.assert_array_equal(r.iterations, ref.iterations)
    nx_res = jw.buyer_optimal_equilibrium(mkt, backend="host", flow_solver="networkx")
    np.testing.assert_array_equal(nx_res.prices, ref.prices)
    assert jw.check_walrasian(mkt, nx_res.prices, nx_res.allocation) == []
    for b in range(10):   # per-market calls
        np.testing.assert_array_equal(jw.buyer_optimal_equilibrium(mkt[b]).prices, ref.prices[b])
    # unit steps from zero make exactly max_j p*_j raises (Murota, Shioura and Yang, 2016)
    np.testing.assert_array_equal(ref.iterations, ref.prices.max(-1))
    # long steps never take more raises than unit steps
    assert (jw.buyer_optimal_equilibrium(mkt).iterations <= ref.iterations).all()


def test_multi_axis_batch_shape():
    rng = np.random.default_rng(5)
    V = rng.integers(0, 30, (2, 3, 4, 3))
    d = rng.integers(0, 3, (2, 3, 4))
    s = rng.integers(0, 3, (3,))                       # broadcast over the batch
    mkt = jw.MultiUnitMarket(V, d, s)
    res = jw.buyer_optimal_equilibrium(mkt)
    assert res.prices.shape == (2, 3, 3) and res.allocation.shape == (2, 3, 4, 3)
    assert res.iterations.shape == (2, 3)
    assert jw.is_walrasian(mkt, res.prices, res.allocation).all()
    flat = mkt.reshape_batch((6,))
    np.testing.assert_array_equal(jw.buyer_optimal_equilibrium(flat).prices.reshape(2, 3, 3),
                                  res.prices)


def test_stack_markets_padding_changes_nothing():
    rng = np.random.default_rng(2)
    singles = [jw.MultiUnitMarket(rng.integers(0, 20, (n, m)), rng.integers(0, 4, n),
                                  rng.integers(0, 4, m))
               for n, m in [(3, 2), (5, 4), (1, 1), (4, 3)]]
    batch = jw.MultiUnitMarket.stack(singles)
    assert batch.batch_shape == (4,) and batch.n_buyers == 5 and batch.n_objects == 4
    res = jw.buyer_optimal_equilibrium(batch)
    for k, mk in enumerate(singles):
        single = jw.buyer_optimal_equilibrium(mk)
        np.testing.assert_array_equal(res.prices[k, :mk.n_objects], single.prices)
        assert (res.prices[k, mk.n_objects:] == 0).all()
        assert (res.allocation[k, mk.n_buyers:] == 0).all()


# ---------------------------------------------------------------------- monotonicity --

@settings(max_examples=examples(25), deadline=None)
@given(seed=st.integers(0, 10**6), which=st.sampled_from(["demand", "supply"]))
@example(seed=901, which="demand")   # warm start took more (long-step) raises than cold here
def test_monotonicity_and_warm_start(seed, which):
    """Seed 001, Theorem 14: p* weakly rises when a demand rises or a supply falls (from
    s_j >= 1); the old p* is then a valid start and gives the same answer."""
    rng = np.random.default_rng(seed)
    n, m = rng.integers(1, 6), rng.integers(1, 5)
    V = rng.integers(0, 25, (n, m))
    d = rng.integers(0, 4, n)
    s = rng.integers(1, 4, m)
    old = jw.MultiUnitMarket(V, d, s)
    p_old = jw.buyer_optimal_equilibrium(old).prices
    d2, s2 = d.copy(), s.copy()
    if which == "demand":
        d2[rng.integers(n)] += rng.integers(1, 3)
    else:
        s2[rng.integers(m)] -= 1
    new = jw.MultiUnitMarket(V, d2, s2)
    cold = jw.buyer_optimal_equilibrium(new)
    assert (cold.prices[s2 > 0] >= p_old[s2 > 0]).all()
    warm = jw.reoptimize(old, p_old, new)
    np.testing.assert_array_equal(warm.prices, cold.prices)
    assert jw.check_walrasian(new, warm.prices, warm.allocation) == []
    # The unit-step auction (no jumps) from p0 <= p* takes exactly ||p* - p0||_inf raises
    # (steepest descent of an L-natural-convex function, Murota), so the warm start never
    # needs more raises than the cold one. With long steps or jumps there is no such bound.
    unit = dict(step="unit", jumps=False)
    cold_u = jw.buyer_optimal_equilibrium(new, **unit)
    warm_u = jw.reoptimize(old, p_old, new, **unit)
    np.testing.assert_array_equal(warm_u.prices, cold.prices)
    assert warm_u.iterations == np.max(cold.prices - np.where(s2 == 0, 0, p_old), initial=0)
    assert cold_u.iterations == np.max(cold.prices, initial=0)
    assert (warm_u.iterations <= cold_u.iterations).all()


def test_reoptimize_rejects_wrong_direction():
    old = jw.MultiUnitMarket([[5, 3], [4, 4]], [2, 1], [1, 1])
    p = jw.buyer_optimal_equilibrium(old).prices
    with pytest.raises(ValueError, match="demand fell"):
        jw.reoptimize(old, p, jw.MultiUnitMarket([[5, 3], [4, 4]], [1, 1], [1, 1]))
    with pytest.raises(ValueError, match="supply rose"):
        jw.reoptimize(old, p, jw.MultiUnitMarket([[5, 3], [4, 4]], [2, 1], [2, 1]))
    with pytest.raises(ValueError, match="values differ"):
        jw.reoptimize(old, p, jw.MultiUnitMarket([[6, 3], [4, 4]], [2, 1], [1, 1]))


def test_start_above_pstar_is_repaired_or_flagged():
    mkt = jw.MultiUnitMarket([[10], [4]], [2, 1], [2])        # p* = 4
    res = jw.buyer_optimal_equilibrium(mkt, start=[20])       # competitive, no clearing
    assert res.prices.tolist() == [4] and res.converged
    rep = jw.buyer_optimal_equilibrium(mkt, start=[20], on_bad_start="report")
    assert rep.status == jw.Status.START_ABOVE_OPTIMUM and not rep.converged
    # start 5: Walrasian (buyer 0 takes both units) but not the least Walrasian price
    rep = jw.buyer_optimal_equilibrium(mkt, start=[5], on_bad_start="report")
    assert rep.prices.tolist() == [5] and rep.status == jw.Status.START_ABOVE_OPTIMUM
    assert jw.buyer_optimal_equilibrium(mkt, start=[5]).prices.tolist() == [4]


# --------------------------------------------------------------- kernel vs brute force --

# the kernels jitted once (an eager call of a while_loop kernel compiles it every time)
_jit_bundles = jax.jit(greedy.preferred_bundles)
_jit_forced = jax.jit(greedy.forced_units)
_jit_long_step = jax.jit(greedy.long_step)
_jit_own_demand = jax.jit(greedy.own_price_demand)
_jit_jumps = jax.jit(greedy.singleton_jumps)


def _all_bundles(d, s):
    for x in itertools.product(*[range(int(sj) + 1) for sj in s]):
        if sum(x) <= d:
            yield np.array(x)


@settings(max_examples=examples(40), deadline=None)
@given(seed=st.integers(0, 10**6))
def test_preferred_bundle_structure_brute_force(seed):
    """Every preferred bundle takes s_j on F, r units on M (case A) / up to d - s(F)
    zero-payoff units (case B), nothing else; and every such bundle is preferred."""
    rng = np.random.default_rng(seed)
    n, m = 3, rng.integers(1, 4)
    V = rng.integers(0, 6, (n, m))
    d = rng.integers(0, 4, n)
    s = rng.integers(0, 3, m)
    p = rng.integers(0, 6, m)
    b = jw.preferred_bundles(jw.MultiUnitMarket(V, d, s), p)
    for i in range(n):
        bundles = list(_all_bundles(d[i], s))
        utils = np.array([(x * (V[i] - p)).sum() for x in bundles])
        best = utils.max()
        assert int(b.utility[i]) == best
        F, M, r = np.asarray(b.strict[i]), np.asarray(b.marginal[i]), int(b.r[i])
        for x, u in zip(bundles, utils):
            shape_ok = (x[F] == s[F]).all() and (x[~F & ~M] == 0).all()
            if bool(b.case_a[i]):
                shape_ok &= x[M].sum() == r
            else:
                shape_ok &= x[M].sum() <= d[i] - s[F].sum() and (V[i] - p)[M].max(initial=0) == 0
            assert (u == best) == bool(shape_ok), (V[i], d[i], s, p, x)


def _min_units_brute(v, d, s, p, j):
    """Fewest units of object j in any utility-maximising bundle, by enumeration."""
    bundles = list(_all_bundles(d, s))
    utils = np.array([(x * (v - p)).sum() for x in bundles])
    return min(int(x[j]) for x, u in zip(bundles, utils) if u == utils.max())


@settings(max_examples=examples(30), deadline=None)
@given(seed=st.integers(0, 10**6))
def test_singleton_jumps_brute_force_and_below_pstar(seed):
    """own_price_demand equals brute-force forced units; each jump lands exactly where
    the object stops being individually overdemanded; jumps from below p* stay below p*."""
    rng = np.random.default_rng(seed)
    n, m = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    V = rng.integers(0, 9, (n, m))
    d = rng.integers(0, 4, n)
    s = rng.integers(0, 3, m)
    pstar = lp_prices(V, d, s)
    p = np.maximum(pstar - rng.integers(0, 6, m), 0)       # any p <= p*
    args = [jnp.asarray(a, jnp.int32) for a in (V, d, s)]

    def D(j, q):
        pq = p.copy()
        pq[j] = q
        return sum(_min_units_brute(V[i], d[i], s, pq, j) for i in range(n))

    own = np.asarray(_jit_own_demand(*args, jnp.asarray(p, jnp.int32),
                                             jnp.asarray(p, jnp.int32)))
    assert own.tolist() == [D(j, p[j]) for j in range(m)]
    new = np.asarray(_jit_jumps(*args, jnp.asarray(p, jnp.int32)))
    assert (new >= p).all() and (new <= pstar).all(), (V, d, s, p, new, pstar)
    for j in range(m):
        assert D(j, new[j]) <= s[j]                       # no longer overdemanded
        if new[j] > p[j]:
            assert D(j, new[j] - 1) > s[j]                # ... and not a unit earlier


def _ref_structure(v, d, s, p):
    """Greedy structure of one buyer by an explicit sort over payoff levels (numpy)."""
    u = v - p
    F = np.zeros(len(v), bool)
    rem = d
    for lev in sorted({x for x in u if x > 0}, reverse=True):
        at = u == lev
        if s[at].sum() >= rem:
            return F, at, rem, lev, True
        F |= at
        rem -= s[at].sum()
    return F, u == 0, 0, 0, False


def _ref_forced(v, d, s, p, X):
    """The min-X-units greedy: payoff descending, ties outside X first, then by index."""
    u = v - p
    order = sorted(range(len(v)), key=lambda j: (-u[j], bool(X[j]), j))
    taken = np.zeros(len(v), int)
    rem = d
    for j in order:
        if u[j] > 0 and rem > 0:
            taken[j] = min(s[j], rem)
            rem -= taken[j]
    return taken


def _ref_own_demand(V, d, s, p, j, q):
    u = V - p
    w = V[:, j] - q
    A = (np.where(u >= w[:, None], s, 0)).sum(1) - np.where(u[:, j] >= w, s[j], 0)
    return int(np.where(w > 0, np.clip(d - A, 0, s[j]), 0).sum())


@pytest.mark.parametrize("seed,n,m", [(0, 24, 60), (1, 24, 60), (2, 24, 60), (3, 7, 5)])
def test_greedy_kernels_match_numpy_reference(seed, n, m):
    """Structure, forced units, long step, own-price demand and jumps against plain numpy
    references (explicit sorts and scans), on markets with many ties, zero supplies and
    zero demands, up to 60 objects."""
    rng = np.random.default_rng(seed)
    hi = int(rng.choice([3, 8, 200]))
    V = rng.integers(0, hi + 1, (n, m))
    d = rng.integers(0, 6, n)
    s = rng.integers(0, 4, m)
    p = rng.integers(0, hi + 1, m)
    X = rng.random(m) < 0.3
    a = [jnp.asarray(x, jnp.int32) for x in (V, d, s, p)]
    b = _jit_bundles(*a)
    units, taken = _jit_forced(*a, jnp.asarray(X))
    for i in range(n):
        F, M, r, mu, case_a = _ref_structure(V[i], d[i], s, p)
        assert np.asarray(b.strict[i]).tolist() == F.tolist()
        assert np.asarray(b.marginal[i]).tolist() == M.tolist()
        assert (int(b.r[i]), int(b.mu[i]), bool(b.case_a[i])) == (r, mu, case_a)
        assert np.asarray(taken[i]).tolist() == _ref_forced(V[i], d[i], s, p, X).tolist()
    slope0 = sum(_ref_forced(V[i], d[i], s, p, X)[X].sum() for i in range(n))
    k = 1
    while k < 2 * hi + 2:                  # first t at which some x_i(t) drops
        pt = p + k * X
        if sum(_ref_forced(V[i], d[i], s, pt, X)[X].sum() for i in range(n)) < slope0:
            break
        k += 1
    cap = jnp.asarray(2 * hi + 2, jnp.int32)
    assert int(_jit_long_step(*a, jnp.asarray(X), cap)) == min(k, 2 * hi + 2)
    own = p + 2 * X
    assert np.asarray(_jit_own_demand(*a, jnp.asarray(own, jnp.int32))).tolist() == \
        [_ref_own_demand(V, d, s, p, j, own[j]) for j in range(m)]
    T = np.asarray(_jit_jumps(*a))
    for j in range(m):
        q = p[j]
        while _ref_own_demand(V, d, s, p, j, q) > s[j]:
            q += 1
        assert T[j] == q, (j, T[j], q)


# ----------------------------------------------------------- edge cases, bad inputs --

@pytest.mark.parametrize("V,d,s", [
    (np.zeros((0, 3)), np.zeros(0), [1, 2, 3]),        # no buyers
    (np.zeros((3, 0)), [1, 1, 1], np.zeros(0)),        # no objects
    ([[5, 5], [3, 9]], [0, 0], [2, 2]),                # zero demand
    ([[5, 5], [3, 9]], [2, 2], [0, 0]),                # zero supply
    ([[5, 0], [3, 0]], [2, 2], [1, 4]),                # a worthless object
])
def test_edge_cases(V, d, s):
    mkt = jw.MultiUnitMarket(V, d, s)
    res = jw.buyer_optimal_equilibrium(mkt)
    assert res.converged
    assert jw.check_walrasian(mkt, res.prices, res.allocation) == []
    if mkt.n_objects:
        assert res.prices.tolist() == lp_prices(np.asarray(V), np.asarray(d), np.asarray(s)).tolist()


@pytest.mark.parametrize("kwargs,exc,msg", [
    (dict(values=[[1, -2]], demands=[1], supplies=[1, 1]), ValueError, "values: must be non-negative"),
    (dict(values=[[1, 2.5]], demands=[1], supplies=[1, 1]), TypeError, "values: must hold integers"),
    (dict(values=[[1, np.nan]], demands=[1], supplies=[1, 1]), ValueError, "values: contains nan"),
    (dict(values=[[1, 2]], demands=[1, 2], supplies=[1, 1]), ValueError, "demands: last axis has 2"),
    (dict(values=[[1, 2]], demands=[1], supplies=[1]), ValueError, "supplies: last axis has 1"),
    (dict(values=[1, 2], demands=[1], supplies=[1, 1]), ValueError, "values: needs at least 2"),
    (dict(values=[[1, 2]], demands=[-1], supplies=[1, 1]), ValueError, "demands: must be non-negative"),
    (dict(values=[["a", "b"]], demands=[1], supplies=[1, 1]), TypeError, "values: must be numeric"),
    (dict(values=[[1, 2]], demands=[1], supplies=[1, 2**40]), ValueError, "supplies: values must not exceed"),
    (dict(values=np.ones((2, 1, 2)), demands=np.ones((3, 1)), supplies=[1, 1]), ValueError,
     "leading batch axes"),
])
def test_bad_market_inputs(kwargs, exc, msg):
    with pytest.raises(exc, match=msg):
        jw.MultiUnitMarket(**kwargs)


def test_bad_call_arguments():
    mkt = jw.MultiUnitMarket([[3, 4]], [1], [1, 1])
    with pytest.raises(ValueError, match="step: must be"):
        jw.buyer_optimal_equilibrium(mkt, step="huge")
    with pytest.raises(ValueError, match="backend: must be"):
        jw.buyer_optimal_equilibrium(mkt, backend="gurobi")
    with pytest.raises(ValueError, match="start: last axis has 3"):
        jw.buyer_optimal_equilibrium(mkt, start=[0, 0, 0])
    with pytest.raises(ValueError, match="start: must be non-negative"):
        jw.buyer_optimal_equilibrium(mkt, start=[-1, 0])
    with pytest.raises(TypeError, match="market: expected MultiUnitMarket"):
        jw.buyer_optimal_equilibrium(np.ones((2, 2)))
    with pytest.raises(ValueError, match="prices: last axis"):
        jw.preferred_bundles(mkt, [1, 2, 3])
    with pytest.raises(ValueError, match="allocation: expected shape"):
        jw.check_walrasian(mkt, [0, 0], [[1, 0, 0]])


def test_check_walrasian_reports_violations():
    mkt = jw.MultiUnitMarket([[10], [4]], [2, 1], [2])
    assert jw.check_walrasian(mkt, [4], [[2], [0]]) == []
    assert any("preferred bundle" in m for m in jw.check_walrasian(mkt, [3], [[2], [0]]))
    assert any("supply exceeded" in m for m in jw.check_walrasian(mkt, [4], [[2], [1]]))
    assert any("positive price" in m for m in jw.check_walrasian(mkt, [11], [[0], [0]]))
    assert any("market-clearing" in m for m in
               jw.check_walrasian(jw.MultiUnitMarket([[0]], [1], [1]), [0], [[0]]))


def test_market_is_a_pytree_and_jits():
    mkt = jw.MultiUnitMarket(np.ones((3, 2, 2), int), np.ones((3, 2), int), np.ones((3, 2), int))
    leaves = jax.tree_util.tree_leaves(mkt)
    assert len(leaves) == 3
    doubled = jax.jit(lambda mk: jax.tree_util.tree_map(lambda a: 2 * a, mk))(mkt)
    assert isinstance(doubled, jw.MultiUnitMarket) and int(doubled.values.sum()) == 24
    assert mkt[1].batch_shape == ()


def test_no_recompilation_for_same_shapes():
    rng = np.random.default_rng(4)
    a = random_market(rng, 16, 6, 4, 50, 3, 3)
    b = random_market(rng, 16, 6, 4, 50, 3, 3)
    jw.buyer_optimal_equilibrium(a)
    fns = (_rounds.advance, _rounds._bundles)
    sizes = [f._cache_size() for f in fns]
    jw.buyer_optimal_equilibrium(b)
    jw.buyer_optimal_equilibrium(a)
    assert [f._cache_size() for f in fns] == sizes


def test_arc_ranks_count_like_numpy():
    """The round kernel's running count of arcs into each object (a parallel-prefix scan
    on CPUs) equals numpy's cumsum, in the int16 accumulator and past its range (int32),
    inside jit and vmap."""
    rng = np.random.default_rng(7)
    count = jax.jit(_rounds._running_count)
    for shape in [(3, 7, 4), (5, 128, 12), (2, 2**15 + 3, 2)]:
        bm = rng.random(shape) < 0.7
        np.testing.assert_array_equal(np.asarray(count(jnp.asarray(bm))), np.cumsum(bm, axis=1))
    bm = rng.random((4, 2, 9, 3)) < 0.5
    got = jax.jit(jax.vmap(_rounds._running_count))(jnp.asarray(bm))
    np.testing.assert_array_equal(np.asarray(got), np.cumsum(bm, axis=2))


def test_round_limit_status():
    mkt = jw.MultiUnitMarket([[10], [4]], [2, 1], [2])        # p* = 4 after 4 unit raises
    # host flows: a round is one max flow (+ raise); the 5th flow certifies p* = 4
    host = dict(step="unit", backend="host")
    assert jw.buyer_optimal_equilibrium(mkt, max_rounds=4, **host).status == 1
    done = jw.buyer_optimal_equilibrium(mkt, max_rounds=5, **host)
    assert done.status == 0 and done.prices.tolist() == [4]
    # all-device auction: the cut at the final prices is checked after the last round
    dev = dict(step="unit", backend="device")
    r3 = jw.buyer_optimal_equilibrium(mkt, max_rounds=3, **dev)
    assert r3.status == 1 and r3.prices.tolist() == [3]
    r4 = jw.buyer_optimal_equilibrium(mkt, max_rounds=4, **dev)
    assert r4.status == 0 and r4.prices.tolist() == [4]
