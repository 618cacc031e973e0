# Scores of one model on every test set: EM/Hamming (greedy and constrained) for MCQ/MCQU; BLEU,
# chrF, ROUGE, BERTScore and the judge for open questions; bootstrap confidence intervals; the
# item-level scores the significance tests pair on.


include: "helpers/score.smk"


rule score:
    input:
        predictions=expand("<results>/predict/{{model}}/{testset}.parquet", testset=TEST_SETS),
        judgments=expand("<results>/judge/{{model}}/{testset}.parquet", testset=open_test_sets()),
        manifests=get_score_manifests,
    output:
        scores="<results>/scores/{model}.json",
        item_scores="<results>/scores/{model}.items.parquet",
        manifest="<results>/scores/{model}.manifest.json",
    log:
        "<logs>/score/{model}.log",
    benchmark:
        "<benchmarks>/score/{model}.tsv"
    conda:
        "../../envs/workflow.yaml"
    threads: 2
    resources:
        **job_resources("score"),
    params:
        model="{model}",
        test_sets=TEST_SETS,
        bertscore=STUDY.evaluation.bertscore.to_dict(),
        bootstrap=STUDY.evaluation.bootstrap.to_dict(),
        judge_refused=STUDY.judge.refused,
        judge_prompt=STUDY.judge.prompt_file,
        code=script_code("score.py"),
    script:
        "../scripts/score.py"
