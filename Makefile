# doerunner: the two commands a new user needs are `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
CASES  ?= cases/smoke.csv
OUT    ?= metrics.csv

.PHONY: run test test-all lint bench floors install install-dev install-hf tiny-model clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	touch $@

# torch first, pinned to the CPU wheel: a plain `torch` requirement resolved by pip would pull
# a multi-GB CUDA build. On a GPU machine install the torch build you want before this.
$(VENV)/.installed-hf: pyproject.toml | $(BIN)/python
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[hf]'
	touch $@ $(VENV)/.installed

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.installed-hf | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev,hf]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-hf: $(VENV)/.installed-hf
install-dev: $(VENV)/.installed-dev

## tiny-model: a tiny random-weight causal LM and tokenizer, built offline (for cases/hf_sweep.csv)
tiny-model: install-hf
	$(BIN)/python examples/make_tiny_model.py examples/tiny-model

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

## bench: the benchmarks (overhead needs hyperfine: apt-get install hyperfine)
bench: install-dev
	$(BIN)/python benchmarks/overhead.py
	$(BIN)/python benchmarks/energy_accuracy.py
	$(BIN)/python benchmarks/hf_overhead.py
	$(BIN)/python benchmarks/capture.py --bytes 512M
	$(BIN)/python benchmarks/memory.py

## floors: the declared dependency floors (lowest direct versions) in .venv-floors, and the hf
## and telemetry tests run on them (downloads torch at its floor: about 2.6 GB)
floors:
	$(PYTHON) tests/floors.py --venv .venv-floors

clean:
	rm -rf $(VENV) .venv-floors metrics.csv metrics_run .pytest_cache .ruff_cache
