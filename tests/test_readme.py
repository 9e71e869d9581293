"""The README's snippets run and print exactly what they show.

Every ```pycon block is a doctest run in a fresh namespace (each block is self-contained).
Python snippets must be written as ```pycon blocks, so that what they print is checked."""
from __future__ import annotations

import doctest
import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"
TEXT = README.read_text()
PYCON = re.findall(r"```pycon\n(.*?)```", TEXT, flags=re.S)
PYTHON = re.findall(r"```python\n(.*?)```", TEXT, flags=re.S)


@pytest.mark.parametrize("k", range(len(PYCON)))
def test_readme_pycon_block_prints_what_it_shows(k):
    parser = doctest.DocTestParser()
    test = parser.get_doctest(PYCON[k], {}, f"README.md[pycon block {k}]", str(README), 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    assert runner.failures == 0, f"README pycon block {k}: {runner.failures} example(s) " \
                                 "printed something else (see the captured output above)"


def test_readme_has_snippets_and_names_the_two_commands():
    assert PYCON, "README has no pycon snippets"
    assert not PYTHON, "write README snippets as ```pycon doctests so their output is checked"
    assert "make demo" in TEXT and "make test" in TEXT
