# Input functions and params helpers of the rules in workflow/rules/judge.smk (only there).


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
        "mode": STUDY.llm.mode,
        "replay_file": STUDY.llm.replay_file,
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
        "prompt": STUDY.judge.prompt_file,
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
    location = STUDY.metaeval.annotations
    if location.kind == "local" and location.path and os.path.exists(location.path):
        return [location.path]
    return []


def get_metaeval_judges(wildcards):
    return {
        name: {**judge_params(spec), "cache_path": llm_cache("judge", "metaeval", name)}
        for name, spec in JUDGE_CANDIDATES.items()
    }
