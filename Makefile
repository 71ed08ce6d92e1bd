# nightstand: `make demo` and `make test` set themselves up (a local .venv with pinned packages).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DATA   ?= ../shared/data
OUT    ?= build

.PHONY: setup test demo bench bench-accuracy lint clean

setup: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt constraints.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check \
		-r requirements.txt -r requirements-dev.txt -c constraints.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $(STAMP)

test: setup
	$(BIN)/python -m pytest -q -n 2 tests

demo: setup
	$(BIN)/nightstand demo --out $(OUT)/demo

bench: setup
	$(BIN)/python tests/bench/bench_sim.py
	$(BIN)/python tests/bench/bench_pipeline_cpu.py
	$(BIN)/python tests/bench/bench_flash.py
	$(BIN)/python tests/bench/bench_sync.py
	$(BIN)/python tests/bench/bench_lamp.py
	$(BIN)/python tests/bench/bench_report.py

bench-accuracy: setup
	$(BIN)/python tests/bench/bench_accuracy.py --data $(DATA)

lint: setup
	$(BIN)/ruff check firmware host_tools tests

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache .hypothesis
