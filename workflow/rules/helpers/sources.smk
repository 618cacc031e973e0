# Input functions and params helpers of the rules in workflow/rules/sources.smk (only there).

from medinjection.config_checks import local_source_inputs


def get_stage_input(wildcards):
    # A missing local file is reported by check_before_run (onstart), so dry runs still work.
    location = SOURCES[wildcards.source]["location"]
    if location["kind"] == "local" and os.path.exists(location["path"]):
        return local_source_inputs(location["path"])
    return []


def get_source_location(wildcards):
    return STUDY.sources[wildcards.source].location.to_dict()


def get_source_adapter(wildcards):
    return SOURCES[wildcards.source]["adapter"]


def get_source_role(wildcards):
    return SOURCES[wildcards.source]["role"]
