# LLM-as-a-judge on open questions (binary equivalence; system prompt from judge.prompt_file) and the meta-evaluation
# of every candidate judge and metric against physician annotations, which also selects the judge
# (judge.select: auto = best correlated; the judge jobs then read results/metaeval/judge_selection.json).

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


def get_judge_candidates(wildcards):
    return {name: judge_params(JUDGE_CANDIDATES[name]) for name in judge_candidates_in_play()}


def get_judge_cache(wildcards):
    return llm_cache("judge", wildcards.model)


def get_judge_model_input(wildcards):
    return ["<results>/models/base"] if needs_local_judge(JUDGE_CANDIDATES) else []


def get_annotations_input(wildcards):
    location = config["metaeval"]["annotations"]
    if location["kind"] == "local" and os.path.exists(location["path"]):
        return [location["path"]]
    return []


def get_metaeval_judges(wildcards):
    return {
        name: {**judge_params(spec), "cache_path": llm_cache("judge", "metaeval", name)}
        for name, spec in JUDGE_CANDIDATES.items()
    }


rule judge:
    input:
        unpack(get_judge_inputs),
    output:
        judgments=expand("<results>/judge/{{model}}/{testset}.parquet", testset=open_test_sets()),
        manifest="<results>/judge/{model}/manifest.json",
    log:
        "<logs>/judge/{model}.log",
    benchmark:
        "<benchmarks>/judge/{model}.tsv"
    conda:
        "../../envs/gpu.yaml"
    threads: 2
    resources:
        **job_resources("judge"),
    params:
        candidates=get_judge_candidates,
        select=JUDGE_SELECT,
        cache_path=get_judge_cache,
        prompt_version=config["study"]["prompt_version"],
        code=script_code("judge.py"),
    script:
        "../scripts/judge.py"


rule stage_annotations:
    input:
        get_annotations_input,
    output:
        "<resources>/metaeval/annotations.jsonl",
    log:
        "<logs>/stage_annotations/stage_annotations.log",
    conda:
        "../../envs/workflow.yaml"
    params:
        location=config["metaeval"]["annotations"],
        candidate_field=config["metaeval"]["candidate_field"],
        code=script_code("stage_annotations.py"),
    script:
        "../scripts/stage_annotations.py"


rule metaeval:
    input:
        annotations="<resources>/metaeval/annotations.jsonl",
        model=get_judge_model_input,
        prompt=config["judge"]["prompt_file"],
    output:
        correlations=report(
            "<results>/metaeval/correlations.csv",
            caption="../report/metaeval.rst",
            category="Meta-evaluation",
        ),
        verbosity=report(
            "<results>/metaeval/verbosity.csv",
            caption="../report/verbosity.rst",
            category="Meta-evaluation",
        ),
        regression=report(
            "<results>/metaeval/verbosity_regression.csv",
            caption="../report/verbosity_regression.rst",
            category="Meta-evaluation",
        ),
        scores="<results>/metaeval/item_scores.csv",
        selection=report(
            "<results>/metaeval/judge_selection.json",
            caption="../report/judge_selection.rst",
            category="Meta-evaluation",
        ),
    log:
        "<logs>/metaeval/metaeval.log",
    conda:
        "../../envs/gpu.yaml"
    threads: 2
    resources:
        **job_resources("judge"),
    params:
        candidate_field="candidate",
        judges=get_metaeval_judges,
        select=JUDGE_SELECT,
        select_by=config["judge"]["select_by"],
        bertscore=config["evaluation"]["bertscore"],
        bootstrap=config["evaluation"]["bootstrap"],
        code=script_code("metaeval.py"),
    script:
        "../scripts/metaeval.py"
