# Translation quality of the configured translation model on a parallel EN-FR test file: BLEU and
# chrF in the workflow env, COMET in its own env (envs/comet.yaml), beside the paper's figures.


include: "helpers/translation_quality.smk"


rule translation_quality:
    input:
        test_file=get_quality_test_file,
        replay=get_llm_replay,
    output:
        scores="<results>/translation_quality/scores.json",
        translations="<results>/translation_quality/translations.jsonl",
    log:
        "<logs>/translation_quality/translate.log",
    conda:
        "../../envs/workflow.yaml"
    resources:
        gpu=endpoint_gpus(config["translation"]["endpoint"]),
    params:
        test_file=QUALITY["test_file"],
        endpoint=endpoint_params(config["translation"]["endpoint"]),
        endpoint_identity=endpoint_identity(config["translation"]["endpoint"]),
        model=config["translation"]["model"],
        temperature=config["translation"]["temperature"],
        max_tokens=config["translation"]["max_tokens"],
        submit=config["translation"]["submit"],
        batch=llm_batch(),
        price=llm_price(config["translation"]["model"]),
        mode=config["llm"]["mode"],
        replay_file=config["llm"]["replay_file"],
        cache_path=llm_cache("translation_quality", config["translation"]["model"]),
        code=script_code("translation_quality.py"),
    script:
        "../scripts/translation_quality.py"


rule translation_comet:
    input:
        translations="<results>/translation_quality/translations.jsonl",
    output:
        comet="<results>/translation_quality/comet.json",
    log:
        "<logs>/translation_quality/comet.log",
    conda:
        "../../envs/comet.yaml"
    resources:
        gpu=STUDY.compute.comet.gpus,
    params:
        comet=STUDY.translation.quality.comet.to_dict(),
    script:
        "../scripts/translation_comet.py"


rule translation_quality_report:
    input:
        scores="<results>/translation_quality/scores.json",
        comet=get_quality_comet,
    output:
        report="<results>/translation_quality/report.md",
    log:
        "<logs>/translation_quality/report.log",
    conda:
        "../../envs/workflow.yaml"
    script:
        "../scripts/translation_quality_report.py"
