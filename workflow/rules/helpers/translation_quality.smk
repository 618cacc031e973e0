# Input functions and params helpers of the rules in workflow/rules/translation_quality.smk (only there).


def get_quality_test_file(wildcards):
    # A missing test file is reported by the job itself (naming the config key), so dry runs work.
    path = QUALITY["test_file"]
    return [path] if os.path.exists(path) else []


def get_quality_comet(wildcards):
    return ["<results>/translation_quality/comet.json"] if QUALITY["comet"]["enabled"] else []
