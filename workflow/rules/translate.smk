# EN->FR translation of the English sources through the LLM client, in shards so progress is
# visible and partial reruns are cheap. Responses are cached outside the declared outputs.


include: "helpers/translate.smk"


rule translate_shard:
    input:
        records="<results>/normalized/{source}/records.parquet",
        manifest="<results>/normalized/{source}/manifest.json",
        replay=get_llm_replay,
    output:
        records="<results>/translate/{source}/shard_{shard}.parquet",
        usage="<results>/translate/{source}/shard_{shard}.usage.json",
        manifest="<results>/translate/{source}/shard_{shard}.manifest.json",
    log:
        "<logs>/translate_shard/{source}/{shard}.log",
    benchmark:
        "<benchmarks>/translate_shard/{source}/{shard}.tsv"
    conda:
        "../../envs/workflow.yaml"
    resources:
        gpu=get_translation_gpus,
    params:
        shard=get_shard_index,
        shards=config["translation"]["shards"],
        endpoint=get_translation_endpoint,
        endpoint_identity=get_translation_endpoint_identity,
        model=get_translation_model,
        temperature=config["translation"]["temperature"],
        max_tokens=config["translation"]["max_tokens"],
        submit=config["translation"]["submit"],
        max_quarantine_rate=config["translation"]["max_quarantine_rate"],
        batch=llm_batch(),
        price=get_translation_price,
        mode=config["llm"]["mode"],
        replay_file=config["llm"]["replay_file"],
        cache_path=get_translation_cache,
        code=script_code("translate_shard.py"),
    script:
        "../scripts/translate_shard.py"


rule gather_translation:
    input:
        shards=expand("<results>/translate/{{source}}/shard_{shard}.parquet", shard=SHARDS),
        usage=expand("<results>/translate/{{source}}/shard_{shard}.usage.json", shard=SHARDS),
        manifests=expand("<results>/translate/{{source}}/shard_{shard}.manifest.json", shard=SHARDS),
    output:
        records="<results>/translated/{source}/records.parquet",
        manifest="<results>/translated/{source}/manifest.json",
    log:
        "<logs>/gather_translation/{source}.log",
    conda:
        "../../envs/workflow.yaml"
    params:
        max_quarantine_rate=config["translation"]["max_quarantine_rate"],
        code=script_code("gather_translation.py"),
    script:
        "../scripts/gather_translation.py"
