# Input functions and params helpers of the rules in workflow/rules/train.smk (only there).


def get_base_model_corpus(wildcards):
    # the tiny model's tokenizer is trained on every source's text
    if STUDY.base_model.kind != "tiny":
        return []
    # the released-data study has no sources: its records are the corpus (found by rehearsing
    # config/published.yaml: the tiny model's tokenizer had no text)
    if STUDY.data.build == "published":
        return expand("<results>/published/{origin}/records.parquet", origin=PUBLISHED_ORIGINS)
    roles = {"native": "records", "translate": "records", "synthesize": "documents"}
    return [
        f"<results>/normalized/{name}/{roles[spec['role']]}.parquet"
        for name, spec in SOURCES.items()
    ]


def get_base_model_params(name):
    # a sub-block of base_model (tiny or hub) as plain values, None when it is not set
    block = getattr(STUDY.base_model, name)
    return None if block is None else block.to_dict()


def get_train_hparams(wildcards):
    # the training block with this run's seed (TrainingSettings.run_hparams); compute settings
    # (GPUs, memory, runtime) live in compute.train: resources, never params
    return STUDY.training.run_hparams(int(wildcards.seed))
