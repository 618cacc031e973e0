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


def candidate_settings(names):
    # judge.candidates.<name> (JudgeCandidateSettings) of each named candidate, as plain values
    return {name: STUDY.judge.candidates[name].to_dict() for name in names}


def candidate_endpoints(names):
    # llm.endpoints.<name> of each openai candidate; pacing keys don't count for reruns
    used = [STUDY.judge.candidates[name] for name in names]
    wanted = sorted({spec.endpoint for spec in used if spec.backend == "openai"})
    return {endpoint: endpoint_params(endpoint) for endpoint in wanted}


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
    return candidate_settings(judge_candidates_in_play())


def get_judge_endpoints(wildcards):
    return candidate_endpoints(judge_candidates_in_play())


def get_judge_cache(wildcards):
    return llm_cache("judge", wildcards.model)


def get_judge_model_input(wildcards):
    return ["<results>/models/base"] if needs_local_judge(JUDGE_CANDIDATES) else []


def get_annotations_input(wildcards):
    location = STUDY.metaeval.annotations
    if location.kind == "local" and location.path and os.path.exists(location.path):
        return [location.path]
    return []


def get_metaeval_candidates(wildcards):
    return candidate_settings(JUDGE_CANDIDATES)


def get_metaeval_endpoints(wildcards):
    return candidate_endpoints(JUDGE_CANDIDATES)


def get_metaeval_caches(wildcards):
    return {name: llm_cache("judge", "metaeval", name) for name in JUDGE_CANDIDATES}
