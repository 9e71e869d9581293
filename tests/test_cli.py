"""The command line: every command on good and bad files, the --json contracts, exit codes."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import jaxwalras as jw
from jaxwalras import cli


def run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_version(capsys):
    assert cli.main(["version"]) == 0
    assert capsys.readouterr().out.strip() == jw.__version__
    with pytest.raises(SystemExit) as e:
        cli.main(["--version"])
    assert e.value.code == 0 and jw.__version__ in capsys.readouterr().out


def test_demo_multiunit_section():
    from jaxwalras.demo import demo_multiunit
    lines = []
    demo_multiunit(lines.append, n_markets=40)
    text = "\n".join(lines)
    assert "[4, 2]" in text                      # the worked example: p* = (4, 2)
    assert "allocations Walrasian: 40/40" in text
    assert "prices equal the HiGHS LP on 20/20" in text


def test_unknown_command_is_a_clear_error(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["frobnicate"])
    assert e.value.code == 2 and "invalid choice" in capsys.readouterr().err


def test_console_script_is_installed():
    out = subprocess.run([sys.executable, "-m", "jaxwalras.cli", "version"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip()


# ------------------------------------------------------------------ auction
def test_auction_json_contract(tmp_path, capsys):
    p = tmp_path / "m.json"
    p.write_text(json.dumps({"values": [[4, 4], [5, 3]], "demands": [2, 1],
                             "supplies": [1, 1], "objects": ["left", "right"]}))
    code, out, _ = run(capsys, "auction", p, "--json")
    d = json.loads(out)
    assert code == 0 and d["prices"] == [4, 2] and all(isinstance(x, int) for x in d["prices"])
    mkt = jw.MultiUnitMarket([[4, 4], [5, 3]], [2, 1], [1, 1])
    assert jw.check_walrasian(mkt, d["prices"], d["allocation"]) == []   # independent check
    code, out, _ = run(capsys, "auction", p)
    assert code == 0 and "left=4, right=2" in out


def test_auction_batch_file(tmp_path, capsys):
    p = tmp_path / "b.json"
    p.write_text(json.dumps({"markets": [
        {"values": [[3, 4], [2, 1]], "demands": [1, 3], "supplies": [1, 1]},
        {"values": [[10], [4]], "demands": [2, 1], "supplies": [2]}]}))
    code, out, _ = run(capsys, "auction", p, "--json", "--step", "unit")
    d = json.loads(out)
    assert code == 0 and [m["prices"] for m in d["markets"]] == [[0, 1], [4, 0]]


@pytest.mark.parametrize("content,place", [
    ({"values": [[1, 2]], "demands": [1], "supplies": [1, 1], "valuez": 0}, "valuez"),
    ({"values": [[1, -2]], "demands": [1], "supplies": [1, 1]}, "values[0][1]"),
    ("{not json", "line 1 column 2"),
])
def test_auction_bad_files_one_line_exit_2(tmp_path, capsys, content, place):
    p = tmp_path / "bad.json"
    p.write_text(content if isinstance(content, str) else json.dumps(content))
    code, out, err = run(capsys, "auction", p)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and str(p) in err and place in err and "Traceback" not in err


# ------------------------------------------------------------------ menu economies
@pytest.fixture
def table1(tmp_path):
    p = tmp_path / "t1.json"
    jw.save_economy(jw.examples.milgrom_watt_table1(), p)
    return p


def test_convexified_markup_rationing_commands(table1, capsys):
    code, out, _ = run(capsys, "convexified", table1, "--json")
    d = json.loads(out)
    assert code == 0 and d["prices"] == pytest.approx([0.5]) and d["converged"]
    code, out, _ = run(capsys, "markup", table1, "--json")
    d = json.loads(out)
    # the paper's markup outcome: 4 units, buyers 1-6 served, buyer price ~0.629
    assert code == 0 and d["seller_choice"] == [4] and d["buyer_choice"][:6] == [1] * 6
    assert d["buyer_prices"][0] == pytest.approx(0.6289, abs=1e-4)
    assert d["budget_surplus"] >= 0 and d["certified_minimal"]
    code, out, _ = run(capsys, "rationing", table1, "--json")
    d = json.loads(out)
    assert code == 0 and d["prices"] == pytest.approx([0.5]) and d["seller_choice"] == [3]
    code, out, _ = run(capsys, "markup", table1)
    assert code == 0 and "markup alpha" in out


def test_progress_bars_follow_the_terminal(table1, capsys, monkeypatch):
    # not a terminal (pytest captures stderr): no bar; a terminal: a bar unless --no-progress
    monkeypatch.delenv("JAXWALRAS_PROGRESS", raising=False)
    code, _, err = run(capsys, "rationing", table1, "--backend", "host")
    assert code == 0 and err == ""
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    code, _, err = run(capsys, "rationing", table1, "--backend", "host")
    assert code == 0 and "rationing" in err and "/s" in err
    code, _, err = run(capsys, "rationing", table1, "--backend", "host", "--no-progress")
    assert code == 0 and err == ""


def test_markup_without_solution_exits_1(tmp_path, capsys):
    X = np.array([[[0, 0], [2, 0], [0, 2]]], float)
    eco = jw.MenuEconomy(X, np.array([[0, 3.0, 3.0]]), np.array([[[0, 0], [1, 1]]], float),
                         np.array([[0, 0.5]]))
    p = tmp_path / "e.json"
    jw.save_economy(eco, p)
    code, out, _ = run(capsys, "markup", p, "--reserve", "none")
    assert code == 1 and "status 3" in out and "NOT a valid markup outcome" in out


def test_menu_bad_options_and_files(table1, tmp_path, capsys):
    code, _, err = run(capsys, "convexified", table1, "--rtol", "-1")
    assert code == 2 and "rtol" in err
    with pytest.raises(SystemExit):
        cli.main(["markup", str(table1), "--reserve", "lots"])
    capsys.readouterr()
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"buyers": [], "sellers": []}))
    code, _, err = run(capsys, "rationing", bad)
    assert code == 2 and str(bad) in err and err.count("\n") == 1


# ------------------------------------------------------------------ combinatorial
SHOES_CATS = "goods 2\nbids 3\ndummy 1\n\n0\t10\t0\t1\t#\n1\t6\t0\t2\t#\n2\t6\t1\t2\t#\n"


def test_we_and_cwe_on_a_cats_file(tmp_path, capsys):
    p = tmp_path / "shoes.txt"
    p.write_text(SHOES_CATS)
    code, out, _ = run(capsys, "we", p, "--json")
    d = json.loads(out)
    assert code == 0 and d["exists"] is False and "prices" not in d   # shoes: no WE
    assert d["bidders"] == [[0], [1, 2]]
    code, out, _ = run(capsys, "cwe", p, "--json")
    d = json.loads(out)
    assert code == 0 and d["bidders"] == [[0], [1, 2]]
    assert d["bundles"] == [[0, 1]] and d["holders"] == [0] and d["welfare"] == 10.0
    # independent check of the CWE, with the goods in the answer's terms
    masks = [sum(1 << j for j in b) for b in d["bundles"]]
    assert jw.check_cwe(jw.examples.shoes(), masks, d["prices"], d["holders"],
                        atol=max(d["tol"])) == []


def test_we_on_a_json_file_with_a_walrasian_equilibrium(tmp_path, capsys):
    p = tmp_path / "ud.json"
    p.write_text(json.dumps({"items": ["x", "y"], "buyers": [
        {"name": "a", "bids": [{"items": [0], "value": 3}, {"items": [1], "value": 1}]},
        {"name": "b", "bids": [{"items": [0], "value": 3}, {"items": [1], "value": 2}]}]}))
    code, out, _ = run(capsys, "we", p, "--json", "--minimal-prices")
    d = json.loads(out)
    assert code == 0 and d["exists"] and d["bidders"] == [0, 1] and d["names"] == ["a", "b"]
    # independent check: every buyer gets a utility-maximising set at the prices
    vals = jw.load_setfunction_market(p).values
    for i, got in enumerate(d["allocation"]):
        util = [vals[i, S] - sum(d["prices"][j] for j in range(2) if S >> j & 1)
                for S in range(4)]
        held = vals[i, sum(1 << j for j in got)] - sum(d["prices"][j] for j in got)
        assert held >= max(util) - 1e-6 * 3      # WE tolerance: 1e-6 of the value scale


def test_combinatorial_bad_files(tmp_path, capsys):
    p = tmp_path / "bad.txt"
    p.write_text("goods 2\nbids 1\ndummy 0\n0\t1\t7\t#\n")
    code, _, err = run(capsys, "cwe", p)
    assert code == 2 and "line 4" in err and "out of range" in err
    code, _, err = run(capsys, "we", tmp_path / "nope.txt")
    assert code == 2 and "cannot read the file" in err
    q = tmp_path / "bad.json"
    q.write_text(json.dumps({"items": 2, "buyers": [{"bidz": []}]}))
    code, _, err = run(capsys, "we", q)
    assert code == 2 and "buyers[0]" in err
