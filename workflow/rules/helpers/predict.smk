# Input functions and params helpers of the rules in workflow/rules/predict.smk (only there).


def uses_merged_models():
    return STUDY.prediction.backend == "vllm" and STUDY.training.method == "dora"


def get_predict_inputs(wildcards):
    inputs = {
        "model": "<results>/models/base",
        "testsets": expand("<results>/testsets/{testset}.parquet", testset=TEST_SETS),
        "manifests": "<results>/testsets/manifest.json",
        "model_manifests": ["<results>/models/base.manifest.json"],
    }
    if wildcards.model != "base":
        run = f"<results>/train/{wildcards.model}"
        if uses_merged_models():
            inputs["model"] = f"{run}/merged"
            inputs["model_manifests"] = [f"{run}/merged.manifest.json"]
        else:
            inputs["adapter"] = f"{run}/adapter"
            inputs["model_manifests"].append(f"{run}/adapter.manifest.json")
    return inputs
