# Two entry points do all set-up on a fresh machine:
#   make demo   creates .venv, installs, runs the whole study graph on the embedded demo, builds the report
#   make test   same set-up, then lint + unit and integration tests
#   make rehearsal  the study config itself (and the released-data config when present) end to
#               end on CPU and offline, at full data scale, in build/rehearsal*/ (tools/rehearsal.py)
PYTHON ?= python3.11
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
CORES ?= 2
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO := --configfile config/demo.yaml --cores $(CORES)
# shell rules call `python`/`torchrun`: make them the venv's
export PATH := $(abspath $(BIN)):$(PATH)

REHEARSAL_SCALE ?= 1.0
.PHONY: install demo dryrun report lint test test-fast clean-demo rehearsal

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
	$(BIN)/pytest -q -p no:cacheprovider

test-fast: install
	$(BIN)/pytest -q -m "not slow"

# Each config in its own work directory; stand-ins only for the network and the GPU
# (config/rehearsal.yaml). REHEARSAL_SCALE=0.01 runs the same code on 1% of the data.
rehearsal: install
	$(BIN)/python tools/rehearsal.py --config config/config.yaml --workdir build/rehearsal \
		--scale $(REHEARSAL_SCALE) --cores $(CORES)
	if [ -f config/published.yaml ]; then \
		$(BIN)/python tools/rehearsal.py --config config/published.yaml \
			--workdir build/rehearsal-published --scale $(REHEARSAL_SCALE) --cores $(CORES); fi

clean-demo:
	rm -rf results resources/sources resources/metaeval logs benchmarks .snakemake
