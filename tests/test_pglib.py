"""PGLib-UC cases as one-hour menu economies: the loader against the JSON read here, its
bad-input errors, and the mechanisms on every hour of the shipped real fleet, each checked
by an independent computation written in this file (HiGHS LPs/MILPs, the definitions)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.optimize import LinearConstraint, linprog, milp

import jaxwalras as jw

from test_markup_scan import check_outcome

CASE = jw.examples.pglib_case_path()


@pytest.fixture(scope="module")
def raw():
    with open(CASE) as fh:
        return json.load(fh)


@pytest.fixture(scope="module")
def day():
    return jw.load_pglib_uc(CASE)          # 48 one-hour economies


# ------------------------------------------------------------------ the loader
def test_shipped_case_has_its_licence():
    folder = CASE.parent
    assert "Creative Commons Attribution 4.0" in (folder / "LICENSE").read_text()
    assert "Knueven" in (folder / "README.md").read_text()


def test_loader_matches_the_json(raw, day):
    th, rn = raw["thermal_generators"], raw["renewable_generators"]
    T = raw["time_periods"]
    assert day.batch_shape == (T,) and day.n_goods == 1
    must = [g for g in th.values() if g["must_run"]]
    fixed = sum(g["power_output_minimum"] for g in must)
    offer = [n for n, w in rn.items()
             if any(hi > lo for lo, hi in zip(w["power_output_minimum"], w["power_output_maximum"]))]
    assert day.seller_names == tuple(th) + tuple(offer)
    assert day.buyer_names == ("load",)
    for t in (0, 17, 40):
        net = raw["demand"][t] - sum(w["power_output_minimum"][t] for w in rn.values()) - fixed
        q = day.buyer_bundles[t, 0, :, 0]
        assert q[-1] == pytest.approx(net, rel=1e-12)
        np.testing.assert_allclose(day.buyer_values[t, 0], 10_000.0 * q, rtol=1e-12)
    for f, (name, g) in enumerate(th.items()):
        pw = g["piecewise_production"]
        mw = np.array([pt["mw"] for pt in pw])
        cost = np.array([pt["cost"] for pt in pw])
        m = day.seller_mask[5, f]
        y, c = day.seller_bundles[5, f, m, 0], day.seller_costs[5, f, m]
        if g["must_run"]:      # increments above the minimum output, its cost left out
            np.testing.assert_allclose(y, np.concatenate([[0], mw[1:] - mw[0]]))
            np.testing.assert_allclose(c, np.concatenate([[0], cost[1:] - cost[0]]))
        else:
            np.testing.assert_allclose(y, np.concatenate([[0], mw]))
            np.testing.assert_allclose(c, np.concatenate([[0], cost]))


def test_grid_levels_interpolate_the_cost_curve(raw):
    eco = jw.load_pglib_uc(CASE, hours=3, levels_per_segment=3, demand="blocks", n_blocks=4)
    assert eco.batch_shape == () and eco.n_buyers == 4
    for f, g in enumerate(list(raw["thermal_generators"].values())[:20]):
        if g["must_run"]:
            continue
        mw = [pt["mw"] for pt in g["piecewise_production"]]
        cost = [pt["cost"] for pt in g["piecewise_production"]]
        m = eco.seller_mask[f]
        y, c = eco.seller_bundles[f, m, 0][1:], eco.seller_costs[f, m][1:]
        assert len(y) == 3 * (len(mw) - 1) + 1 and set(mw) <= set(np.round(y, 12))
        np.testing.assert_allclose(c, np.interp(y, mw, cost), rtol=1e-12)
    np.testing.assert_allclose(eco.buyer_bundles[:, 1, 0], eco.buyer_bundles[0, 1, 0])


def _write(tmp_path, d, name="case.json"):
    path = tmp_path / name
    path.write_text(json.dumps(d))
    return path


@pytest.mark.parametrize("edit, match", [
    (lambda d: d.pop("thermal_generators"), "missing field 'thermal_generators'"),
    (lambda d: d["thermal_generators"]["115_STEAM_1"]["piecewise_production"][2].update(cost=float("nan")),
     r"thermal_generators\['115_STEAM_1'\].piecewise_production\[2\].cost: must be a finite"),
    (lambda d: d["thermal_generators"]["101_CT_1"]["piecewise_production"][1].update(mw=0.5),
     r"'101_CT_1'.*piecewise_production\[1\].mw"),
    (lambda d: d["thermal_generators"]["101_CT_1"].pop("power_output_maximum"),
     r"'101_CT_1'.*missing field 'power_output_maximum'"),
    (lambda d: d.update(demand=d["demand"][:5]), "demand: must be a list of time_periods=48"),
    (lambda d: d["demand"].__setitem__(7, -3.0), r"demand\[7\]: must be non-negative"),
    (lambda d: d["demand"].__setitem__(9, 100.0), r"demand\[9\]: the net load is"),
    (lambda d: d["renewable_generators"]["309_WIND_1"]["power_output_minimum"].__setitem__(4, 1e9),
     r"309_WIND_1.*power_output_maximum\[4\]: below"),
])
def test_bad_cases_name_the_field(tmp_path, raw, edit, match):
    d = json.loads(json.dumps(raw))
    edit(d)
    with pytest.raises(ValueError, match=match):
        jw.load_pglib_uc(_write(tmp_path, d))


def test_bad_files_and_options(tmp_path, raw):
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        jw.load_pglib_uc(tmp_path / "x.json")
    (tmp_path / "b.json").write_bytes(b"\xff\xfe{}")
    with pytest.raises(ValueError, match="not a UTF-8"):
        jw.load_pglib_uc(tmp_path / "b.json")
    with pytest.raises(ValueError, match="not a PGLib-UC case"):
        jw.load_pglib_uc(_write(tmp_path, [1, 2]))
    with pytest.raises(ValueError, match="not a PGLib-UC case"):
        jw.load_pglib_uc(_write(tmp_path, {"format": "jaxwalras.menu_economy/1"}))
    with pytest.raises(ValueError, match=r"hours: 48 is out of range.*time_periods=48"):
        jw.load_pglib_uc(CASE, hours=[0, 48])
    with pytest.raises(ValueError, match="hours: -1 is out of range"):
        jw.load_pglib_uc(CASE, hours=-1)
    with pytest.raises(TypeError, match="hours"):
        jw.load_pglib_uc(CASE, hours=["a"])
    with pytest.raises(ValueError, match="demand: must be one of"):
        jw.load_pglib_uc(CASE, demand="elastic")
    for kw, m in ((dict(voll=0.0), "voll"), (dict(voll=np.inf), "voll"),
                  (dict(n_blocks=0), "n_blocks"), (dict(levels_per_segment=0), "levels_per"),
                  (dict(cost_unit=-1.0), "cost_unit")):
        with pytest.raises(ValueError, match=m):
            jw.load_pglib_uc(CASE, hours=0, **kw)
    with pytest.raises(OSError):
        jw.load_pglib_uc(tmp_path / "missing.json")
    with pytest.raises(ValueError, match="unknown shipped"):
        jw.examples.pglib_case_path("ferc")


def test_names_survive_indexing_and_stacking(day):
    assert day[3].seller_names == day.seller_names
    st = jw.MenuEconomy.stack([day[1], day[2]])
    assert st.seller_names == day.seller_names and st[0].buyer_names == ("load",)
    assert jw.MenuEconomy.stack([day[1], day[1].pad(n_buyers=3)]).buyer_names == ("load", "", "")
    renamed = jw.MenuEconomy(day[1].buyer_bundles, day[1].buyer_values, day[1].seller_bundles,
                             day[1].seller_costs, day[1].buyer_mask, day[1].seller_mask,
                             buyer_names=["demand"])
    assert jw.MenuEconomy.stack([day[1], renamed]).buyer_names is None     # they differ
    assert jw.examples.milgrom_watt_table1().seller_names is None
    with pytest.raises(ValueError, match="buyer_names: got 2 names for 1 agents"):
        jw.MenuEconomy(day[1].buyer_bundles, day[1].buyer_values, day[1].seller_bundles,
                       day[1].seller_costs, buyer_names=["a", "b"])


# ------------------------------------------------------------------ real hours
def lp_optimum(e):
    """The convexified LP of one one-good economy, written out for scipy's HiGHS."""
    X, V, Y, C = (np.asarray(getattr(e, f)) for f in
                  ("buyer_bundles", "buyer_values", "seller_bundles", "seller_costs"))
    bm, sm = e.buyer_mask, e.seller_mask
    bi, si = np.argwhere(bm), np.argwhere(sm)
    nb = len(bi)
    N, F = X.shape[0], Y.shape[0]
    c = np.concatenate([-V[bm], C[sm]])
    A_eq = np.zeros((N + F, nb + len(si)))
    A_eq[bi[:, 0], np.arange(nb)] = 1
    A_eq[N + si[:, 0], nb + np.arange(len(si))] = 1
    A_ub = np.concatenate([X[bm][:, 0], -Y[sm][:, 0]])[None]
    res = linprog(c, A_ub=A_ub, b_ub=[0.0], A_eq=A_eq, b_eq=np.ones(N + F), bounds=(0, None),
                  method="highs")
    return -res.fun


def dual_g(e, p):
    u = np.where(e.buyer_mask, e.buyer_values - e.buyer_bundles[..., 0] * p, -np.inf).max(-1).sum()
    w = np.where(e.seller_mask, e.seller_bundles[..., 0] * p - e.seller_costs, -np.inf).max(-1).sum()
    return u + w


def test_convex_hull_prices_are_lp_optimal(day):
    ce = jw.convexified_equilibrium(day)
    assert ce.converged.all()
    for t in range(0, 48, 6):
        opt = lp_optimum(day[t])
        # the price attains the LP optimum in the dual: it is a convex-hull price
        assert dual_g(day[t], ce.prices[t, 0]) == pytest.approx(opt, rel=1e-12)


def test_markup_on_every_hour_is_valid_and_least(day):
    mk = jw.markup_mechanism(day)
    assert (mk.status == 0).all() and mk.converged.all()
    for t in range(48):
        check_outcome(day, mk, t)
    # exact minimum on every hour (no tie set had to be pruned on this fleet)
    assert mk.certified_minimal.all() and np.array_equal(mk.markup, mk.markup_lower)
    # the same hour alone, and inside shuffled batches of other sizes next to economies a
    # million times larger: the same answer
    big = day.replace(buyer_values=day.buyer_values * 1e6, seller_costs=day.seller_costs * 1e6)
    rng = np.random.default_rng(0)
    for size in (1, 5, 13):
        hours = rng.choice(48, size, replace=False)
        mix = jw.MenuEconomy.stack([day[int(h)] for h in hours] + [big[int(h)] for h in hours[:2]])
        mm = jw.markup_mechanism(mix)
        np.testing.assert_array_equal(mm.markup[:size], mk.markup[hours])
        np.testing.assert_array_equal(mm.seller_choice[:size], mk.seller_choice[hours])
        np.testing.assert_array_equal(mm.prices[:size], mk.prices[hours])


@pytest.mark.parametrize("scale", [1e-6, 1e6])
def test_money_unit_changes_no_decision(day, scale):
    hours = [0, 9, 18, 30, 41]
    sub = jw.MenuEconomy.stack([day[h] for h in hours])
    s = sub.replace(buyer_values=sub.buyer_values * scale, seller_costs=sub.seller_costs * scale)
    a, b = jw.markup_mechanism(sub), jw.markup_mechanism(s)
    np.testing.assert_array_equal(a.seller_choice, b.seller_choice)
    np.testing.assert_array_equal(a.buyer_choice, b.buyer_choice)
    np.testing.assert_allclose(b.markup, a.markup, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(b.prices, a.prices * scale, rtol=1e-12)
    ca, cb = jw.convexified_equilibrium(sub), jw.convexified_equilibrium(s)
    np.testing.assert_allclose(cb.prices, ca.prices * scale, rtol=1e-12)
    ra, rb = jw.rationing_mechanism(sub), jw.rationing_mechanism(s)
    np.testing.assert_array_equal(ra.seller_choice, rb.seller_choice)
    assert ra.converged.all() and rb.converged.all()


def test_rationing_on_every_hour_keeps_sellers_in_supply_sets(day):
    ra = jw.rationing_mechanism(day)
    assert ra.converged.all()
    Y, C, sm = day.seller_bundles[..., 0], day.seller_costs, day.seller_mask
    for t in range(48):
        p = ra.prices[t, 0]
        prof = np.where(sm[t], Y[t] * p - C[t], -np.inf)
        got = prof[np.arange(Y.shape[1]), ra.seller_choice[t]]
        scale = np.abs(np.where(sm[t], C[t], 0)).max(-1) + np.abs(np.where(sm[t], Y[t] * p, 0)).max(-1)
        assert np.all(prof.max(-1) - got <= 1e-9 * scale)
        x = ra.buyer_allocation[t].sum()
        y = Y[t, np.arange(Y.shape[1]), ra.seller_choice[t]].sum()
        assert y - x >= -1e-9 * (x + y)


def test_efficient_dispatch_uplift_and_welfare_bound(day):
    hours = [2, 19]
    sub = jw.MenuEconomy.stack([day[h] for h in hours])
    opt = jw.efficient_allocation(sub)
    ce = jw.convexified_equilibrium(sub)
    mk = jw.markup_mechanism(sub)
    assert opt.converged.all()
    for i in range(len(hours)):
        e = sub[i]
        X, V, Y, C = e.buyer_bundles[..., 0], e.buyer_values, e.seller_bundles[..., 0], e.seller_costs
        bm, sm = e.buyer_mask, e.seller_mask
        # the MILP written out here: one option per agent, production covers consumption
        bi, si = np.argwhere(bm), np.argwhere(sm)
        nb, ns = len(bi), len(si)
        N, F = X.shape[0], Y.shape[0]
        A = np.zeros((N + F + 1, nb + ns))
        A[bi[:, 0], np.arange(nb)] = 1
        A[N + si[:, 0], nb + np.arange(ns)] = 1
        A[-1] = np.concatenate([X[bm], -Y[sm]]) / 1000.0
        res = milp(-np.concatenate([V[bm], -C[sm]]) / 1e6, integrality=np.ones(nb + ns),
                   bounds=(0, 1), constraints=LinearConstraint(
                       A, np.r_[np.ones(N + F), -np.inf], np.r_[np.ones(N + F), 0.0]),
                   options={"mip_rel_gap": 0})
        assert opt.welfare[i] == pytest.approx(-res.fun * 1e6, rel=1e-9)
        # S* <= the convexified optimum; the bound-form welfare theorem for the markup outcome
        assert opt.welfare[i] <= ce.dual_value[i] * (1 + 1e-12)
        assert opt.welfare[i] - mk.welfare[i] <= mk.welfare_bound[i] * (1 + 1e-9) + 1e-6
        # uplift: each unit's lost opportunity at the convex-hull price, by hand
        p = ce.prices[i, 0]
        best = np.where(sm, Y * p - C, -np.inf).max(-1)
        got = (Y * p - C)[np.arange(F), opt.seller_choice[i]]
        np.testing.assert_allclose(jw.uplift(e, [p], opt.seller_choice[i]), best - got,
                                   rtol=1e-12, atol=1e-9)
