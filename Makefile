# Two entry points: `make run` (set up, load the bundled sample into the service's store, serve the HTTP API)
# and `make test` (set up, run tests).
# Setup is idempotent: the venv is rebuilt only when pyproject.toml or constraints.txt change.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
# Every pip call goes through the constraints file, which pins torch to the CPU wheel on disk.
export PIP_CONSTRAINT := $(CURDIR)/constraints.txt
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: setup setup-dev run demo annotate test lint bench clean

# `make run` installs the package alone; tests, lint and benchmarks add the dev tools and Ray (the optional
# `ray` extra, which the Ray backend's tests need).
$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -e .
	@touch $(STAMP)

$(DEV_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q -e '.[dev,ray]'
	@touch $(DEV_STAMP)

setup: $(STAMP)

setup-dev: $(DEV_STAMP)

# The first run loads the bundled studies into out/data (read, extract, embed: a progress line on stderr); later
# runs find them stored and start serving in seconds. Writes over HTTP need TRIALSIFT_WRITE_KEY set.
SERVE_INPUTS := data/seeds/IM96.txt data/seeds/TH-CART-027.txt data/sample/studies.jsonl.gz
LOAD_LIMIT ?= 1200
HOST ?= 127.0.0.1
PORT ?= 8000
WORKERS ?= 1

run: setup
	$(BIN)/trialsift serve $(SERVE_INPUTS) --limit $(LOAD_LIMIT) --data-dir out/data \
		--host $(HOST) --port $(PORT) --workers $(WORKERS)

# The command-line search demo: build out/index, search it, find similar trials.
demo: setup
	$(BIN)/trialsift index build $(SERVE_INPUTS) --limit $(LOAD_LIMIT) --out out/index
	$(BIN)/trialsift search --index out/index -k 5 \
		"objective response rate 3 months after CAR-T infusion" \
		"dose-limiting toxicity within 28 days" --phase 1
	$(BIN)/trialsift similar --index out/index -k 5 IM96 TH-CART-027

annotate: setup
	$(BIN)/trialsift annotate data/sample/studies.jsonl.gz data/seeds/IM96.txt data/seeds/TH-CART-027.txt \
		-o out/annotations.jsonl

test: setup-dev
	$(BIN)/python -m pytest -q

lint: setup-dev
	$(BIN)/ruff check nlp index service tests benchmarks
	$(BIN)/ruff format --check nlp index service tests benchmarks
	$(BIN)/mypy

bench: setup-dev
	$(BIN)/python -m pip install -q -e '.[dev,ray,bench]'
	$(BIN)/python benchmarks/score_dev.py
	$(BIN)/python benchmarks/outcome_speed.py
	$(BIN)/python benchmarks/study_speed.py

clean:
	rm -rf $(VENV) out
