# Input functions and params helpers of the rules in workflow/rules/translate.smk (only there).

from medinjection.config_checks import translation_route


def translation_route_of(source):
    return translation_route(config["translation"], source)


def get_shard_index(wildcards):
    return int(wildcards.shard)


def get_translation_cache(wildcards):
    return llm_cache("translate", wildcards.source, f"shard_{wildcards.shard}")


def get_translation_endpoint(wildcards):
    return endpoint_params(translation_route_of(wildcards.source)[0])


def get_translation_endpoint_identity(wildcards):
    return endpoint_identity(translation_route_of(wildcards.source)[0])


def get_translation_gpus(wildcards):
    return endpoint_gpus(translation_route_of(wildcards.source)[0])


def get_translation_model(wildcards):
    return translation_route_of(wildcards.source)[1]


def get_translation_price(wildcards):
    return llm_price(translation_route_of(wildcards.source)[1])
