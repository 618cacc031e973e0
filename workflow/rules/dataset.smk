# Merge native, translated and synthetic records into parquet splits per origin, with dedup and
# test-set decontamination, then cut the configured test sets out of the test splits.


rule build_dataset:
    input:
        native=get_dataset_inputs("native"),
        translated=get_dataset_inputs("translated"),
        synthetic=get_dataset_inputs("synthetic"),
    output:
        splits=expand("results/dataset/{origin}/{split}.parquet", origin=ORIGINS, split=SPLITS),
        all="results/dataset/all.parquet",
        stats=report(
            "results/dataset/stats.csv",
            caption="../report/dataset_stats.rst",
            category="Dataset",
        ),
        removed="results/dataset/removed.csv",
    log:
        "logs/build_dataset/build_dataset.log",
    benchmark:
        "benchmarks/build_dataset/build_dataset.tsv"
    conda:
        "../../envs/workflow.yaml"
    params:
        near_duplicate_threshold=config["dataset"]["near_duplicate_threshold"],
        code=CODE_VERSION,
    script:
        "../scripts/build_dataset.py"


rule test_sets:
    input:
        tests=expand("results/dataset/{origin}/test.parquet", origin=ORIGINS),
    output:
        testsets=expand("results/testsets/{testset}.parquet", testset=TEST_SETS),
    log:
        "logs/test_sets/test_sets.log",
    conda:
        "../../envs/workflow.yaml"
    params:
        test_sets=TEST_SETS,
        code=CODE_VERSION,
    script:
        "../scripts/test_sets.py"
