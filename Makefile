# Two entry points do all set-up on a fresh machine:
#   make demo   creates .venv, installs, runs the whole study graph on the embedded demo, builds the report
#   make test   same set-up, then lint + unit and integration tests
PYTHON ?= python3.11
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
CORES ?= 2
# pytest workers: the suite is mostly subprocess/Snakemake waits, so 2 workers on 2 cores pay off
TEST_WORKERS ?= 2
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO := --configfile config/demo.yaml --cores $(CORES)
# shell rules call `python`/`torchrun`: make them the venv's
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: install demo dryrun report lint test test-fast clean-demo

$(STAMP): requirements/base.txt requirements/dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -r requirements/dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

install: $(STAMP)

demo: install
	HF_HUB_OFFLINE=1 $(BIN)/snakemake $(DEMO)
	$(BIN)/snakemake $(DEMO) --report results/report.html
	@echo "Table 1 (demo: random tiny model, numbers mean nothing):"
	@cat results/tables/table1.md

dryrun: install
	$(BIN)/snakemake -n --quiet rules

lint: install
	$(BIN)/ruff check src tests workflow/scripts bench tools
	$(BIN)/ruff format --check src tests workflow/scripts bench tools
	$(BIN)/snakefmt --check Snakefile workflow/rules
	$(BIN)/snakemake --lint --configfile config/demo.yaml

test: lint
	$(BIN)/pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile --durations 25

test-fast: install
	$(BIN)/pytest -q -m "not slow"

clean-demo:
	rm -rf results resources/sources resources/metaeval logs benchmarks .snakemake
