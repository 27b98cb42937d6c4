# Two entry points: `make run` (set up, annotate the bundled sample) and `make test` (set up, run tests).
# Setup is idempotent: the venv is rebuilt only when pyproject.toml or constraints.txt change.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Every pip call goes through the constraints file, which pins torch to the CPU wheel on disk.
export PIP_CONSTRAINT := $(CURDIR)/constraints.txt
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: setup run test lint bench clean

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

setup: $(STAMP)

run: setup
	$(BIN)/trialsift annotate data/sample/studies.jsonl.gz data/seeds/IM96.txt data/seeds/TH-CART-027.txt \
		-o out/annotations.jsonl

test: setup
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check nlp index service tests benchmarks
	$(BIN)/ruff format --check nlp index service tests benchmarks
	$(BIN)/mypy

bench: setup
	$(BIN)/python -m pip install -q -e '.[dev,bench]'
	$(BIN)/python benchmarks/score_dev.py
	$(BIN)/python benchmarks/outcome_speed.py
	$(BIN)/python benchmarks/study_speed.py

clean:
	rm -rf $(VENV) out
