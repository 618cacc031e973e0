# LLM-as-a-judge on open questions (binary equivalence; system prompt from judge.prompt_file) and the meta-evaluation
# of every candidate judge and metric against physician annotations, which also selects the judge
# (judge.select: auto = best correlated; the judge jobs then read results/metaeval/judge_selection.json).


include: "helpers/judge.smk"


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
        endpoints=get_judge_endpoints,
        mode=STUDY.llm.mode,
        replay_file=STUDY.llm.replay_file,
        select=JUDGE_SELECT,
        cache_path=get_judge_cache,
        prompt_version=STUDY.study.prompt_version,
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
        metaeval=STUDY.metaeval.to_dict(),
        code=script_code("stage_annotations.py"),
    script:
        "../scripts/stage_annotations.py"


rule metaeval:
    input:
        annotations="<resources>/metaeval/annotations.jsonl",
        model=get_judge_model_input,
        prompt=STUDY.judge.prompt_file,
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
        candidates=get_metaeval_candidates,
        endpoints=get_metaeval_endpoints,
        mode=STUDY.llm.mode,
        replay_file=STUDY.llm.replay_file,
        caches=get_metaeval_caches,
        select=JUDGE_SELECT,
        select_by=STUDY.judge.select_by,
        bertscore=STUDY.evaluation.bertscore.to_dict(),
        bootstrap=STUDY.evaluation.bootstrap.to_dict(),
        code=script_code("metaeval.py"),
    script:
        "../scripts/metaeval.py"
