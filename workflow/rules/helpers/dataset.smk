# Input functions and params helpers of the rules in workflow/rules/dataset.smk (only there).


def sources_with_role(role):
    return [name for name, spec in SOURCES.items() if spec["role"] == role]


def get_dataset_inputs(origin):
    if config["data"]["build"] == "published":
        published = config["data"]["published"]
        return [f"<results>/published/{origin}/records.parquet"] if origin in published else []
    if origin == "native":
        pattern = "<results>/normalized/{source}/records.parquet"
        return expand(pattern, source=sources_with_role("native"))
    if origin == "translated":
        pattern = "<results>/translated/{source}/records.parquet"
        return expand(pattern, source=sources_with_role("translate"))
    pattern = "<results>/synthetic/{source}/records.parquet"
    return expand(pattern, source=sources_with_role("synthesize"))


def get_dataset_manifests(wildcards):
    # the manifest of each record or stats file's producer, checked by build_dataset first
    files = [path for origin in ORIGINS for path in get_dataset_inputs(origin)]
    files += get_normalize_stats(wildcards)
    folders = dict.fromkeys(os.path.dirname(path) for path in files)
    return [os.path.join(folder, "manifest.json") for folder in folders]


def get_normalize_stats(wildcards):
    if config["data"]["build"] == "published":
        return expand("<results>/published/{origin}/stats.json", origin=PUBLISHED_ORIGINS)
    names = sources_with_role("native") + sources_with_role("translate")
    return expand("<results>/normalized/{source}/stats.json", source=names)


def get_published_location(wildcards):
    return getattr(STUDY.data.published, wildcards.origin).to_dict()
