# The two commands a new user needs (see README):  make demo   and   make test
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test typecheck docs notebooks bench bench-quick clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m ipykernel install --user --name python3 >/dev/null 2>&1 || true
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/jaxwalras demo

test: $(STAMP)
	$(PY) -m pytest -n 2 --dist loadfile -q -m "not isolated"
	$(PY) -m pytest -q -m isolated

typecheck: $(STAMP)
	$(PY) -m mypy

docs: $(STAMP)
	$(PY) -m sphinx -W --keep-going -b html -q docs docs/_build/html
	@echo "docs built: docs/_build/html/index.html"

notebooks: $(STAMP)
	$(PY) notebooks/execute.py

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis docs/_build docs/_notebooks
