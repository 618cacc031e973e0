# Predictions of the base model and of every fine-tuned model on every test set: one job (one
# engine) per model; greedy and constrained decoding for MCQ/MCQU, greedy for open questions.
# The same job predicts the option-shuffled reruns of the MCQ/MCQU sets (position bias).


include: "helpers/predict.smk"


rule predict:
    input:
        unpack(get_predict_inputs),
    output:
        predictions=expand("<results>/predict/{{model}}/{testset}.parquet", testset=TEST_SETS),
        permuted=expand(
            "<results>/predict/{{model}}/permuted/{testset}.parquet",
            testset=position_bias_test_sets(),
        ),
        manifest="<results>/predict/{model}/manifest.json",
    log:
        "<logs>/predict/{model}.log",
    benchmark:
        "<benchmarks>/predict/{model}.tsv"
    conda:
        "../../envs/gpu.yaml"
    threads: 2
    resources:
        **job_resources("predict"),
    params:
        prediction=STUDY.prediction.to_dict(),
        prompt_version=STUDY.study.prompt_version,
        protocol=STUDY.evaluation.protocol,
        position_bias=STUDY.evaluation.position_bias.to_dict(),
        code=script_code("predict.py"),
    script:
        "../scripts/predict.py"
