# Position bias: constrained EM of each model on the original and option-shuffled MCQ/MCQU test
# sets, micro EM over all runs, per-item consistency; one summary table over the models.


rule position_bias:
    input:
        predictions=expand(
            "<results>/predict/{{model}}/{testset}.parquet",
            testset=position_bias_test_sets(),
        ),
        permuted=expand(
            "<results>/predict/{{model}}/permuted/{testset}.parquet",
            testset=position_bias_test_sets(),
        ),
        manifest="<results>/predict/{model}/manifest.json",
    output:
        scores="<results>/scores/position_bias/{model}.json",
        per_item="<results>/scores/position_bias/{model}.items.csv",
    log:
        "<logs>/position_bias/{model}.log",
    localrule: True
    conda:
        "../../envs/workflow.yaml"
    params:
        model="{model}",
        test_sets=TEST_SETS,
        position_bias=STUDY.evaluation.position_bias.to_dict(),
        code=script_code("position_bias.py"),
    script:
        "../scripts/position_bias.py"


rule position_bias_table:
    input:
        scores=expand("<results>/scores/position_bias/{model}.json", model=MODELS),
    output:
        csv=report(
            "<results>/tables/position_bias.csv",
            caption="../report/position_bias.rst",
            category="Results",
        ),
    log:
        "<logs>/position_bias_table/position_bias_table.log",
    localrule: True
    conda:
        "../../envs/workflow.yaml"
    params:
        code=script_code("position_bias_table.py"),
    script:
        "../scripts/position_bias_table.py"
