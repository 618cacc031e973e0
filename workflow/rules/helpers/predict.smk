# Input functions and params helpers of the rules in workflow/rules/predict.smk (only there).


def uses_merged_models():
    return STUDY.prediction.backend == "vllm" and STUDY.training.method == "dora"


def get_predict_inputs(wildcards):
    inputs = {
        "model": "<results>/models/base",
        "testsets": expand("<results>/testsets/{testset}.parquet", testset=TEST_SETS),
        "manifests": "<results>/testsets/manifest.json",
    }
    if wildcards.model != "base":
        if uses_merged_models():
            inputs["model"] = f"<results>/train/{wildcards.model}/merged"
        else:
            inputs["adapter"] = f"<results>/train/{wildcards.model}/adapter"
    return inputs
