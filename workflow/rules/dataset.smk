# Merge native, translated and synthetic records into parquet splits per origin, with dedup and
# test-set decontamination, then cut the configured test sets out of the test splits.
# With data.build: published, the released MedInjection-FR datasets replace the sources.


include: "helpers/dataset.smk"


rule stage_published:
    output:
        raw=directory("<resources>/published/{origin}/raw"),
        manifest="<resources>/published/{origin}/manifest.json",
    log:
        "<logs>/stage_published/{origin}.log",
    conda:
        "../../envs/workflow.yaml"
    params:
        source="medinjection_{origin}",
        location=get_published_location,
        offline=config["data"]["offline"],
        code=script_code("stage_source.py"),
    script:
        "../scripts/stage_source.py"


rule normalize_published:
    input:
        raw="<resources>/published/{origin}/raw",
        manifest="<resources>/published/{origin}/manifest.json",
    output:
        records="<results>/published/{origin}/records.parquet",
        quarantine="<results>/published/{origin}/quarantine.jsonl",
        stats="<results>/published/{origin}/stats.json",
        manifest="<results>/published/{origin}/manifest.json",
    log:
        "<logs>/normalize_published/{origin}.log",
    conda:
        "../../envs/workflow.yaml"
    params:
        source="medinjection_{origin}",
        adapter="released_{origin}",
        role="published",
        dataset=normalize_dataset(),
        split=normalize_dataset().tracked(),
        code=script_code("normalize_source.py"),
    script:
        "../scripts/normalize_source.py"


rule build_dataset:
    input:
        native=get_dataset_inputs("native"),
        translated=get_dataset_inputs("translated"),
        synthetic=get_dataset_inputs("synthetic"),
        source_stats=get_normalize_stats,
        manifests=get_dataset_manifests,
    output:
        splits=expand("<results>/dataset/{origin}/{split}.parquet", origin=ORIGINS, split=SPLITS),
        all="<results>/dataset/all.parquet",
        stats=report(
            "<results>/dataset/stats.csv",
            caption="../report/dataset_stats.rst",
            category="Dataset",
        ),
        removed="<results>/dataset/removed.csv",
        comparison="<results>/dataset/published_comparison.csv",
        sources="<results>/dataset/sources.csv",
        manifest="<results>/dataset/manifest.json",
    log:
        "<logs>/build_dataset/build_dataset.log",
    benchmark:
        "<benchmarks>/build_dataset/build_dataset.tsv"
    conda:
        "../../envs/workflow.yaml"
    threads: 2  # signatures, normalisation and the parquet writers use every core it is given
    params:
        dataset=STUDY.dataset.to_dict(),
        code=script_code("build_dataset.py"),
    script:
        "../scripts/build_dataset.py"


rule test_sets:
    input:
        tests=expand("<results>/dataset/{origin}/test.parquet", origin=ORIGINS),
        manifest="<results>/dataset/manifest.json",
    output:
        testsets=expand("<results>/testsets/{testset}.parquet", testset=TEST_SETS),
        manifest="<results>/testsets/manifest.json",
    log:
        "<logs>/test_sets/test_sets.log",
    conda:
        "../../envs/workflow.yaml"
    params:
        test_sets=TEST_SETS,
        code=script_code("test_sets.py"),
    script:
        "../scripts/test_sets.py"
