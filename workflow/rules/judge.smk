# LLM-as-a-judge on open questions (binary equivalence, official prompt) and the judge's
# meta-evaluation against physician annotations.


rule judge:
    input:
        unpack(get_judge_inputs),
    output:
        judgments=expand("results/judge/{{model}}/{testset}.parquet", testset=open_test_sets()),
    log:
        "logs/judge/{model}.log",
    benchmark:
        "benchmarks/judge/{model}.tsv"
    conda:
        "../../envs/gpu.yaml"
    threads: 2
    resources:
        gpu=config["compute"]["judge_gpus"],
        mem_mb=get_judge_mem_mb,
        runtime=get_judge_runtime,
    params:
        backend=JUDGE["backend"],
        judge_model=JUDGE["judge_model"],
        endpoint=JUDGE["endpoint"],
        mode=JUDGE["mode"],
        replay_file=JUDGE["replay_file"],
        max_tokens=JUDGE["max_tokens"],
        cache_path=get_judge_cache,
        prompt_version=config["study"]["prompt_version"],
        code=CODE_VERSION,
    script:
        "../scripts/judge.py"


rule stage_annotations:
    input:
        get_annotations_input,
    output:
        "resources/metaeval/annotations.jsonl",
    log:
        "logs/stage_annotations/stage_annotations.log",
    conda:
        "../../envs/workflow.yaml"
    params:
        location=config["metaeval"]["annotations"],
        candidate_field=config["metaeval"]["candidate_field"],
        code=CODE_VERSION,
    script:
        "../scripts/stage_annotations.py"


rule metaeval:
    input:
        annotations="resources/metaeval/annotations.jsonl",
        model=get_judge_model_input,
    output:
        correlations=report(
            "results/metaeval/correlations.csv",
            caption="../report/metaeval.rst",
            category="Meta-evaluation",
        ),
        verbosity="results/metaeval/verbosity.csv",
        scores="results/metaeval/item_scores.csv",
    log:
        "logs/metaeval/metaeval.log",
    conda:
        "../../envs/gpu.yaml"
    threads: 2
    resources:
        gpu=config["compute"]["judge_gpus"],
        mem_mb=get_judge_mem_mb,
        runtime=get_judge_runtime,
    params:
        candidate_field="candidate",
        judge=get_metaeval_judge,
        bertscore=config["evaluation"]["bertscore"],
        bootstrap=config["evaluation"]["bootstrap"],
        code=CODE_VERSION,
    script:
        "../scripts/metaeval.py"
