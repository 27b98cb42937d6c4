# Two entry points: `make run` (set up, index the bundled sample, search it) and `make test` (set up, run tests).
# Setup is idempotent: the venv is rebuilt only when pyproject.toml or constraints.txt change.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Every pip call goes through the constraints file, which pins torch to the CPU wheel on disk.
export PIP_CONSTRAINT := $(CURDIR)/constraints.txt
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: setup run annotate test lint bench clean

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

setup: $(STAMP)

# The first run builds out/index (extract + embed, with progress); later runs find every study already indexed.
INDEX_INPUTS := data/seeds/IM96.txt data/seeds/TH-CART-027.txt data/sample/studies.jsonl.gz
INDEX_LIMIT ?= 1200

run: setup
	$(BIN)/trialsift index build $(INDEX_INPUTS) --limit $(INDEX_LIMIT) --out out/index
	$(BIN)/trialsift search --index out/index -k 5 \
		"objective response rate 3 months after CAR-T infusion" \
		"dose-limiting toxicity within 28 days" --phase 1
	$(BIN)/trialsift similar --index out/index -k 5 IM96 TH-CART-027

annotate: setup
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
