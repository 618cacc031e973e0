# Input functions and params helpers of the rules in workflow/rules/synthesize.smk (only there).


def get_synthesis_cache(wildcards):
    return llm_cache("synthesize", wildcards.source)
