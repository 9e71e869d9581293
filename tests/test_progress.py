"""Progress bars: silent by default, a tqdm bar on stderr on request, the same answers."""
from __future__ import annotations

import numpy as np
import pytest

import jaxwalras as jw


@pytest.fixture(scope="module")
def economy():
    return jw.examples.milgrom_watt_table1()


SOLVERS = {
    "convexified": lambda e, **k: jw.convexified_equilibrium(e, method="lp", **k),
    "markup": lambda e, **k: jw.markup_mechanism(e, method="grid", backend="host", n_grid=4,
                                                 refine_rounds=1, **k),
    "rationing": lambda e, **k: jw.rationing_mechanism(e, backend="host", **k),
    "efficient": lambda e, **k: jw.efficient_allocation(e, **k),
    # a multi-unit batch (host max flows: one bar update per round)
    "auction": lambda e, **k: jw.buyer_optimal_equilibrium(
        jw.MultiUnitMarket.stack([jw.MultiUnitMarket([[5, 3], [4, 4]], [1, 2], [1, 1]),
                                  jw.MultiUnitMarket([[2, 7], [6, 1]], [2, 1], [1, 2])]),
        backend="host", **k),
    # a set-function batch: the shoes and shirts markets (Lucier's examples)
    "cwe": lambda e, **k: jw.combinatorial_walrasian_equilibrium(
        jw.SetFunctionMarket.stack([jw.examples.shoes(), jw.examples.shirts(2)]), **k),
}


@pytest.mark.parametrize("name", sorted(SOLVERS))
def test_bar_only_on_request_and_same_answer(name, economy, capsys, monkeypatch):
    monkeypatch.delenv("JAXWALRAS_PROGRESS", raising=False)
    solve = SOLVERS[name]
    quiet = solve(economy)
    out = capsys.readouterr()
    assert out.err == "" and out.out == ""
    loud = solve(economy, progress=True)
    err = capsys.readouterr().err
    assert "|" in err and "/s" in err, f"{name}: progress=True drew no bar: {err!r}"
    for f in quiet._fields:
        if f == "timings":
            continue
        a, b = np.asarray(getattr(quiet, f)), np.asarray(getattr(loud, f))
        if a.dtype.kind in "fc":
            np.testing.assert_array_equal(np.nan_to_num(a), np.nan_to_num(b), err_msg=f)
        else:
            np.testing.assert_array_equal(a, b, err_msg=f)


def test_environment_variable_switches_bars_on(economy, capsys, monkeypatch):
    monkeypatch.setenv("JAXWALRAS_PROGRESS", "1")
    jw.convexified_equilibrium(economy, method="lp")
    assert capsys.readouterr().err.strip()
    jw.convexified_equilibrium(economy, method="lp", progress=False)   # explicit wins
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("bad", ["yes", 2.5, [True]])
def test_bad_progress_value_is_refused(economy, bad):
    with pytest.raises(TypeError, match="progress: must be True, False or None"):
        jw.convexified_equilibrium(economy, method="lp", progress=bad)
