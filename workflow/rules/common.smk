# Glue only: config validation, constants, wildcard constraints, targets and the helpers that
# several rule files share. A helper that one rule file uses lives in that file.
import functools
import os
import re

from snakemake.utils import validate

from medinjection.fingerprint import module_fingerprint, script_fingerprint
from medinjection.plan import check_plan
from medinjection.records import ORIGINS, SPLITS
from medinjection.settings import StudySettings
from medinjection.config_checks import (
    ComputeParams,
    check_before_run,
    check_study_config,
    endpoint_params as compute_aware_endpoint,
    local_source_inputs,
    translation_route,
)

validate(config, schema="../schemas/config.schema.yaml")
check_study_config(config)
# pre-spend feasibility: every mixture, validation and test-set draw (also in dry runs)
check_plan(config)

# ---------------------------------------------------------------- constants

# Each config writes into its own tree (results_dir): rules name their files <results>/...,
# <logs>/..., <benchmarks>/... and <resources>/... (staged downloads), all under it, so the demo
# and the study never see each other's files.
RESULTS_DIR = config["results_dir"].rstrip("/")
SOURCES = config["sources"]
MIXTURES = list(config["mixtures"]["definitions"])
SEEDS = config["training"]["seeds"]
# A fine-tuned model is one training run: "<mixture>/seed<seed>" (its folder under <results>/train/).
RUNS = [f"{mixture}/seed{seed}" for mixture in MIXTURES for seed in SEEDS]
MODELS = ["base", *RUNS]
TEST_SETS = config["evaluation"]["test_sets"]
SHARDS = list(range(config["translation"]["shards"]))
PUBLISHED_ORIGINS = sorted(config["data"]["published"])
POSITION_BIAS = config["evaluation"]["position_bias"]
QUALITY = config["translation"]["quality"]
JUDGE_CANDIDATES = config["judge"]["candidates"]
JUDGE_SELECT = config["judge"]["select"]
# the typed settings (medinjection.settings); params take builtin values only (`.to_dict()`)
STUDY = StudySettings.from_config(config)


pathvars:
    results=RESULTS_DIR,
    logs=f"{RESULTS_DIR}/logs",
    benchmarks=f"{RESULTS_DIR}/benchmarks",
    resources=f"{RESULTS_DIR}/resources",


def _alternatives(names):
    return "|".join(re.escape(name) for name in names) or "^$"


wildcard_constraints:
    source=_alternatives(SOURCES),
    mixture=_alternatives(MIXTURES),
    model=_alternatives(MODELS),
    origin=_alternatives(ORIGINS),
    split=_alternatives(SPLITS),
    shard=r"\d+",
    seed=r"\d+",


# ---------------------------------------------------------------- code, paths and resources


def script_code(script):
    # the `code` param: only the package definitions the script can reach count,
    # without comments, docstrings or formatting (medinjection.fingerprint)
    return script_fingerprint(os.path.join(workflow.basedir, "workflow", "scripts", script))


def module_code(module):
    # the same for a shell rule running `python -m <module>`
    return module_fingerprint(module)


def results_path(path):
    # a path under results_dir for a value that is not an input/output (params)
    return f"{RESULTS_DIR}/{path}"


def job_resources(job):
    """`resources: **job_resources("train")`: GPUs of a job family (compute.<job>), its memory
    and runtime times the retry attempt."""
    spec = getattr(STUDY.compute, job)
    return {
        "gpu": spec.gpus,
        "mem_mb": functools.partial(_times_attempt, spec.mem_mb),
        "runtime": functools.partial(_times_attempt, spec.runtime_min),
    }


def _times_attempt(value, wildcards, attempt):
    return value * attempt


# ---------------------------------------------------------------- targets


def final_targets():
    return [
        "<results>/tables/table1.csv",
        "<results>/tables/table1.md",
        "<results>/tables/per_dataset.csv",
        "<results>/plots/table1.png",
        "<results>/tables/table1.tex",
        "<results>/tables/per_dataset.md",
        "<results>/tables/significance.csv",
        "<results>/plots/per_dataset_heatmap.png",
        "<results>/plots/judge_vs_length.png",
        "<results>/metaeval/correlations.csv",
        "<results>/metaeval/verbosity.csv",
        "<results>/metaeval/verbosity_regression.csv",
        "<results>/metaeval/judge_selection.json",
        *expand("<results>/train/{run}/loss.png", run=RUNS),
        *expand("<results>/train/{mixture}/token_lengths.json", mixture=MIXTURES),
        "<results>/dataset/stats.csv",
        *(["<results>/translation_quality/report.md"] if QUALITY["enabled"] else []),
        *(["<results>/tables/position_bias.csv"] if position_bias_test_sets() else []),
    ]


def position_bias_test_sets():
    """MCQ/MCQU test sets rerun with shuffled options (none when permutations is 0)."""
    if POSITION_BIAS["permutations"] < 1:
        return []
    return [name for name, spec in TEST_SETS.items() if spec["task"] != "oeq"]


def open_test_sets():
    return [name for name, spec in TEST_SETS.items() if spec["task"] == "oeq"]


def normalize_dataset():
    # the dataset block for normalize_source and normalize_published; only the keys they use
    # count for reruns (param `split`): the dedup keys are build_dataset's
    keys = ("split_seed", "validation_fraction", "test_fraction", "max_quarantine_rate")
    return ComputeParams(STUDY.dataset.to_dict(), keys)


# ---------------------------------------------------------------- LLM client (endpoints, caches)


def endpoint_params(name):
    # pacing keys (concurrency, rate limits, retries, timeouts) don't count for reruns
    return compute_aware_endpoint(config["llm"]["endpoints"][name])


def endpoint_identity(name):
    # what does count: every other key (base_url is part of the cache key)
    return endpoint_params(name).tracked()


def endpoint_gpus(name):
    # a self-hosted endpoint (serve block) runs vllm serve inside the job: it needs its GPUs
    serve = config["llm"]["endpoints"][name].get("serve")
    return serve.get("gpus", 1) if serve else 0


def get_llm_replay(wildcards):
    return [config["llm"]["replay_file"]] if config["llm"]["mode"] == "replay" else []


def llm_batch():
    # Batch API pacing (poll interval, file sizes, resubmission rounds): never a rerun
    return ComputeParams(config["llm"]["batch"])


def llm_cache(*parts):
    return os.path.join(config["llm"]["cache_dir"], *parts) + ".sqlite"


def llm_price(model):
    prices = config["llm"]["prices"]
    if model not in prices:
        raise ValueError(
            f"llm.prices has no entry for model {model!r} (priced: {sorted(prices)}); add its "
            "USD per million input/output tokens and batch discount (0 for a self-hosted model)"
        )
    return dict(prices[model])
