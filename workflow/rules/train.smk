# Base model preparation (hub snapshot, local path, or the demo's tiny model), the token-length
# report of each mixture, and LoRA/DoRA SFT of one adapter per mixture and seed. Checkpoints live
# outside the declared outputs so a retry or a requeued job resumes.


include: "helpers/train.smk"


rule prepare_base_model:
    input:
        corpus=get_base_model_corpus,
    output:
        model=directory("<results>/models/base"),
        manifest="<results>/models/base.manifest.json",
    log:
        "<logs>/prepare_base_model/base.log",
    conda:
        "../../envs/workflow.yaml"
    params:
        kind=STUDY.base_model.kind,
        tiny=get_base_model_params("tiny"),
        hub=get_base_model_params("hub"),
        local_path=STUDY.base_model.local_path,
        code=script_code("prepare_base_model.py"),
    script:
        "../scripts/prepare_base_model.py"


rule render_train_config:
    output:
        config="<results>/train/{mixture}/seed{seed}/train_config.json",
    log:
        "<logs>/render_train_config/{mixture}/seed{seed}.log",
    localrule: True
    conda:
        "../../envs/workflow.yaml"
    params:
        hparams=get_train_hparams,
        mixture="{mixture}",
        code=script_code("render_train_config.py"),
    script:
        "../scripts/render_train_config.py"


rule train:
    input:
        config="<results>/train/{mixture}/seed{seed}/train_config.json",
        model="<results>/models/base",
        train="<results>/mixtures/{mixture}/train.jsonl",
        validation="<results>/mixtures/{mixture}/validation.jsonl",
        manifest="<results>/mixtures/{mixture}/manifest.json",
    output:
        adapter=directory("<results>/train/{mixture}/seed{seed}/adapter"),
        adapter_manifest="<results>/train/{mixture}/seed{seed}/adapter.manifest.json",
        metrics="<results>/train/{mixture}/seed{seed}/metrics.json",
        loss_plot=report(
            "<results>/train/{mixture}/seed{seed}/loss.png",
            caption="../report/training_loss.rst",
            category="Training",
            labels={"mixture": "{mixture}", "seed": "{seed}"},
        ),
    log:
        "<logs>/train/{mixture}/seed{seed}.log",
    benchmark:
        "<benchmarks>/train/{mixture}/seed{seed}.tsv"
    conda:
        "../../envs/gpu.yaml"
    threads: 4
    resources:
        **job_resources("train"),
    params:
        checkpoints=results_path("checkpoints/{mixture}/seed{seed}"),
        code=module_code("medinjection.modeling.launch"),
    shell:
        "python -m medinjection.modeling.launch --gpus {resources.gpu} --"
        " --config {input.config} --model {input.model}"
        " --train {input.train} --validation {input.validation} --manifest {input.manifest}"
        " --adapter {output.adapter} --metrics {output.metrics}"
        " --loss-plot {output.loss_plot} --checkpoints {params.checkpoints} > {log} 2>&1"
        " && python -m medinjection.manifests {output.adapter_manifest} train {output.adapter}"
        " >> {log} 2>&1"


rule token_lengths:
    input:
        model="<results>/models/base",
        model_manifest="<results>/models/base.manifest.json",
        train="<results>/mixtures/{mixture}/train.jsonl",
        validation="<results>/mixtures/{mixture}/validation.jsonl",
    output:
        report="<results>/train/{mixture}/token_lengths.json",
    log:
        "<logs>/token_lengths/{mixture}.log",
    conda:
        "../../envs/workflow.yaml"
    resources:
        **job_resources("token_lengths"),
    params:
        max_length=STUDY.training.max_length,
        code=script_code("token_lengths.py"),
    script:
        "../scripts/token_lengths.py"


rule merge_adapter:
    input:
        model="<results>/models/base",
        adapter="<results>/train/{mixture}/seed{seed}/adapter",
        manifests=[
            "<results>/models/base.manifest.json",
            "<results>/train/{mixture}/seed{seed}/adapter.manifest.json",
        ],
    output:
        merged=directory("<results>/train/{mixture}/seed{seed}/merged"),
        manifest="<results>/train/{mixture}/seed{seed}/merged.manifest.json",
    log:
        "<logs>/merge_adapter/{mixture}/seed{seed}.log",
    conda:
        "../../envs/gpu.yaml"
    resources:
        **job_resources("merge_adapter"),
    params:
        code=script_code("merge_adapter.py"),
    script:
        "../scripts/merge_adapter.py"
