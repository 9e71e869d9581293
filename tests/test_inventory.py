"""tests/README.md lists every public function with its oracle, bad-input and batch tests;
this fails when a public function has no row, a row names a test that does not exist, or a
cell is empty (write the test's name, ``n/a: reason`` or ``gap``)."""
from __future__ import annotations

import inspect
import pathlib
import re

import jaxwalras as jw

HERE = pathlib.Path(__file__).resolve().parent
ROWS = re.findall(r"^\| `(\w+)` \|(.*)\|\s*$", (HERE / "README.md").read_text(), flags=re.M)


def public_functions():
    return sorted(n for n in jw.__all__
                  if callable(getattr(jw, n)) and not inspect.isclass(getattr(jw, n)))


def test_every_public_function_has_a_row():
    names = [r[0] for r in ROWS]
    missing = sorted(set(public_functions()) - set(names))
    assert not missing, f"tests/README.md has no row for {missing}"
    stale = sorted(set(names) - set(public_functions()))
    assert not stale, f"tests/README.md lists names that are not public functions: {stale}"
    assert len(names) == len(set(names)), "a function is listed twice"


def test_named_tests_exist_and_cells_are_filled():
    defined = {}
    for f in HERE.glob("test_*.py"):
        defined[f.stem[5:]] = set(re.findall(r"^def (test_\w+)", f.read_text(), flags=re.M))
    for name, rest in ROWS:
        cells = [c.strip() for c in rest.split("|")]
        assert len(cells) == 3, (name, cells)
        for cell in cells:
            refs = re.findall(r"(\w+)::(test_\w+)", cell)
            assert refs or cell.startswith(("n/a:", "gap")), (name, cell)
            for mod, test in refs:
                assert test in defined.get(mod, set()), f"{name}: {mod}::{test} does not exist"
