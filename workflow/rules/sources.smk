# Stage each source from its public location (pinned revision) or a local path, then normalize
# it to the one record schema (QA sources) or to documents (corpora for synthetic generation).


include: "helpers/sources.smk"


rule stage_source:
    input:
        get_stage_input,
    output:
        raw=directory("<resources>/sources/{source}/raw"),
        manifest="<resources>/sources/{source}/manifest.json",
    log:
        "<logs>/stage_source/{source}.log",
    conda:
        "../../envs/workflow.yaml"
    params:
        source="{source}",
        location=get_source_location,
        offline=config["data"]["offline"],
        code=script_code("stage_source.py"),
    script:
        "../scripts/stage_source.py"


rule normalize_source:
    input:
        raw="<resources>/sources/{source}/raw",
        manifest="<resources>/sources/{source}/manifest.json",
    output:
        records="<results>/normalized/{source}/records.parquet",
        quarantine="<results>/normalized/{source}/quarantine.jsonl",
        stats="<results>/normalized/{source}/stats.json",
        manifest="<results>/normalized/{source}/manifest.json",
    log:
        "<logs>/normalize_source/{source}.log",
    conda:
        "../../envs/workflow.yaml"
    params:
        source="{source}",
        adapter=get_source_adapter,
        role=get_source_role,
        dataset=normalize_dataset(),
        split=normalize_dataset().tracked(),
        code=script_code("normalize_source.py"),
    script:
        "../scripts/normalize_source.py"


rule normalize_corpus:
    input:
        raw="<resources>/sources/{source}/raw",
        manifest="<resources>/sources/{source}/manifest.json",
    output:
        documents="<results>/normalized/{source}/documents.parquet",
        manifest="<results>/normalized/{source}/documents.manifest.json",
    log:
        "<logs>/normalize_corpus/{source}.log",
    conda:
        "../../envs/workflow.yaml"
    params:
        source="{source}",
        adapter=get_source_adapter,
        code=script_code("normalize_corpus.py"),
    script:
        "../scripts/normalize_corpus.py"
