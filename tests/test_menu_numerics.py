"""Numbers that do not depend on the money unit or on batch-mates (menu economies).

A property suite (hypothesis, the derandomized profile of conftest.py) solves random menu
economies at money scales 1e-6, 1 and 1e6, alone and inside shuffled mixed batches, and
checks every answer against the definitions written here; adversarial scales (values from
1e-3 to 1e7 in one batch, a fleet of 1,000 units, one economy repeated in batches of
different sizes); and an edge-case suite for every bad-input class."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st
from scipy.optimize import linprog

import jaxwalras as jw

from test_markup_scan import brute_least_markup, check_outcome

SCALES = (1e-6, 1.0, 1e6)


def scaled(eco, s):
    return eco.replace(buyer_values=eco.buyer_values * s, seller_costs=eco.seller_costs * s)


@st.composite
def one_good(draw):
    """3 buyers x 3 options, 2 sellers x 3 options, one good; integer-ish data (ties)."""
    x = np.array(draw(st.lists(st.integers(0, 4), min_size=9, max_size=9)), float).reshape(3, 3)
    v = np.array(draw(st.lists(st.integers(1, 12), min_size=9, max_size=9)), float).reshape(3, 3)
    y = np.array(draw(st.lists(st.integers(0, 5), min_size=6, max_size=6)), float).reshape(2, 3)
    mc = np.array(draw(st.lists(st.integers(1, 9), min_size=2, max_size=2)), float)
    fc = np.array(draw(st.lists(st.integers(0, 3), min_size=2, max_size=2)), float)
    V = x * v / 10
    C = y * mc[:, None] / 10 + np.where(y > 0, fc[:, None] / 10, 0)
    x[:, 0] = V[:, 0] = y[:, 0] = C[:, 0] = 0
    return jw.MenuEconomy(x[..., None], V, y[..., None], C)


@st.composite
def two_goods(draw):
    seed = draw(st.integers(0, 2**31 - 1))
    return jw.examples.fixed_cost_economy(seed, n_buyers=4, n_sellers=2, n_goods=2,
                                          buyer_options=3, seller_options=3)


def _mates(eco, rng):
    """A shuffled batch holding ``eco`` with other economies, one of them 1e6 times larger."""
    others = [jw.examples.fixed_cost_economy(int(s), n_buyers=eco.n_buyers, n_sellers=eco.n_sellers,
                                             n_goods=eco.n_goods, buyer_options=eco.n_buyer_options,
                                             seller_options=eco.n_seller_options)
              for s in rng.integers(0, 10**6, 3)] if eco.n_goods > 1 else \
        [jw.MenuEconomy.single_good(rng.uniform(0.1, 2, (eco.n_buyers, 2)), rng.uniform(0.1, 2, (eco.n_buyers, 2)),
                                    rng.uniform(0.1, 3, (eco.n_sellers, 2)), rng.uniform(0.1, 2, (eco.n_sellers, 2)))
         for _ in range(3)]
    others[0] = scaled(others[0], 1e6)
    items = others + [eco]
    order = rng.permutation(len(items))
    return jw.MenuEconomy.stack([items[i] for i in order]), int(np.argmax(order == len(items) - 1))


@given(eco=one_good(), seed=st.integers(0, 1000))
def test_one_good_markup_is_scale_free_and_batch_independent(eco, seed):
    base = jw.markup_mechanism(eco, max_markup=1e6)
    ref = brute_least_markup(eco.buyer_bundles[..., 0], eco.buyer_values, eco.buyer_mask,
                             eco.seller_bundles[..., 0], eco.seller_costs, eco.seller_mask)
    if np.isinf(ref):
        assert int(base.status) == jw.Status.NO_SOLUTION
        return
    check_outcome(eco, base)
    assert float(base.markup) == pytest.approx(ref, rel=1e-9, abs=1e-12)
    for s in SCALES:
        m = jw.markup_mechanism(scaled(eco, s), max_markup=1e6)
        assert np.array_equal(m.buyer_choice, base.buyer_choice)
        assert np.array_equal(m.seller_choice, base.seller_choice)
        assert float(m.markup) == pytest.approx(float(base.markup), rel=1e-12, abs=1e-15)
        np.testing.assert_allclose(m.prices, base.prices * s, rtol=1e-12)
    batch, i = _mates(eco, np.random.default_rng(seed))
    mb = jw.markup_mechanism(batch, max_markup=1e6)
    assert mb.markup[i] == base.markup and np.array_equal(mb.prices[i], base.prices)
    assert np.array_equal(mb.buyer_choice[i, :eco.n_buyers], base.buyer_choice)
    assert np.array_equal(mb.seller_choice[i, :eco.n_sellers], base.seller_choice)
    # the convexified (envelope) prices scale exactly as well
    ce = jw.convexified_equilibrium(eco)
    for s in (1e-6, 1e6):
        np.testing.assert_allclose(jw.convexified_equilibrium(scaled(eco, s)).prices,
                                   ce.prices * s, rtol=1e-12)
    cb = jw.convexified_equilibrium(batch)
    np.testing.assert_array_equal(cb.prices[i], ce.prices)


@given(eco=two_goods(), seed=st.integers(0, 1000))
def test_two_good_mechanisms_are_scale_free_and_batch_independent(eco, seed):
    base = jw.markup_mechanism(eco)
    if bool(base.converged):
        check_outcome(eco, base)
    else:
        assert int(base.status) != 0
    for s in (1e-6, 1e6):
        m = jw.markup_mechanism(scaled(eco, s))
        assert np.array_equal(m.converged, base.converged)
        assert np.array_equal(m.buyer_choice, base.buyer_choice)
        assert np.array_equal(m.seller_choice, base.seller_choice)
        assert float(m.markup) == pytest.approx(float(base.markup), rel=1e-9, abs=1e-12)
        np.testing.assert_allclose(m.prices, base.prices * s, rtol=1e-9, atol=1e-300)
    batch, i = _mates(eco, np.random.default_rng(seed))
    mb = jw.markup_mechanism(batch)
    assert mb.markup[i] == pytest.approx(float(base.markup), rel=1e-12, abs=0)
    assert np.array_equal(mb.seller_choice[i], base.seller_choice)
    assert np.array_equal(mb.status[i], base.status)
    # the exact efficient allocation scales with the money unit
    opt = jw.efficient_allocation(eco)
    for s in (1e-6, 1e6):
        o = jw.efficient_allocation(scaled(eco, s))
        assert bool(o.converged) and o.welfare == pytest.approx(float(opt.welfare) * s, rel=1e-9)


@given(seed=st.integers(0, 10**6))
def test_rationing_is_scale_free_and_batch_independent(seed):
    rng = np.random.default_rng(seed)
    qb = np.broadcast_to(np.arange(1.0, 4), (4, 3))
    vb = np.cumsum(np.sort(rng.uniform(0.2, 1.5, (4, 3)), -1)[:, ::-1], -1)   # concave
    qs = np.broadcast_to(np.arange(2.0, 8, 2), (2, 3))
    cs = rng.uniform(0.5, 2.0, (2, 1)) + qs * rng.uniform(0.3, 0.8, (2, 1))
    eco = jw.MenuEconomy.single_good(qb, vb, qs, cs)
    base = jw.rationing_mechanism(eco)
    assert bool(base.converged)
    for s in (1e-6, 1e6):
        r = jw.rationing_mechanism(scaled(eco, s))
        assert bool(r.converged) and np.array_equal(r.seller_choice, base.seller_choice)
        np.testing.assert_allclose(r.prices, base.prices * s, rtol=1e-12)
        np.testing.assert_allclose(r.buyer_losses, base.buyer_losses * s, rtol=1e-9, atol=1e-12 * s)
    batch, i = _mates(eco, rng)
    rb = jw.rationing_mechanism(batch)
    np.testing.assert_array_equal(rb.prices[i], base.prices)
    np.testing.assert_array_equal(rb.seller_choice[i, :2], base.seller_choice)


# ------------------------------------------------------------------ adversarial scales
def test_values_from_1e_minus3_to_1e7_in_one_batch():
    rng = np.random.default_rng(1)
    ecos, scales = [], 10.0 ** rng.uniform(-3, 7, 16)
    for s in scales:
        q = rng.uniform(0.1, 1, 6)
        ecos.append(jw.MenuEconomy.single_good(q[:, None], s * (q * rng.uniform(0, 1, 6))[:, None],
                                               np.arange(1, 5.0)[None], s * 0.5 * np.arange(1, 5.0)[None]))
    batch = jw.MenuEconomy.stack(ecos)
    mk = jw.markup_mechanism(batch)
    ce = jw.convexified_equilibrium(batch)
    assert mk.converged.all() and ce.converged.all()
    for i, e in enumerate(ecos):
        check_outcome(batch, mk, i)
        alone = jw.markup_mechanism(e)
        assert alone.markup == mk.markup[i] and np.array_equal(alone.prices, mk.prices[i])
        assert float(alone.markup) == pytest.approx(brute_least_markup(
            e.buyer_bundles[..., 0], e.buyer_values, e.buyer_mask, e.seller_bundles[..., 0],
            e.seller_costs, e.seller_mask), rel=1e-9, abs=1e-12)
        np.testing.assert_array_equal(jw.convexified_equilibrium(e).prices, ce.prices[i])


def _fleet(n_units, seed):
    """A fleet of ``n_units`` real RTS-GMLC thermal units (cost curves perturbed by +-5%)
    and a net load of half its capacity."""
    day = jw.load_pglib_uc(jw.examples.pglib_case_path(), hours=0, levels_per_segment=2)
    th = [f for f in range(day.n_sellers) if day.seller_costs[f].max() > 0]
    rng = np.random.default_rng(seed)
    pick = rng.choice(th, n_units)
    Y = day.seller_bundles[pick][..., 0]
    C = day.seller_costs[pick] * rng.uniform(0.95, 1.05, (n_units, 1))
    m = day.seller_mask[pick]
    load = 0.5 * np.where(m, Y, 0).max(-1).sum()
    q = load * np.arange(1, 11) / 10
    return jw.MenuEconomy.single_good(q[None], 5000.0 * q[None], np.where(m, Y, np.nan)[:, 1:],
                                      np.where(m, C, np.nan)[:, 1:])


def test_fleet_of_1000_units():
    eco = _fleet(1000, 0)
    mk = jw.markup_mechanism(eco)
    check_outcome(eco, mk)
    assert bool(mk.certified_minimal)
    ce = jw.convexified_equilibrium(eco)
    # the convex-hull price against the LP written out here
    X, V, Y, C = eco.buyer_bundles[..., 0], eco.buyer_values, eco.seller_bundles[..., 0], eco.seller_costs
    bm, sm = eco.buyer_mask, eco.seller_mask
    bi, si = np.argwhere(bm), np.argwhere(sm)
    N, F = X.shape[0], Y.shape[0]
    A_eq = np.zeros((N + F, len(bi) + len(si)))
    A_eq[bi[:, 0], np.arange(len(bi))] = 1
    A_eq[N + si[:, 0], len(bi) + np.arange(len(si))] = 1
    res = linprog(np.concatenate([-V[bm], C[sm]]) / 1e6,
                  A_ub=np.concatenate([X[bm], -Y[sm]])[None] / 1e3, b_ub=[0.0], A_eq=A_eq,
                  b_eq=np.ones(N + F), bounds=(0, None), method="highs")
    g = (np.where(bm, V - X * ce.prices[0], -np.inf).max(-1).sum()
         + np.where(sm, Y * ce.prices[0] - C, -np.inf).max(-1).sum())
    assert g == pytest.approx(-res.fun * 1e6, rel=1e-9)
    assert -res.ineqlin.marginals[0] * 1e3 == pytest.approx(ce.prices[0], rel=1e-6)
    ra = jw.rationing_mechanism(eco)
    assert bool(ra.converged)


def test_one_economy_repeated_in_batches_of_different_sizes():
    eco = _fleet(60, 3)
    one = jw.markup_mechanism(eco)
    for size in (1, 3, 8):
        mk = jw.markup_mechanism(jw.MenuEconomy.stack([eco] * size))
        assert (mk.markup == one.markup).all()
        assert (mk.seller_choice == one.seller_choice).all() and (mk.prices == one.prices).all()
    tw = jw.examples.fixed_cost_economy(5, n_buyers=6, n_sellers=2, n_goods=2)
    one = jw.markup_mechanism(tw)
    for size in (1, 4, 9):
        mk = jw.markup_mechanism(jw.MenuEconomy.stack([tw] * size))
        assert (mk.markup == one.markup).all() and (mk.seller_choice == one.seller_choice).all()


# ------------------------------------------------------------------ bad input
def _t1():
    return jw.examples.milgrom_watt_table1()


@pytest.mark.parametrize("args, match", [
    ((np.zeros((0, 1, 1)), np.zeros((0, 1)), np.zeros((1, 2, 1)), np.zeros((1, 2))),
     "at least one buyer, got N = 0"),
    ((np.zeros((2, 2, 1)), np.zeros((2, 2)), np.zeros((0, 1, 1)), np.zeros((0, 1))),
     "at least one seller, got F = 0"),
    ((np.array([[[0.0], [1.0]]]), np.array([[0.0, 1e101]]), np.array([[[0.0], [1.0]]]),
      np.array([[0.0, 1.0]])), r"buyer_values: found 1e\+101"),
    ((np.array([[[0.0], [1.0]]]), np.array([[0.0, 1.0]]), np.array([[[0.0], [1.0]]]),
      np.array([[0.0, 1e-120]])), "seller_costs: found 1e-120"),
    ((np.array([[[0.0], [1e300]]]), np.array([[0.0, 1.0]]), np.array([[[0.0], [1.0]]]),
      np.array([[0.0, 1.0]])), r"buyer_bundles: found 1e\+300"),
])
def test_economy_refuses(args, match):
    with pytest.raises(ValueError, match=match):
        jw.MenuEconomy(*args)


def test_mechanisms_refuse_bad_arguments():
    eco = _t1()
    for kw, m in ((dict(reserve=-1.0), "reserve"), (dict(reserve=[np.nan]), "reserve"),
                  (dict(max_markup=np.nan), "max_markup"), (dict(max_markup=-1.0), "max_markup"),
                  (dict(min_markup=0.0), "min_markup"), (dict(max_combinations=0), "max_combinations"),
                  (dict(n_grid=True), "n_grid")):
        with pytest.raises(ValueError, match=m):
            jw.markup_mechanism(eco, **kw)
    with pytest.raises(ValueError, match="method: 'scan' is the exact one-good method"):
        jw.markup_mechanism(jw.examples.fixed_cost_economy(0), method="scan")
    with pytest.raises(ValueError, match="reserve"):
        jw.rationing_mechanism(eco, reserve=-0.5)
    with pytest.raises(ValueError, match="markup: must be > -1"):
        jw.convexified_equilibrium(eco, markup=-1.0)
    with pytest.raises(ValueError, match="markup: contains nan"):
        jw.convexified_equilibrium(eco, markup=np.nan)
    for r in (-1e-6, np.nan, np.inf, 0.0):
        with pytest.raises(ValueError, match="rtol"):
            jw.convexified_equilibrium(eco, rtol=r)
    with pytest.raises(ValueError, match="markup"):
        jw.demand_gaps(eco, [0.5], markup=-2.0)
    with pytest.raises(ValueError, match="prices"):
        jw.welfare_bound(eco, [-0.5], np.zeros(10, int), [0])
    with pytest.raises(ValueError, match="markup"):
        jw.shapley_folkman_rounding(eco, [0.5], -0.1, np.eye(2)[np.zeros(10, int)], np.eye(7)[[0]])


def test_smoothed_equilibrium_validates_and_stays_finite():
    eco = _t1()
    for kw, m in ((dict(markup=np.nan), "markup: must be finite"), (dict(markup=-2.0), "markup: must be > -1"),
                  (dict(reserve=np.inf), "reserve: must be finite"), (dict(stages=0), "stages"),
                  (dict(steps=-1), "steps"), (dict(tau=0.0), "tau"), (dict(tau=np.nan), "tau"),
                  (dict(tau=2.0), "tau"), (dict(steps=1.5), "steps")):
        with pytest.raises(ValueError, match=m):
            jw.smoothed_equilibrium(eco, **kw)
    # a reserve of a good no seller can make: infeasible, refused
    empty = jw.MenuEconomy(np.zeros((2, 1, 1)), np.zeros((2, 1)), np.zeros((1, 1, 1)), np.zeros((1, 1)))
    with pytest.raises(ValueError, match="reserve: a positive reserve"):
        jw.smoothed_equilibrium(empty, reserve=1.0)
    # empty menus: price 0, finite everything
    s = jw.smoothed_equilibrium(empty)
    assert float(s.prices[0]) == 0.0 and np.isfinite(float(s.welfare))
    # negative-cost seller (paid to produce: price 0, everything finite); a flat dual
    neg = jw.MenuEconomy(eco.buyer_bundles, eco.buyer_values, eco.seller_bundles,
                         -0.5 * np.arange(7.0)[None])
    s = jw.smoothed_equilibrium(neg)
    assert float(s.prices[0]) == 0.0 and np.isfinite(np.asarray(s.seller_weights)).all()
    flat = jw.MenuEconomy(np.array([[[0.0], [1.0]]]), np.array([[0.0, 1.0]]),
                          np.array([[[0.0], [1.0]]]), np.array([[0.0, -1.0]]))
    s = jw.smoothed_equilibrium(flat)
    assert 0.0 <= float(s.prices[0]) <= 1.0 and np.isfinite(float(s.welfare))
    # x1e30 and x1e-30: finite and scaled (float32)
    base = jw.smoothed_equilibrium(eco)
    for sc in (1e30, 1e-30):
        s = jw.smoothed_equilibrium(scaled(eco, sc))
        assert float(s.prices[0]) == pytest.approx(float(base.prices[0]) * sc, rel=1e-4)
    with pytest.raises(ValueError, match="float32"):
        jw.smoothed_equilibrium(scaled(eco, 1e37))


def test_efficient_allocation_is_scaled_certified_and_honest():
    eco = _t1()
    opt = jw.efficient_allocation(eco)
    for sc in (1e-30, 1e30):
        o = jw.efficient_allocation(scaled(eco, sc))
        assert bool(o.converged) and o.welfare == pytest.approx(float(opt.welfare) * sc, rel=1e-12)
        # the returned allocation is feasible (checked here)
        x = sum(eco.buyer_bundles[n, k, 0] for n, k in enumerate(o.buyer_choice))
        assert eco.seller_bundles[0, int(o.seller_choice[0]), 0] >= x
    for kw, m in ((dict(time_limit=0), "time_limit"), (dict(time_limit=np.nan), "time_limit"),
                  (dict(time_limit=True), "time_limit"), (dict(mip_rel_gap=1.5), "mip_rel_gap"),
                  (dict(max_variables=0), "max_variables")):
        with pytest.raises(ValueError, match=m):
            jw.efficient_allocation(eco, **kw)
    # a time limit too short to prove anything: TIME_LIMIT, never converged=True; what is
    # returned (if anything) is feasible
    big = jw.examples.random_menu_economy(60, 12, 8, 8, 4, seed=1)
    o = jw.efficient_allocation(big, time_limit=1e-3)
    assert not bool(o.converged) and int(o.status) == jw.Status.TIME_LIMIT
    if np.isfinite(o.welfare):
        X, Y = np.asarray(big.buyer_bundles), np.asarray(big.seller_bundles)
        x = X[np.arange(60), o.buyer_choice].sum(0)
        y = Y[np.arange(12), o.seller_choice].sum(0)
        assert np.all(y >= x - 1e-9 * (x + y))


def test_no_solver_chatter(capfd):
    eco = jw.examples.fixed_cost_economy(3, n_buyers=6, n_sellers=2, n_goods=2, batch_shape=(2,))
    jw.efficient_allocation(eco)
    jw.markup_mechanism(eco, backend="host")
    jw.rationing_mechanism(jw.examples.milgrom_watt_table1(), backend="host")
    jw.efficient_allocation(jw.examples.random_menu_economy(30, 6, 6, 6, 3, seed=2), time_limit=0.05)
    out, err = capfd.readouterr()
    assert out == "" and err == ""


# ------------------------------------------------------------------ canonical prices
def lex_min_optimal_prices(e, g_star):
    """Lexicographically smallest p >= 0 with g(p) <= g* (the optimal dual set), by HiGHS:
    g(p) <= g* with one epigraph variable per agent, then min p_1, fix, min p_2, ..."""
    X, V, Y, C = (np.asarray(getattr(e, f)) for f in
                  ("buyer_bundles", "buyer_values", "seller_bundles", "seller_costs"))
    bm, sm = np.asarray(e.buyer_mask), np.asarray(e.seller_mask)
    N, Kb, L = X.shape
    F, Ks, _ = Y.shape
    nv = L + N + F
    A, b = [], []
    for n in range(N):                   # V - X.p <= t_n
        for k in range(Kb):
            if bm[n, k]:
                row = np.zeros(nv)
                row[:L], row[L + n] = -X[n, k], -1.0
                A.append(row)
                b.append(-V[n, k])
    for f in range(F):                   # Y.p - C <= s_f
        for k in range(Ks):
            if sm[f, k]:
                row = np.zeros(nv)
                row[:L], row[L + N + f] = Y[f, k], -1.0
                A.append(row)
                b.append(C[f, k])
    row = np.zeros(nv)
    row[L:] = 1.0
    A.append(row)
    b.append(g_star * (1 + 1e-12) + 1e-12)
    bounds = [(0, None)] * L + [(None, None)] * (N + F)
    p = np.zeros(L)
    for l in range(L):
        c = np.zeros(nv)
        c[l] = 1.0
        res = linprog(c, A_ub=np.array(A), b_ub=np.array(b), bounds=bounds, method="highs")
        p[l] = res.x[l]
        bounds[l] = (0, p[l] * (1 + 1e-10) + 1e-12)
    return p


def test_convexified_prices_are_the_least_optimal_ones_whatever_the_batch():
    # integer bundles and costs: degenerate LPs with a whole face of optimal prices
    eco = jw.examples.fixed_cost_economy(7, n_buyers=12, n_sellers=3, n_goods=2, batch_shape=(12,))
    ce = jw.convexified_equilibrium(eco)
    assert ce.converged.all()
    lp = jw.convexified_equilibrium(eco, method="lp")
    dev = jw.convexified_equilibrium(eco, backend="device")
    perm = np.random.default_rng(0).permutation(12)
    mix = jw.MenuEconomy.stack([eco[int(i)] for i in perm] + [scaled(eco[0], 1e6)])
    cm = jw.convexified_equilibrium(mix)
    for j, i in enumerate(perm):
        np.testing.assert_allclose(cm.prices[j], ce.prices[i], rtol=1e-12, atol=0)
    for i in range(12):
        np.testing.assert_allclose(jw.convexified_equilibrium(eco[i]).prices, ce.prices[i],
                                   rtol=1e-12, atol=0)
        ref = lex_min_optimal_prices(eco[i], float(ce.dual_value[i]))
        np.testing.assert_allclose(ce.prices[i], ref, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(lp.prices, ce.prices, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(dev.prices, ce.prices, rtol=1e-9, atol=1e-12)



def test_convexified_prices_pinned_by_ties_match_the_lp_oracle(monkeypatch):
    # continuous random data: non-degenerate vertices, whose ties alone fix the prices (no
    # LP); degenerate integer economies (a face of optimal prices) in the same batch take
    # the LP path; every answer against the HiGHS lexicographic oracle, alone and mixed
    from jaxwalras import exact_finish
    seen = []
    orig = exact_finish._pinned_prices

    def spy(E, e):
        out = orig(E, e)
        seen.append(out[0].copy())
        return out

    monkeypatch.setattr(exact_finish, "_pinned_prices", spy)
    rnd = jw.examples.random_menu_economy(14, 3, 4, 4, 2, seed=5, batch_shape=(5,))
    deg = jw.examples.fixed_cost_economy(7, n_buyers=12, n_sellers=3, n_goods=2, batch_shape=(3,))
    deg = jw.MenuEconomy.stack([deg[i] for i in range(3)])
    rnd = jw.MenuEconomy.stack([rnd[i] for i in range(5)])
    ce = jw.convexified_equilibrium(rnd)
    assert ce.converged.all() and seen[-1].all()          # every one pinned by its ties
    for i in range(5):
        ref = lex_min_optimal_prices(rnd[i], float(ce.dual_value[i]))
        np.testing.assert_allclose(ce.prices[i], ref, rtol=1e-7, atol=1e-9)
    lp = jw.convexified_equilibrium(rnd, method="lp")
    np.testing.assert_allclose(lp.prices, ce.prices, rtol=1e-9, atol=1e-12)
    cd = jw.convexified_equilibrium(deg)
    assert not seen[-1].all()                              # some need the LP
    # a mixed batch at money scales 1e-6 and 1e6: each row as alone (prices scale)
    rows = [rnd[0], deg[0], scaled(rnd[1], 1e-6), scaled(deg[1], 1e6), scaled(rnd[2], 1e6)]
    mix = jw.convexified_equilibrium(jw.MenuEconomy.stack(rows))
    want = [ce.prices[0], cd.prices[0], ce.prices[1] * 1e-6, cd.prices[1] * 1e6, ce.prices[2] * 1e6]
    for j, w in enumerate(want):
        alone = jw.convexified_equilibrium(rows[j]).prices
        # pinned prices are computed from the economy alone: identical; on a degenerate
        # face the LP's 1e-12 relative row tolerance leaves round-off of that size
        np.testing.assert_allclose(mix.prices[j], alone, rtol=0 if j in (0, 2, 4) else 1e-11,
                                   atol=0)
        # a money unit of 1e6 is not a power of two: the data round differently
        np.testing.assert_allclose(alone, w, rtol=1e-9, atol=0)


@given(st.integers(0, 10_000), st.integers(1, 3), st.integers(1, 6), st.integers(1, 5),
       st.booleans())
def test_max_over_options_is_the_masked_max_with_zero(seed, A_, K, L, full):
    """The one-pass-per-option maximum is ``max(0, max over the allowed options)`` (0 where
    none is allowed), bit for bit, with and without a mask; on bundles (non-negative) that
    is numpy's maximum with masked options set to 0."""
    from jaxwalras.menu_host import max_over_options
    rng = np.random.default_rng(seed)
    Z = rng.normal(size=(4, A_, K, L)) * 10.0 ** rng.integers(-6, 7)
    mask = np.ones((4, A_, K), bool) if full else rng.random((4, A_, K)) < 0.5
    expect = np.maximum(np.where(mask[..., None], Z, -np.inf).max(-2), 0.0)
    assert np.array_equal(max_over_options(Z, mask), expect)
    assert np.array_equal(max_over_options(Z), np.maximum(Z.max(-2), 0.0))
    bundles = np.abs(Z)
    assert np.array_equal(max_over_options(bundles, mask),
                          np.where(mask[..., None], bundles, 0.0).max(-2))
