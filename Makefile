# bnnlv — make help lists the targets. Every target sets up .venv first if it is missing.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The CPU build of torch that installs from a local file here; override for CUDA, e.g.
#   make TORCH_SPEC='torch' train
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.installed
ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help setup train test test-all lint format typecheck clean bench bench-toy bench-wet-chicken bench-uci bench-policy bench-tutorial bench-active bench-replicas bench-update

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*## "}{printf "  %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[dev,sweep]"
	touch $(STAMP)

setup: $(STAMP) ## create .venv and install bnnlv with its dev tools

train: $(STAMP) ## bnnlv train on the default config (ARGS='alpha=1.0 ...' for overrides)
	$(BIN)/bnnlv train $(ARGS)

test: $(STAMP) ## the fast test suite
	$(BIN)/python -m pytest -q

test-all: $(STAMP) ## every test, including those marked slow
	$(BIN)/python -m pytest -q -m ""

lint: $(STAMP) ## ruff check + format check + mypy
	$(BIN)/ruff check bnnlv tests scripts
	$(BIN)/ruff format --check bnnlv tests scripts
	$(BIN)/mypy

format: $(STAMP) ## ruff format and autofix
	$(BIN)/ruff format bnnlv tests scripts
	$(BIN)/ruff check --fix bnnlv tests scripts

bench: $(STAMP) ## speed and memory (ARGS='--device cuda', '--autograd', '--quick') → outputs/benchmarks/bench.md
	$(BIN)/python scripts/bench.py $(ARGS)

bench-toy: $(STAMP) ## toy benchmark: bnn_lv (both noise models) beside bnn, mlp, het_mlp, ensemble and the true generator → outputs/benchmarks/toy.md
	$(BIN)/python scripts/bench_toy.py $(ARGS)

bench-wet-chicken: $(STAMP) ## Wet-Chicken y' test LL over 5 seeds → outputs/benchmarks/wet_chicken.md
	$(BIN)/python scripts/bench_wet_chicken.py $(ARGS)

bench-policy: $(STAMP) ## Wet-Chicken policy search, Table 1 analogue (bnn_lv, bnn, mlp, ensemble dynamics) + risk grid, 5 seeds → outputs/benchmarks/policy.md
	$(BIN)/python scripts/bench_policy.py $(ARGS)

bench-uci: $(STAMP) ## UCI benchmark, all splits, a group of runs on each core (ARGS='--splits 0-2 --jobs 1') → outputs/benchmarks/uci.md
	$(BIN)/python scripts/bench_uci.py $(ARGS)

bench-tutorial: $(STAMP) ## the published tutorial vs experiment=seed_tutorial, side by side (ARGS='--repeats 3'; its venv: bash scripts/tutorial/setup_luq.sh) → outputs/benchmarks/tutorial.md
	$(BIN)/python scripts/bench_tutorial.py $(ARGS)

bench-replicas: $(STAMP) ## fit time of R = 1, 2, 4, 8, 16, 64 seeds of the default run trained together, one thread (ARGS='--epochs 50' for a quick look) → outputs/benchmarks/replicas.md
	$(BIN)/python scripts/bench_replicas.py $(ARGS)

bench-update: $(STAMP) ## one training update alone for R = 1 and 8 replicas, and its heaviest operations (ARGS='experiment=seed_tutorial') → outputs/benchmarks/update.md
	$(BIN)/python scripts/bench_update.py $(ARGS)

bench-active: $(STAMP) ## active learning, epistemic vs total vs random, 5 seeds (ARGS='--seeds 0-1 --rounds 8') → outputs/benchmarks/active.md
	$(BIN)/python scripts/bench_active.py $(ARGS)

clean: ## remove outputs/, caches and build files (keeps .venv)
	rm -rf outputs build dist .pytest_cache .ruff_cache .mypy_cache
	find . -name __pycache__ -type d -prune -not -path './.venv/*' -exec rm -rf {} +
