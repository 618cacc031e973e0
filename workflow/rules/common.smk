# Glue only: config validation, wildcard constraints, target builder and input functions.
import os
import re

from snakemake.utils import validate

from medinjection.fingerprint import module_fingerprint, script_fingerprint
from medinjection.modeling.train_config import COMPUTE_KEYS
from medinjection.plan import check_plan
from medinjection.workflow_support import (
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

# Each config writes into its own tree (results_dir): rules name their files <results>/...,
# <logs>/..., <benchmarks>/... and <resources>/... (staged downloads), all under it, so the demo
# and the study never see each other's files.
RESULTS_DIR = config["results_dir"].rstrip("/")


pathvars:
    results=RESULTS_DIR,
    logs=f"{RESULTS_DIR}/logs",
    benchmarks=f"{RESULTS_DIR}/benchmarks",
    resources=f"{RESULTS_DIR}/resources",


def results_path(path):
    # a path under results_dir for a value that is not an input/output (params)
    return f"{RESULTS_DIR}/{path}"


SOURCES = config["sources"]
MIXTURES = list(config["mixtures"]["definitions"])
SEEDS = config["training"]["seeds"]
# A fine-tuned model is one training run: "<mixture>/seed<seed>" (its folder under <results>/train/).
RUNS = [f"{mixture}/seed{seed}" for mixture in MIXTURES for seed in SEEDS]
MODELS = ["base", *RUNS]
TEST_SETS = config["evaluation"]["test_sets"]
ORIGINS = ["native", "translated", "synthetic"]
SPLITS = ["train", "validation", "test"]
SHARDS = list(range(config["translation"]["shards"]))


def script_code(script):
    # the `code` param: only the package modules the script imports (transitively) count,
    # without comments, docstrings or formatting (medinjection.fingerprint)
    return script_fingerprint(os.path.join(workflow.basedir, "workflow", "scripts", script))


def module_code(module):
    # the same for a shell rule running `python -m <module>`
    return module_fingerprint(module)


def sources_with_role(role):
    return [name for name, spec in SOURCES.items() if spec["role"] == role]


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
        *translation_quality_targets(),
        *position_bias_targets(),
    ]


def mixture_targets(mixture):
    """Everything one mixture produces, for `snakemake mixture_NAT`-style partial runs."""
    return [
        f"<results>/mixtures/{mixture}/manifest.json",
        f"<results>/train/{mixture}/token_lengths.json",
        *(f"<results>/train/{mixture}/seed{seed}/adapter" for seed in SEEDS),
        *(f"<results>/scores/{mixture}/seed{seed}.json" for seed in SEEDS),
        *(f"<results>/scores/position_bias/{run}.json" for run in mixture_position_bias(mixture)),
    ]


# ---------------------------------------------------------------- position bias

POSITION_BIAS = config["evaluation"]["position_bias"]


def position_bias_test_sets():
    """MCQ/MCQU test sets rerun with shuffled options (none when permutations is 0)."""
    if POSITION_BIAS["permutations"] < 1:
        return []
    return [name for name, spec in TEST_SETS.items() if spec["task"] != "oeq"]


def position_bias_targets():
    if not position_bias_test_sets():
        return []
    return ["<results>/tables/position_bias.csv"]


def mixture_position_bias(mixture):
    return [f"{mixture}/seed{seed}" for seed in SEEDS] if position_bias_test_sets() else []


# ---------------------------------------------------------------- sources


def get_stage_input(wildcards):
    # A missing local file is reported by check_before_run (onstart), so dry runs still work.
    location = SOURCES[wildcards.source]["location"]
    if location["kind"] == "local" and os.path.exists(location["path"]):
        return local_source_inputs(location["path"])
    return []


def get_llm_replay(wildcards):
    return [config["llm"]["replay_file"]] if config["llm"]["mode"] == "replay" else []


def endpoint_params(name):
    # pacing keys (concurrency, rate limits, retries, timeouts) don't count for reruns
    return compute_aware_endpoint(config["llm"]["endpoints"][name])


def endpoint_identity(name):
    # what does count: every other key (base_url is part of the cache key)
    return endpoint_params(name).tracked()


def llm_batch():
    # Batch API pacing (poll interval, file sizes, resubmission rounds): never a rerun
    return ComputeParams(config["llm"]["batch"])


def endpoint_gpus(name):
    # a self-hosted endpoint (serve block) runs vllm serve inside the job: it needs its GPUs
    serve = config["llm"]["endpoints"][name].get("serve")
    return serve.get("gpus", 1) if serve else 0


def llm_cache(*parts):
    return os.path.join(config["llm"]["cache_dir"], *parts) + ".sqlite"


# ---------------------------------------------------------------- translation and synthesis


def llm_price(model):
    prices = config["llm"]["prices"]
    if model not in prices:
        raise ValueError(
            f"llm.prices has no entry for model {model!r} (priced: {sorted(prices)}); add its "
            "USD per million input/output tokens and batch discount (0 for a self-hosted model)"
        )
    return dict(prices[model])


QUALITY = config["translation"]["quality"]


def translation_quality_targets():
    return ["<results>/translation_quality/report.md"] if QUALITY["enabled"] else []


def get_quality_test_file(wildcards):
    # A missing test file is reported by the job itself (naming the config key), so dry runs work.
    path = QUALITY["test_file"]
    return [path] if os.path.exists(path) else []


def get_quality_comet(wildcards):
    return ["<results>/translation_quality/comet.json"] if QUALITY["comet"]["enabled"] else []


# ---------------------------------------------------------------- dataset and mixtures


def get_dataset_inputs(origin):
    if config["data"]["build"] == "published":
        published = config["data"]["published"]
        return [f"<results>/published/{origin}/records.parquet"] if origin in published else []
    if origin == "native":
        pattern = "<results>/normalized/{source}/records.parquet"
        return expand(pattern, source=sources_with_role("native"))
    if origin == "translated":
        pattern = "<results>/translated/{source}/records.parquet"
        return expand(pattern, source=sources_with_role("translate"))
    pattern = "<results>/synthetic/{source}/records.parquet"
    return expand(pattern, source=sources_with_role("synthesize"))


def get_dataset_manifests(wildcards):
    # the manifest of each record or stats file's producer, checked by build_dataset first
    files = [path for origin in ORIGINS for path in get_dataset_inputs(origin)]
    files += get_normalize_stats(wildcards)
    folders = dict.fromkeys(os.path.dirname(path) for path in files)
    return [os.path.join(folder, "manifest.json") for folder in folders]


def get_published_location(wildcards):
    return dict(config["data"]["published"][wildcards.origin])


def get_normalize_stats(wildcards):
    if config["data"]["build"] == "published":
        return expand("<results>/published/{origin}/stats.json", origin=PUBLISHED_ORIGINS)
    names = sources_with_role("native") + sources_with_role("translate")
    return expand("<results>/normalized/{source}/stats.json", source=names)


PUBLISHED_ORIGINS = sorted(config["data"]["published"])


def mixture_origins(mixture):
    return sorted(config["mixtures"]["definitions"][mixture])


def get_mixture_train(wildcards):
    return expand(
        "<results>/dataset/{origin}/train.parquet", origin=mixture_origins(wildcards.mixture)
    )


def get_mixture_validation(wildcards):
    # a shared validation set comes from the configured origins, whatever the mixture's
    origins = config["mixtures"].get("validation_origins") or mixture_origins(wildcards.mixture)
    return expand("<results>/dataset/{origin}/validation.parquet", origin=origins)


def get_mixture_shares(wildcards):
    return dict(config["mixtures"]["definitions"][wildcards.mixture])


def get_corpus_files(wildcards):
    # the released-data study has no sources: its records are the corpus (found by rehearsing
    # config/published.yaml: the tiny model's tokenizer had no text)
    if config["data"]["build"] == "published":
        return expand("<results>/published/{origin}/records.parquet", origin=PUBLISHED_ORIGINS)
    roles = {"native": "records", "translate": "records", "synthesize": "documents"}
    return [
        f"<results>/normalized/{name}/{roles[spec['role']]}.parquet"
        for name, spec in SOURCES.items()
    ]


# ---------------------------------------------------------------- training and prediction


def get_train_hparams(wildcards):
    # compute settings (GPUs, memory, runtime) are resources, never params (COMPUTE_KEYS)
    skip = {"seeds", *COMPUTE_KEYS}
    hparams = {k: v for k, v in config["training"].items() if k not in skip}
    return {**hparams, "seed": int(wildcards.seed)}


def uses_merged_models():
    return config["prediction"]["backend"] == "vllm" and config["training"]["method"] == "dora"


def get_predict_inputs(wildcards):
    inputs = {
        "model": "<results>/models/base",
        "testsets": expand("<results>/testsets/{testset}.parquet", testset=TEST_SETS),
        "manifests": "<results>/testsets/manifest.json",
    }
    if wildcards.model != "base":
        if uses_merged_models():
            inputs["model"] = f"<results>/train/{wildcards.model}/merged"
        else:
            inputs["adapter"] = f"<results>/train/{wildcards.model}/adapter"
    return inputs


def open_test_sets():
    return [name for name, spec in TEST_SETS.items() if spec["task"] == "oeq"]


def get_score_manifests(wildcards):
    # predict's manifest, and judge's when there are open questions to judge
    judged = [f"<results>/judge/{wildcards.model}/manifest.json"] if open_test_sets() else []
    return [f"<results>/predict/{wildcards.model}/manifest.json", *judged]


JUDGE_CANDIDATES = config["judge"]["candidates"]
JUDGE_SELECT = config["judge"]["select"]


def judge_candidates_in_play():
    # auto: any candidate may be selected; otherwise only the configured one
    return list(JUDGE_CANDIDATES) if JUDGE_SELECT == "auto" else [JUDGE_SELECT]


def needs_local_judge(names):
    # local judges, and vllm_server judges of model `base`, run results/models/base
    return any(
        JUDGE_CANDIDATES[name]["backend"] == "local"
        or (
            JUDGE_CANDIDATES[name]["backend"] == "vllm_server"
            and JUDGE_CANDIDATES[name]["model"] == "base"
        )
        for name in names
    )


def get_judge_inputs(wildcards):
    inputs = {
        "predictions": expand(
            "<results>/predict/{model}/{testset}.parquet",
            model=wildcards.model,
            testset=open_test_sets(),
        ),
        "testsets": expand("<results>/testsets/{testset}.parquet", testset=open_test_sets()),
        "prompt": config["judge"]["prompt_file"],
        "manifests": [
            f"<results>/predict/{wildcards.model}/manifest.json",
            "<results>/testsets/manifest.json",
        ],
    }
    if JUDGE_SELECT == "auto":
        inputs["selection"] = "<results>/metaeval/judge_selection.json"
    if needs_local_judge(judge_candidates_in_play()):
        inputs["model"] = "<results>/models/base"
    return inputs


def judge_params(spec):
    return {
        "backend": spec["backend"],
        "judge_model": spec["model"],
        "endpoint": endpoint_params(spec["endpoint"]) if spec["backend"] == "openai" else None,
        "mode": config["llm"]["mode"],
        "replay_file": config["llm"]["replay_file"],
        "max_tokens": spec["max_tokens"],
        "serve": spec.get("serve"),
    }


def get_judge_candidates(wildcards):
    return {name: judge_params(JUDGE_CANDIDATES[name]) for name in judge_candidates_in_play()}


def get_judge_model_input(wildcards):
    return ["<results>/models/base"] if needs_local_judge(JUDGE_CANDIDATES) else []


def get_source_location(wildcards):
    return dict(SOURCES[wildcards.source]["location"])


def get_source_adapter(wildcards):
    return SOURCES[wildcards.source]["adapter"]


def get_source_role(wildcards):
    return SOURCES[wildcards.source]["role"]


def get_shard_index(wildcards):
    return int(wildcards.shard)


def translation_route_of(source):
    return translation_route(config["translation"], source)


def get_translation_endpoint(wildcards):
    return endpoint_params(translation_route_of(wildcards.source)[0])


def get_translation_endpoint_identity(wildcards):
    return endpoint_identity(translation_route_of(wildcards.source)[0])


def get_translation_model(wildcards):
    return translation_route_of(wildcards.source)[1]


def get_translation_price(wildcards):
    return llm_price(translation_route_of(wildcards.source)[1])


def get_translation_gpus(wildcards):
    return endpoint_gpus(translation_route_of(wildcards.source)[0])


def get_translation_cache(wildcards):
    return llm_cache("translate", wildcards.source, f"shard_{wildcards.shard}")


def get_synthesis_cache(wildcards):
    return llm_cache("synthesize", wildcards.source)


def get_base_model_corpus(wildcards):
    return get_corpus_files(wildcards) if config["base_model"]["kind"] == "tiny" else []


def get_train_mem_mb(wildcards, attempt):
    return int(config["training"]["mem_mb"]) * attempt


def get_train_runtime(wildcards, attempt):
    return int(config["training"]["runtime_min"]) * attempt


def get_merge_mem_mb(wildcards, attempt):
    # a 4B model in bf16 is 8 GB; loading and merging holds about two copies
    return 32000 * attempt


def get_merge_runtime(wildcards, attempt):
    return 60 * attempt


def get_predict_mem_mb(wildcards, attempt):
    return int(config["prediction"]["mem_mb"]) * attempt


def get_predict_runtime(wildcards, attempt):
    return int(config["prediction"]["runtime_min"]) * attempt


def get_judge_cache(wildcards):
    return llm_cache("judge", wildcards.model)


def get_judge_mem_mb(wildcards, attempt):
    return int(config["compute"]["judge_mem_mb"]) * attempt


def get_judge_runtime(wildcards, attempt):
    return int(config["compute"]["judge_runtime_min"]) * attempt


def get_metaeval_judges(wildcards):
    return {
        name: {**judge_params(spec), "cache_path": llm_cache("judge", "metaeval", name)}
        for name, spec in JUDGE_CANDIDATES.items()
    }


def get_mixture_targets(wildcards):
    return mixture_targets(wildcards.mixture)


def get_annotations_input(wildcards):
    location = config["metaeval"]["annotations"]
    if location["kind"] == "local" and os.path.exists(location["path"]):
        return [location["path"]]
    return []
