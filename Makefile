# Quickstart targets. Each creates .venv on first use and installs what it needs.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test bench clean

$(STAMP): setup.py
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "$(PYTHON) not found: set PYTHON=/path/to/python3.11"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev,rl,lmdb]" --config-settings editable_mode=compat
	touch $(STAMP)

demo: $(STAMP)
	$(PY) scripts/demo.py
	@echo "The README's commands run in $(VENV): source $(VENV)/bin/activate (or use $(PY) for python)."

test: $(STAMP)
	$(PY) -m pytest -q -n 2 tests

bench: $(STAMP)
	for b in bench/bench_*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info
