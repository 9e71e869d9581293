"""Every ``Examples`` section in the library's docstrings runs and prints what it says."""
from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import jaxwalras

MODULES = sorted(m.name for m in pkgutil.walk_packages(jaxwalras.__path__, "jaxwalras.")
                 if not m.name.endswith("__main__"))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    result = doctest.testmod(module, optionflags=flags, verbose=False, report=True)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"
