"""Sphinx configuration: API reference from the numpydoc docstrings, the math pages (MyST
Markdown), the README tour and the executed notebooks (rendered with their stored outputs).

Build with ``make docs`` (warnings are errors)."""
from __future__ import annotations

import os
import pathlib
import shutil
import sys

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

# The notebooks live in ../notebooks (where the tests execute them); Sphinx renders files
# under this folder only, so a copy goes to _notebooks/ at every build.
_nb = HERE / "_notebooks"
shutil.rmtree(_nb, ignore_errors=True)
shutil.copytree(ROOT / "notebooks", _nb, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))

import jaxwalras  # noqa: E402

project = "jaxwalras"
author = "the jaxwalras developers"
release = version = jaxwalras.__version__
copyright = "2026, the jaxwalras developers"

extensions = [
    "myst_nb",                 # Markdown (MyST) pages and notebooks
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",     # numpydoc-style docstrings
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
]
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 3
nb_execution_mode = "off"      # the notebooks are executed by the test suite; render outputs
source_suffix = {".md": "myst-nb", ".ipynb": "myst-nb"}
suppress_warnings = ["myst.header"]   # the README tour starts at level 3 headings
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "_notebooks/.ipynb_checkpoints"]

autodoc_member_order = "bysource"
autodoc_typehints = "none"     # signatures are shown; types are documented in the docstrings
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_ivar = True       # "Attributes" of result NamedTuples as :ivar: (no duplicates)
napoleon_use_rtype = False

html_theme = "furo" if os.environ.get("JAXWALRAS_DOCS_THEME", "furo") == "furo" else "alabaster"
html_title = f"jaxwalras {version}"
