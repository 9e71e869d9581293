"""File formats: round trips for every format, bad files with precise one-line errors,
the CATS format's quirks, and every result type through JSON exactly."""
from __future__ import annotations

import json

import numpy as np
import pytest

import jaxwalras as jw
from jaxwalras.formats import FormatError


def _write(tmp_path, name, content, binary=False):
    p = tmp_path / name
    if binary:
        p.write_bytes(content)
    elif isinstance(content, str):
        p.write_text(content)
    else:
        p.write_text(json.dumps(content))
    return p


# ------------------------------------------------------------------ multi-unit markets
def test_multiunit_round_trip_single_and_batch(tmp_path, rng):
    one = jw.MultiUnitMarket(rng.integers(0, 50, (4, 3)), rng.integers(0, 4, 4),
                             rng.integers(0, 4, 3))
    names = {"buyers": ["a", "b", "c", "d"], "objects": ["x", "y", "z"]}
    p = tmp_path / "one.json"
    jw.save_multiunit_market(one, p, names=names)
    back, nm = jw.load_multiunit_market(p, with_names=True)
    assert nm == names
    for a, b in zip(back.host_arrays(), one.host_arrays()):
        np.testing.assert_array_equal(a, b)
    batch = jw.MultiUnitMarket(rng.integers(0, 50, (3, 4, 3)), rng.integers(0, 4, (3, 4)),
                               rng.integers(0, 4, (3, 3)))
    jw.save_multiunit_market(batch, tmp_path / "b.json")
    back = jw.load_multiunit_market(tmp_path / "b.json")
    assert back.batch_shape == (3,)
    np.testing.assert_array_equal(back.values, batch.values)


def test_multiunit_batch_of_different_sizes_is_padded(tmp_path):
    d = {"markets": [{"values": [[4, 4], [5, 3]], "demands": [2, 1], "supplies": [1, 1]},
                     {"values": [[10], [4]], "demands": [2, 1], "supplies": [2]}]}
    mkt = jw.load_multiunit_market(_write(tmp_path, "m.json", d))
    assert mkt.batch_shape == (2,) and mkt.n_objects == 2
    res = jw.buyer_optimal_equilibrium(mkt)
    # the worked examples of docs/multiunit.md: p* = (4, 2) and p* = 4 (padding object: 0)
    assert res.prices.tolist() == [[4, 2], [4, 0]]


@pytest.mark.parametrize("content,where,what", [
    ({"values": [[1, 2]], "demands": [1], "supplies": [1, 1], "valuez": 1}, "valuez",
     "unknown key 'valuez'"),
    ({"values": [[1, 2]], "demands": [1]}, "(top level)", "missing the required key 'supplies'"),
    ({"values": [[1, -2]], "demands": [1], "supplies": [1, 1]}, "values[0][1]", ">= 0, got -2"),
    ({"values": [[1, 2.5]], "demands": [1], "supplies": [1, 1]}, "values[0][1]",
     "must be an integer, got 2.5"),
    ({"values": [[1, 2], [3]], "demands": [1, 1], "supplies": [1, 1]}, "values[1]",
     "has 1 entries, expected 2"),
    ({"values": [[1, 2]], "demands": [1, 1], "supplies": [1, 1]}, "demands",
     "has 2 entries, expected 1"),
    ({"values": [[10 ** 400, 2]], "demands": [1], "supplies": [1, 1]}, "values[0][0]",
     "401-digit integer"),
    ({"values": [[2 ** 25, 2]], "demands": [1], "supplies": [1, 1]}, "values[0][0]",
     "at most 16777216"),
    ({"markets": [{"values": [[1]], "demands": [1], "supplies": [1], "x": 0}]},
     "markets[0].x", "unknown key 'x'"),
    ({"values": [[1, 2]], "demands": [True], "supplies": [1, 1]}, "demands[0]",
     "the boolean true"),
    ([1, 2, 3], "(top level)", "must be a JSON object"),
])
def test_multiunit_bad_files_name_the_place(tmp_path, content, where, what):
    p = _write(tmp_path, "bad.json", content)
    with pytest.raises(FormatError) as e:
        jw.load_multiunit_market(p)
    msg = str(e.value)
    assert msg.startswith(str(p)) and f": {where}: " in msg and what in msg, msg
    assert "\n" not in msg


def test_bad_json_text(tmp_path):
    for content, what in [('{"values": [[1]', "not valid JSON"),
                          ('{"values": [[NaN]], "demands": [1], "supplies": [1]}',
                           "NaN is not a JSON number"),
                          ('{"values": [[1e400]], "demands": [1], "supplies": [1]}',
                           "outside the float64 range")]:
        with pytest.raises(FormatError, match=what):
            jw.load_multiunit_market(_write(tmp_path, "t.json", content))
    with pytest.raises(FormatError, match="byte 2: not UTF-8"):
        jw.load_multiunit_market(_write(tmp_path, "b.json", b'{"\xff\xfe"}', binary=True))
    with pytest.raises(FormatError, match="cannot read the file"):
        jw.load_multiunit_market(tmp_path / "missing.json")


# ------------------------------------------------------------------ set-function markets
def test_setfunction_json_round_trip_keeps_tables_and_names(tmp_path):
    for cm in (jw.examples.shoes(), jw.examples.shirts(5),
               jw.cats.regions(n_bidders=5, m=7, seed=3)):
        p = tmp_path / "cm.json"
        jw.save_setfunction_market(cm, p)
        np.testing.assert_array_equal(jw.load_setfunction_market(p).values, cm.values)
    d = {"items": ["L", "R"], "buyers": [
        {"name": "alice", "bids": [{"items": [0, 1], "value": 10, "id": 5}]},
        {"name": "bob", "bids": [{"items": [0], "value": 6, "id": 6},
                                 {"items": [1], "value": 6, "id": 9}]}]}
    cm, names = jw.load_setfunction_market(_write(tmp_path, "s.json", d), with_names=True)
    np.testing.assert_array_equal(cm.values, jw.examples.shoes().values)
    assert names == {"buyers": ["alice", "bob"], "bids": [[5], [6, 9]], "items": ["L", "R"]}
    jw.save_setfunction_market(cm, tmp_path / "s2.json", names=names)
    assert jw.load_setfunction_market(tmp_path / "s2.json", with_names=True)[1] == names


def test_setfunction_bad_files(tmp_path):
    cases = [({"items": 2, "buyers": [{"bids": [{"items": [2], "value": 1}]}]},
              "buyers[0].bids[0].items", "item 2 does not exist"),
             ({"items": 2, "buyers": [{"bids": [{"items": [0], "value": -1}]}]},
              "buyers[0].bids[0].value", ">= 0"),
             ({"items": 17, "buyers": []}, "items", ""),
             ({"items": 2, "buyers": [{"bids": [{"items": [0], "value": 1, "price": 2}]}]},
              "buyers[0].bids[0].price", "unknown key 'price'")]
    for content, where, what in cases:
        with pytest.raises(FormatError) as e:
            jw.load_setfunction_market(_write(tmp_path, "s.json", content))
        assert f": {where}: " in str(e.value) and what in str(e.value), str(e.value)


# ------------------------------------------------------------------ CATS
CATS_QUIRKS = """% a hand-written CATS file: sparse dummy ids (the header's 'dummy 9' is only a bound)
% and a bidder whose single bid carries a dummy no other bid has
goods 3
bids 6
dummy 9

0\t5.5\t0\t1\t#
1\t3\t2\t#
10\t4.25\t0\t7\t#
11\t2\t1\t2\t7\t#
12\t6\t0\t1\t2\t7\t#
20\t1.5\t2\t11\t#
"""


def test_cats_reader_groups_bidders_by_dummy_goods(tmp_path):
    cats = jw.read_cats(_write(tmp_path, "q.txt", CATS_QUIRKS))
    assert cats.n_goods == 3 and cats.bidders == [[0], [1], [10, 11, 12], [20]]
    v = cats.market.values
    # independent check: the value of every set is the best bid of that bidder inside it
    bids = {0: [({0, 1}, 5.5)], 1: [({2}, 3.0)], 2: [({0}, 4.25), ({1, 2}, 2.0),
                                                     ({0, 1, 2}, 6.0)], 3: [({2}, 1.5)]}
    for i, blist in bids.items():
        for S in range(8):
            items = {j for j in range(3) if (S >> j) & 1}
            want = max([val for b, val in blist if b <= items], default=0.0)
            assert v[i, S] == want


@pytest.mark.parametrize("gen", ["arbitrary", "regions", "paths", "scheduling"])
def test_cats_round_trip_with_the_generators(tmp_path, gen):
    cm = getattr(jw.cats, gen)(n_bidders=5, m=8, seed=4)
    keep = cm.values.max(-1) > 0                       # buyers with a bid
    p = tmp_path / f"{gen}.txt"
    ids = jw.write_cats(cm, p, comment=f"CATS {gen}")
    back = jw.read_cats(p)
    np.testing.assert_array_equal(back.market.values, cm.values[keep])
    assert back.bidders == ids
    assert sorted(sum(ids, [])) == list(range(sum(len(b) for b in ids)))


@pytest.mark.parametrize("content,where,what", [
    ("goods 2\nbids 1\n", "", "not a CATS file"),
    ("goods two\nbids 1\ndummy 0\n0\t1\t0\t#\n", "line 1", "whole number"),
    ("goods 2\nbids 1\ndummy 0\n0\t1\t0\n", "line 4", "must end with '#'"),
    ("goods 2\nbids 1\ndummy 0\n0\t1\t5\t#\n", "line 4", "good 5 is out of range"),
    ("goods 2\nbids 2\ndummy 0\n0\t1\t0\t#\n0\t2\t1\t#\n", "line 5", "bid id 0 appears twice"),
    ("goods 2\nbids 3\ndummy 0\n0\t1\t0\t#\n", "", "says 'bids 3' but the file has 1"),
    ("goods 20\nbids 0\ndummy 0\n", "line 1", "at most 16 goods"),
    ("goods 2\nbids 1\ndummy 0\n0\tx\t0\t#\n", "line 4", "expected 'id price good ... #'"),
])
def test_cats_bad_files(tmp_path, content, where, what):
    p = _write(tmp_path, "bad.txt", content)
    with pytest.raises(FormatError) as e:
        jw.read_cats(p)
    msg = str(e.value)
    assert what in msg and (not where or f": {where}: " in msg), msg


# ------------------------------------------------------------------ results
def _all_results():
    mkt = jw.MultiUnitMarket([[4, 4], [5, 3]], demands=[2, 1], supplies=[1, 1])
    eco = jw.examples.milgrom_watt_table1()
    cm = jw.examples.shoes()
    ce = jw.convexified_equilibrium(eco, markup=0.3, reserve=1.0, method="lp")
    yield jw.buyer_optimal_equilibrium(mkt)
    yield ce
    yield jw.convexified_equilibrium(eco, reserve=1e3)               # NaN prices
    yield jw.shapley_folkman_rounding(eco, ce.prices, 0.3, ce.buyer_weights, ce.seller_weights)
    yield jw.markup_mechanism(eco)
    yield jw.rationing_mechanism(eco)
    yield jw.efficient_allocation(eco)
    yield jw.welfare_bound(eco, [0.5], np.r_[np.ones(6, int), np.zeros(4, int)], [4])
    yield jw.optimal_allocation(cm)
    yield jw.walrasian_equilibrium(cm)
    yield jw.ascending_auction(jw.SetFunctionMarket.unit_demand([[3, 1], [3, 2]]))
    yield jw.combinatorial_walrasian_equilibrium(cm)
    yield jw.best_item_price_welfare(cm)


def test_every_result_round_trips_exactly(tmp_path):
    for k, r in enumerate(_all_results()):
        p = tmp_path / f"r{k}.json"
        jw.save_result(r, p)
        json.loads(p.read_text())                     # strict JSON (no NaN literals)
        back = jw.load_result(p)
        assert type(back) is type(r)
        for name, a, b in zip(r._fields, r, back):
            if isinstance(a, dict):
                assert a == b, name
            else:
                a, b = np.asarray(a), np.asarray(b)
                assert a.shape == b.shape and a.dtype.kind == b.dtype.kind, name
                np.testing.assert_array_equal(a, b, err_msg=name)   # NaN == NaN here


def test_result_json_bad_input(tmp_path):
    with pytest.raises(TypeError, match="result NamedTuples"):
        jw.result_to_json({"prices": [1]})
    with pytest.raises(FormatError, match="unknown result type 'Nope'"):
        jw.result_from_json(json.dumps({"format": "jaxwalras.result/1", "type": "Nope",
                                        "fields": {}}))
    good = json.loads(jw.result_to_json(jw.optimal_allocation(jw.examples.shoes())))
    good["fields"]["extra"] = 1
    with pytest.raises(FormatError, match="unknown field 'extra'"):
        jw.result_from_json(json.dumps(good))
    with pytest.raises(FormatError, match="not a jaxwalras result"):
        jw.load_result(_write(tmp_path, "x.json", {"prices": [1]}))


# ------------------------------------------------------------------ menu economies
def test_menu_economy_round_trip_with_names_and_batches(tmp_path):
    eco = jw.examples.fixed_cost_economy(3, n_buyers=4, n_sellers=2, n_goods=2)
    named = jw.MenuEconomy(eco.buyer_bundles, eco.buyer_values, eco.seller_bundles,
                           eco.seller_costs, eco.buyer_mask, eco.seller_mask,
                           buyer_names=["a", "b", "c", "d"], seller_names=["s", "t"])
    p = tmp_path / "e.json"
    jw.save_economy(named, p, goods=["x", "y"])
    back, names = jw.load_economy(p, with_names=True)
    assert back.buyer_names == ("a", "b", "c", "d") and back.seller_names == ("s", "t")
    assert names["goods"] == ["x", "y"]
    for f in ("buyer_bundles", "buyer_values", "seller_bundles", "seller_costs"):
        mask = np.asarray(eco.buyer_mask if "buyer" in f else eco.seller_mask)
        np.testing.assert_array_equal(np.asarray(getattr(back, f))[mask],
                                      np.asarray(getattr(eco, f))[mask])
    batch = jw.examples.random_menu_economy(5, 2, 3, 3, 2, seed=1, batch_shape=(3,))
    jw.save_economy(batch, tmp_path / "b.json")
    back = jw.load_economy(tmp_path / "b.json")
    assert back.batch_shape == (3,)
    ce1 = jw.convexified_equilibrium(batch, method="lp")
    ce2 = jw.convexified_equilibrium(back, method="lp")
    np.testing.assert_allclose(ce1.prices, ce2.prices, rtol=1e-12)


@pytest.mark.parametrize("content,where,what", [
    ({"buyers": [{"options": [{"bundle": [1], "value": 1}]}],
      "sellers": [{"options": [{"bundle": [1], "cost": 1, "costs": 2}]}]},
     "sellers[0].options[0].costs", "unknown key 'costs'"),
    ({"buyers": [], "sellers": [{"options": []}]}, "buyers", "at least 1 entry"),
    ({"goods": ["a", "b"], "buyers": [{"options": [{"bundle": [1], "value": 1}]}],
      "sellers": [{"options": []}]}, "buyers[0].options[0].bundle", "expected L=2"),
    ({"buyers": [{"options": [{"bundle": [1], "value": "1"}]}], "sellers": [{"options": []}]},
     "buyers[0].options[0].value", "must be a number, got '1'"),
])
def test_menu_economy_bad_files(tmp_path, content, where, what):
    p = _write(tmp_path, "bad.json", content)
    with pytest.raises(FormatError) as e:
        jw.load_economy(p)
    assert f": {where}: " in str(e.value) and what in str(e.value), str(e.value)
