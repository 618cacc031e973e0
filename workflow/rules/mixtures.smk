# The training mixtures: constant size, shares of the included origins, deterministic. Only the
# mixture's own definition reaches its job, so editing one mixture reruns only its chain.


include: "helpers/mixtures.smk"


rule build_mixture:
    input:
        train=get_mixture_train,
        validation=get_mixture_validation,
        manifest="<results>/dataset/manifest.json",
    output:
        train="<results>/mixtures/{mixture}/train.jsonl",
        validation="<results>/mixtures/{mixture}/validation.jsonl",
        manifest="<results>/mixtures/{mixture}/manifest.json",
    log:
        "<logs>/build_mixture/{mixture}.log",
    conda:
        "../../envs/workflow.yaml"
    params:
        name="{mixture}",
        mixtures=get_mixture_settings,
        prompt_version=STUDY.study.prompt_version,
        code=script_code("build_mixture.py"),
    script:
        "../scripts/build_mixture.py"
