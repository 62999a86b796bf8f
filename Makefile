# doerunner: the two commands a new user needs are `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
CASES  ?= cases/smoke.csv
OUT    ?= metrics.csv

.PHONY: run test test-all lint bench install install-dev clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

## run: create .venv, install, run the example cases into metrics.csv
run: install
	$(BIN)/srd run --cases $(CASES) --out $(OUT); code=$$?; \
	echo "srd exited $$code (0 ok, 2 thresholds violated, 3 a case failed)"; \
	test $$code -eq 0 -o $$code -eq 2 -o $$code -eq 3

## test: install the dev extras and run the default (fast) test suite
test: install-dev
	$(BIN)/python -m pytest -q

## test-all: also the slow tests
test-all: install-dev
	$(BIN)/python -m pytest -q -m ''

lint: install-dev
	$(BIN)/ruff check .

## bench: the benchmarks (needs hyperfine: apt-get install hyperfine)
bench: install-dev
	$(BIN)/python benchmarks/overhead.py

clean:
	rm -rf $(VENV) metrics.csv metrics_run .pytest_cache .ruff_cache
