# Input functions and params helpers of the rules in workflow/rules/mixtures.smk (only there).


def mixture_origins(mixture):
    return sorted(config["mixtures"]["definitions"][mixture])


def get_mixture_settings(wildcards):
    # the mixtures block with this mixture's definition only: editing another mixture reruns
    # nothing here
    block = STUDY.mixtures.to_dict()
    block["definitions"] = {wildcards.mixture: block["definitions"][wildcards.mixture]}
    return block


def get_mixture_train(wildcards):
    return expand(
        "<results>/dataset/{origin}/train.parquet", origin=mixture_origins(wildcards.mixture)
    )


def get_mixture_validation(wildcards):
    # a shared validation set comes from the configured origins, whatever the mixture's
    origins = config["mixtures"].get("validation_origins") or mixture_origins(wildcards.mixture)
    return expand("<results>/dataset/{origin}/validation.parquet", origin=origins)
